"""`mbrl-ros train`: train the world model from rosbag2 recordings or an episode cache.

    mbrl-ros train --bags bags/ --env mbrl_ros/Reacher2D-v0 --out runs/r1 --preset small --steps 5000
    mbrl-ros train --cache runs/r1/cache --out runs/r1 --steps 8000 --resume

With --bags the recordings are first ingested (mbrl_ros.data.bags.ingest_bags) into
<out>/cache; re-ingesting a bag already there is a no-op. Episodes ingested without a
reward (reward_source none) train the representation and dynamics only
(WorldModelConfig.reward_free()); `mbrl-ros relabel` then gives the model a task. Writes <out>/checkpoint.pt
(every --save-every steps and at the end) and TensorBoard logs to <out>/tb.
--steps is the TOTAL step count: `--resume` continues the checkpoint in <out> from
its step (same optimiser and RNG state) up to --steps.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CHECKPOINT = "checkpoint.pt"


def register(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--bags", type=Path, nargs="+", help="bag directories/files/folders to ingest into <out>/cache")
    src.add_argument("--cache", type=Path, help="an episode cache folder (already ingested)")
    parser.add_argument("--config", type=Path, default=None, help="ingest YAML for --bags (IngestConfig keys)")
    parser.add_argument("--env", default=None, help="for --bags: read joints/limits/image size from this env id")
    parser.add_argument("--active-grace", type=float, default=None,
                        help="for --bags: seconds; skip bags without metadata.yaml modified more recently")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.pt, tb/, cache/")
    parser.add_argument("--preset", default="small", choices=["tiny", "small", "large"])
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override WorldModelConfig fields, e.g. --set seq_len=64 lr_model=3e-4 "
                             "(with --resume: training fields only, not the architecture)")
    parser.add_argument("--steps", type=int, required=True, help="total gradient steps of the run")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much wall time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue <out>/checkpoint.pt")
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (more than the free cores slows training down a lot)")
    parser.add_argument("--device", default="cpu")


def parse_overrides(items: list[str]) -> dict:
    """KEY=VALUE strings -> dict, values parsed as JSON where possible (numbers, true/false)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"mbrl-ros train: --set wants KEY=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def open_cache(args: argparse.Namespace, prog: str, ingest_into: Path):
    """The EpisodeCache of --cache, or of --bags ingested (report printed once) into `ingest_into`,
    and the ObsSpec/ActionSpec to use (the ingest config's, or those the cache recorded).
    ValueError (one line) for a missing folder, a bad config or a task that does not fit."""
    from ..data.episodes import EpisodeCache

    if args.cache is not None:
        if not args.cache.is_dir():
            raise ValueError(f"cache folder {args.cache} does not exist")
        cache = EpisodeCache(args.cache)
        return cache, cache.obs_spec, cache.action_spec
    from ..data.ingest_cli import ingest_and_report, load_config

    config = load_config(args)
    cache = EpisodeCache(ingest_into)
    ingest_and_report(args.bags, cache, config, prog)
    return cache, config.obs_spec, config.action_spec


def load_episodes(args: argparse.Namespace):
    """(episodes, ObsSpec or None, ActionSpec or None, reward_free) from --bags (ingesting first,
    specs from the ingest config) or --cache (the specs recorded in the cache, if any)."""
    cache, obs_spec, action_spec = open_cache(args, "mbrl-ros train", args.out / "cache")
    return cache.episodes(), obs_spec, action_spec, cache.reward_free


def run(args: argparse.Namespace) -> int:
    import torch

    from ..world_model.config import WorldModelConfig
    from .trainer import Trainer

    torch.set_num_threads(max(1, args.threads))
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        episodes, obs_spec, action_spec, reward_free = load_episodes(args)
    except ValueError as exc:
        print(f"mbrl-ros train: {exc}", file=sys.stderr)
        return 2
    if not episodes:
        print("mbrl-ros train: no episodes to train on (did ingestion fail? see above)", file=sys.stderr)
        return 1
    ckpt = args.out / CHECKPOINT
    log_dir = args.out / "tb"
    if args.resume:
        if not ckpt.is_file():
            print(f"mbrl-ros train: --resume but {ckpt} does not exist", file=sys.stderr)
            return 1
        trainer = Trainer.resume(ckpt, episodes, config_overrides=parse_overrides(args.overrides),
                                 log_dir=log_dir, device=args.device)
    else:
        # a model for a robot must know which joint is which: the bundle's names are how the
        # controller finds its joints in JointState (every cache writer records them)
        where = f"mbrl-ros train: {args.cache or args.out / 'cache'}"
        try:
            if obs_spec is None:
                raise ValueError(f"{where}: the cache records no observation spec (joint names); ingest the "
                                 "recordings with `mbrl-ros ingest`, or add episodes with "
                                 "EpisodeCache.add(obs_spec=...)")
            obs_spec.require_joint_names(where)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        if ckpt.exists():
            print(f"mbrl-ros train: {ckpt} exists; pass --resume to continue it or choose another --out",
                  file=sys.stderr)
            return 1
        try:
            config = WorldModelConfig.preset(args.preset, **parse_overrides(args.overrides))
        except (TypeError, ValueError) as exc:
            print(f"mbrl-ros train: {exc}", file=sys.stderr)
            return 2
        if reward_free:
            config = config.reward_free()
            print("mbrl-ros train: the episodes carry no reward (reward_source none): training the representation "
                  "and dynamics only (no reward head, actor or value); give the model a task with "
                  "`mbrl-ros relabel`", file=sys.stderr)
        trainer = Trainer.create(config, episodes, obs_spec=obs_spec,
                                 action_dim=action_spec.dim if action_spec else None,
                                 seed=args.seed, log_dir=log_dir, device=args.device, action_spec=action_spec)
    (args.out / "config.json").write_text(json.dumps(trainer.config.to_dict(), indent=1))
    remaining = args.steps - trainer.step
    print(f"training {len(episodes)} episodes, step {trainer.step} -> {args.steps}", file=sys.stderr)
    if remaining > 0:
        trainer.train(remaining, max_seconds=args.minutes * 60 if args.minutes else None,
                      checkpoint_path=ckpt, save_every=args.save_every)
    else:
        trainer.save(ckpt)
    trainer.close()
    metrics = trainer.last_metrics
    summary = ", ".join(f"{k}={metrics[k]:.4g}" for k in ("loss/world_total", "loss/reward", "loss/kl")
                        if k in metrics)
    print(f"step {trainer.step}: {summary}; checkpoint {ckpt}")
    return 0
