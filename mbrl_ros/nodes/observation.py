"""Camera frames and joint states -> the model's observation, for live messages.

Pure numpy (+ Pillow for resizing, shared with ingest): the controller node hands in message
fields, so this is tested without ROS.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from mbrl_ros.data.ros_messages import resize_image
from mbrl_ros.spec import ObsSpec

IMAGE_ENCODINGS = ("rgb8", "bgr8", "mono8")


def image_to_rgb(encoding: str, height: int, width: int, step: int, data, size: Optional[tuple[int, int]] = None,
                 resize: bool = False) -> np.ndarray:
    """uint8[H, W, 3] RGB from an image message's fields.

    Raises ValueError for unknown encodings, inconsistent sizes, or (unless
    `resize`) an image whose size is not `size`.
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"image encoding '{encoding}' not supported (use one of {', '.join(IMAGE_ENCODINGS)})")
    channels = 1 if encoding == "mono8" else 3
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data, np.uint8)
    if height <= 0 or width <= 0 or step < width * channels or buf.size < step * height:
        raise ValueError(f"image {width}x{height} {encoding} with step {step} does not fit {buf.size} bytes")
    img = buf[: step * height].reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    if encoding == "mono8":
        img = np.repeat(img, 3, axis=2)
    elif encoding == "bgr8":
        img = img[..., ::-1]
    if size is not None and (height, width) != tuple(size):
        if not resize:
            raise ValueError(f"image is {height}x{width}, the model takes {size[0]}x{size[1]} "
                             "(set resize_images to resize)")
        # The same resampling as ingest (area averaging when shrinking): the model sees live frames
        # as it saw the recorded ones it was trained on.
        img = resize_image(np.ascontiguousarray(img), tuple(size))
    return np.ascontiguousarray(img, dtype=np.uint8)


def joint_names_for(obs_spec: ObsSpec) -> tuple[list[str], bool]:
    """(names to look up in JointState, whether the vector holds velocities too).

    joint_names "<j>.pos"... "<j>.vel"... -> joints j, positions then velocities;
    anything else -> one JointState entry per element, positions only.
    """
    names = list(obs_spec.joint_names) or [f"state[{i}]" for i in range(obs_spec.joint_dim)]
    half = len(names) // 2
    pos, vel = names[:half], names[half:]
    if half and len(names) % 2 == 0 and all(n.endswith(".pos") for n in pos) \
            and [n[:-4] for n in pos] == [n[:-4] for n in vel if n.endswith(".vel")]:
        return [n[:-4] for n in pos], True
    return names, False


def joints_from_state(wanted: Sequence[str], with_velocity: bool, names: Sequence[str],
                      position: Sequence[float], velocity: Sequence[float]) -> np.ndarray:
    """float32 joint vector ordered by `wanted` names (recorded order and extra joints don't matter).

    Raises ValueError for a missing joint, missing velocities or non-finite values.
    """
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise ValueError(f"joint state lacks joints {missing} (has {list(names)})")
    idx = [index[n] for n in wanted]
    position = np.asarray(position, np.float64)
    if len(position) != len(names):
        raise ValueError(f"joint state has {len(names)} names but {len(position)} positions")
    parts = [position[idx]]
    if with_velocity:
        velocity = np.asarray(velocity, np.float64)
        if len(velocity) != len(names):
            raise ValueError(f"joint state has {len(names)} names but {len(velocity)} velocities")
        parts.append(velocity[idx])
    vec = np.concatenate(parts).astype(np.float32)
    if not np.all(np.isfinite(vec)):
        raise ValueError(f"joint state has NaN/inf: {vec.tolist()}")
    return vec


def replaces_held(held_stamp: float, new_stamp: float, now: float, input_timeout_s: float) -> bool:
    """Whether a message stamped `new_stamp` may replace the one held (stamped `held_stamp`), at `now`.

    An older message never replaces a fresh one: from one driver a topic arrives in order, so an
    older stamp comes from a second publisher (or a replay), and letting it in would make fresh
    inputs look stale and stop the robot on demand. It may replace a held message that is stale
    already (nothing to lose), or one stamped ahead of `now` (the clock went back: a sim restart).
    """
    if new_stamp >= held_stamp:
        return True
    held_age = now - held_stamp
    return held_age < 0.0 or held_age > input_timeout_s
