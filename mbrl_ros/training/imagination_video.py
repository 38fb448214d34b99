"""A video of recorded episodes with the world model's imagined future beside the real camera.

Each episode is cut into windows: the model filters the first `context` real frames,
then imagines the next `horizon` frames from the recorded actions alone (open loop).
Left: what the camera saw. Right: what the model expected to see. Used by
`mbrl-ros demo --video` on the bags the logger wrote during the run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from mbrl_ros.data.episodes import Episode
from mbrl_ros.training.evaluation import open_loop_frames
from mbrl_ros.world_model.model import WorldModel


def imagination_frames(model: WorldModel, episodes: Sequence[Episode], context: int = 5, horizon: int = 15,
                       scale: int = 3) -> list[np.ndarray]:
    """uint8 frames [H*scale, 2*W*scale + gap, 3]: real | imagined, window after window."""
    frames = []
    for ep in episodes:
        if "image" not in ep:
            raise ValueError("the episodes have no camera images to show")
        length = len(ep["reward"])
        for start in range(0, length - context, context + horizon):
            stop = min(length, start + context + horizon)
            window = {k: v[None, start:stop] for k, v in ep.items()}
            out = open_loop_frames(model, window, context)
            for real, imagined in zip(out["real"][0], out["imagined"][0]):
                gap = np.full((real.shape[0], 2, 3), 255, np.uint8)
                frame = np.concatenate([real, gap, imagined], axis=1)
                frames.append(frame.repeat(scale, 0).repeat(scale, 1))
    return frames


def save_imagination_video(checkpoint: Path, episodes: Sequence[Episode], out: Path, fps: float = 20.0) -> int:
    """Write a GIF (or anything imageio infers from `out`); returns the number of frames."""
    import imageio.v2 as imageio

    from mbrl_ros.world_model.checkpoint import load_world_model

    model, _ = load_world_model(Path(checkpoint))
    frames = imagination_frames(model, episodes)
    imageio.mimsave(out, frames, duration=1.0 / fps)
    return len(frames)
