"""`mbrl-ros evaluate`: open-loop prediction errors and reward R^2 on held-out episodes.

    mbrl-ros evaluate --checkpoint runs/r1/checkpoint.pt --cache heldout_cache/ --out runs/r1/eval
    mbrl-ros evaluate --checkpoint runs/r1/checkpoint.pt --bags heldout_bags/ --config ingest.yaml --out runs/r1/eval

With --bags the held-out recordings are ingested into <out>/cache first (as `train --bags`).
A model trained without a reward (or episodes without one) has no meaningful reward R^2 (nan).

Prints a table (horizons 1/5/15/50 by default; "filter" = posterior reconstruction)
and writes <out>/metrics.json, <out>/open_loop.png (rows: real / imagined) and
<out>/open_loop.gif (real | imagined).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--cache", type=Path, help="episode cache of held-out episodes")
    src.add_argument("--bags", type=Path, nargs="+", help="held-out bag directories/files/folders, ingested "
                     "into <out>/cache first")
    parser.add_argument("--config", type=Path, default=None, help="ingest YAML for --bags (IngestConfig keys)")
    parser.add_argument("--env", default=None, help="for --bags: read joints/limits/image size from this env id")
    parser.add_argument("--active-grace", type=float, default=None,
                        help="for --bags: seconds; skip bags without metadata.yaml modified more recently")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics.json and the PNG/GIF")
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 5, 15, 50])
    parser.add_argument("--max-episodes", type=int, default=None, help="use only the first N episodes")
    parser.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..world_model.checkpoint import load_world_model
    from .evaluation import evaluate, format_joint_table, format_table
    from .train_cli import open_cache

    torch.set_num_threads(max(1, args.threads))
    try:
        model, payload = load_world_model(args.checkpoint)
        cache, _, _ = open_cache(args, "mbrl-ros evaluate", args.out / "cache")
    except ValueError as exc:
        print(f"mbrl-ros evaluate: {exc}", file=sys.stderr)
        return 1
    episodes = cache.episodes()[:args.max_episodes]
    if not episodes:
        print(f"mbrl-ros evaluate: no episodes in {cache.root}", file=sys.stderr)
        return 1
    try:  # e.g. episodes recorded with joints a pixels-only model never read: say so before any work
        for ep in episodes:
            model.check_batch({key: value[None] for key, value in ep.items()})
    except ValueError as exc:
        print(f"mbrl-ros evaluate: the episodes in {cache.root} do not fit {args.checkpoint}: {exc}", file=sys.stderr)
        return 1
    report = evaluate(model, episodes, horizons=args.horizons, out_dir=args.out)
    print(f"checkpoint {args.checkpoint} (step {payload['step']}), {len(episodes)} held-out episodes")
    print(format_table(report))
    joint_table = format_joint_table(report, model.obs_spec.joint_names)
    if joint_table:
        print(joint_table)
    print(f"wrote {args.out / 'metrics.json'}" + (f", {args.out / 'open_loop.png'}, {args.out / 'open_loop.gif'}"
                                                 if model.obs_spec.has_image else ""))
    return 0
