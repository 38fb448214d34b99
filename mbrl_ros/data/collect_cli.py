"""`mbrl-ros collect`: run a simulated robot and record its episodes into rosbag2, no ROS needed.

The bags have the live system's topic layout (docs/data.md), so the same ingest path
serves sim and real robots. Writes `<out>/<prefix>_NNNN/` bag segments (rolled at
episode starts) and `<out>/ingest.yaml`, the config that ingests them:

    mbrl-ros collect --env mbrl_ros/Reacher2D-v0 --episodes 50 --out bags/
    mbrl-ros collect --env mbrl_ros/dmc-reacher_easy-v0 --env-kwargs '{"action_repeat": 2}' --episodes 5 --out bags/
    mbrl-ros ingest --bags bags/ --cache cache/ --config bags/ingest.yaml
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="mbrl_ros/Reacher2D-v0", help="env id from mbrl_ros.envs")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--policy", choices=("random", "scripted"), default="random",
                        help="uniform random actions, or the env's scripted expert")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    parser.add_argument("--out", type=Path, required=True, help="folder for the bag segments")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--env-kwargs", type=env_kwargs_json, default={}, metavar="JSON",
                        help="keyword arguments of the env, as a task config's env_kwargs, e.g. "
                             "'{\"action_repeat\": 2}' for a DMC task")
    parser.add_argument("--max-steps", type=int, default=None, help="cap on steps per episode")
    parser.add_argument("--segment-seconds", type=float, default=300.0,
                        help="roll to a new bag segment after this much sim time (at an episode start)")
    parser.add_argument("--prefix", default="collect", help="bag segment name prefix")


def env_kwargs_json(text: str) -> dict:
    """--env-kwargs: a JSON object, or a one-line error saying what it got."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg} at column {exc.colno}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"action_repeat\": 2}}', got {text!r}")
    return value


def collect(env_id: str, episodes: int, out: Path, policy: str = "random", seed: int = 0,
            storage: str = "mcap", image_size: int = 64, max_steps=None, segment_seconds: float = 300.0,
            prefix: str = "collect", progress: bool = True, env_kwargs: Optional[dict] = None) -> list[Path]:
    """Record `episodes` episodes; returns the closed bag segment paths."""
    import yaml
    from tqdm import tqdm

    import mbrl_ros.envs as envs

    from .bag_writer import SegmentedBagWriter
    from .bags import IngestConfig
    from .episodes import random_policy, rollout_episode
    from .sim_recorder import BagRecordingEnv, scripted_policy

    kwargs = {"image_size": image_size, **(env_kwargs or {})}
    try:
        env = envs.make(env_id, **kwargs)
    except TypeError as exc:  # an argument the env does not take
        raise SystemExit(f"mbrl-ros collect: {env_id} does not accept --env-kwargs {env_kwargs}: {exc}") from None
    if not env.unwrapped.obs_spec.joint_dim:
        env.close()
        # ingest builds each step from the latest camera frame and /joint_states message (docs/data.md)
        raise SystemExit(f"mbrl-ros collect: {env_id} with {env_kwargs or {}} observes no joints (pixels only); "
                         "bags need joint states: record with its joints (for DMC, proprio: true)")
    config = IngestConfig.for_env(env)
    if policy == "scripted":
        act = scripted_policy(env)
        if act is None:
            raise SystemExit(f"mbrl-ros collect: {env_id} has no scripted policy; use --policy random")
    else:
        act = random_policy(env.action_space.shape[0])
    out = Path(out)
    with SegmentedBagWriter(out, prefix=prefix, storage=storage, max_segment_s=segment_seconds,
                            split_topic=config.episode_topic) as writer:
        recorder = BagRecordingEnv(env, writer, config)
        for i in tqdm(range(episodes), desc=f"collect {env_id}", unit="episode", disable=not progress):
            rollout_episode(recorder, act, seed=seed + i, max_steps=max_steps)
    env.close()
    (out / "ingest.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return writer.closed_segments


def run(args: argparse.Namespace) -> int:
    segments = collect(args.env, args.episodes, args.out, policy=args.policy, seed=args.seed,
                       storage=args.storage, image_size=args.image_size, max_steps=args.max_steps,
                       segment_seconds=args.segment_seconds, prefix=args.prefix, env_kwargs=args.env_kwargs)
    print(f"wrote {len(segments)} bag segment(s) under {args.out}; ingest with:\n"
          f"  mbrl-ros ingest --bags {args.out} --cache CACHE --config {args.out / 'ingest.yaml'}",
          file=sys.stderr)
    return 0
