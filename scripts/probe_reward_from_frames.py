"""Diagnostic: how well can the reacher's reward be read off ONE frame, without a world model?

    .venv/bin/python scripts/probe_reward_from_frames.py --minutes 4 --keypoints 16 --keypoints-only

Trains the world model's own image encoder (optionally keypoints only) + joint codec +
an MLP head to regress symlog(reward) from single (image, joints) frames, sampled
i.i.d. (batch 256) from the benchmark's training episodes, and prints the R^2 on the
training frames and on the held-out episodes as it goes. It bounds what the world
model's reward head can reach from the same data: the reward is -distance(fingertip,
target) (+1 within 3 cm), and the target is only in the image. Data: the caches that
benchmarks/bench_training.py writes (runs/bench_training/data); any folder holding a `train`
cache and a held-out one works, e.g. a DMC run's episodes (docs/experiments/dmc.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "bench_training" / "data")
    parser.add_argument("--heldout", default="heldout50")
    parser.add_argument("--keypoints", type=int, default=16)
    parser.add_argument("--keypoints-only", action="store_true", help="no flattened conv features")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shift", type=int, default=0,
                        help="DrQ random shift of each training frame by up to this many pixels (0: none)")
    parser.add_argument("--extra", action="append", default=[],
                        help="another cache under --data whose episodes join the training frames (repeatable)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from mbrl_ros.data.episodes import EpisodeCache
    from mbrl_ros.world_model.networks import ImageEncoder, JointCodec, mlp, symexp, symlog

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    from mbrl_ros.agent.drq import random_shift

    def frames(*names: str):
        eps = [e for name in names for e in EpisodeCache(args.data / name).episodes()]
        cat = lambda key: torch.as_tensor(np.concatenate([e[key][1:] for e in eps]))  # noqa: E731 (step 0: no reward)
        return cat("image"), cat("joints"), cat("reward"), len(eps)

    train, heldout = frames("train", *args.extra), frames(args.heldout)
    image_shape = tuple(train[0].shape[1:])
    encoder = ImageEncoder(image_shape, 16, args.keypoints, conv_features=not args.keypoints_only)
    # the angle joints the cache recorded (none for pixels-only DMC); the camera reacher's bench
    # caches predate that record, and its shoulder (joint 0) is an unlimited hinge
    spec = EpisodeCache(args.data / "train").obs_spec
    codec = JointCodec(train[1].shape[1], angle_joints=spec.angle_joints if spec is not None else (0,))
    joint_mlp = mlp(codec.feature_dim, 64, 128, 2)
    head = mlp(encoder.out_dim + 64, 1, 128, 2)
    params = [*encoder.parameters(), *joint_mlp.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, 6e-4)

    def predict(image, joints):
        return head(torch.cat([encoder(image), joint_mlp(codec.features(joints))], -1)).squeeze(-1)

    @torch.no_grad()
    def r2(data, limit=None) -> float:
        image, joints, reward = (t[:limit] for t in data[:3])
        pred = symexp(torch.cat([predict(image[i:i + 500], joints[i:i + 500]) for i in range(0, len(reward), 500)]))
        return float(1 - ((pred - reward) ** 2).sum() / ((reward - reward.mean()) ** 2).sum())

    print(f"command : {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"data    : {train[3]} train episodes ({len(train[2])} frames), {heldout[3]} held-out ({args.heldout})")
    print(f"encoder : keypoints={args.keypoints} conv_features={not args.keypoints_only}, batch 256 i.i.d. frames, "
          f"random shift {args.shift} px")
    start, step = time.perf_counter(), 0
    while time.perf_counter() - start < args.minutes * 60:
        idx = torch.randint(0, len(train[2]), (256,))
        images = random_shift(train[0][idx], args.shift, channels_first=False)
        loss = ((predict(images, train[1][idx]) - symlog(train[2][idx])) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0:
            print(f"step {step:5d} {time.perf_counter() - start:5.0f} s  R^2 train {r2(train, 4000):.3f}  "
                  f"held-out {r2(heldout):.3f}", flush=True)
        step += 1
    print(f"final: step {step}, R^2 train {r2(train, 4000):.3f}, held-out {r2(heldout):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
