"""`mbrl-ros ingest`: rosbag2 recordings -> episode cache (re-ingesting a bag is a no-op).

    mbrl-ros ingest --bags bags/ --cache cache/ --config bags/ingest.yaml
    mbrl-ros ingest --bags rec1/ rec2.mcap --cache cache/ --env mbrl_ros/Reacher2D-v0

Prints one line per bag (episodes, the control rate and where it came from, observation
gaps that split or were bridged, the share of repeated camera frames), then each warning once.
Exit status 1 if any bag failed (its error names the bag and topic) or nothing was ingested
(no bags found, none gave an episode), 2 for a bad config or path (one line, no traceback).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bags", type=Path, nargs="+", required=True,
                        help="bag directories, .mcap/.db3 files, or folders holding bags")
    parser.add_argument("--cache", type=Path, required=True, help="episode cache folder")
    parser.add_argument("--config", type=Path, default=None,
                        help="ingest YAML (IngestConfig keys, optionally under 'ingest:')")
    parser.add_argument("--env", default=None,
                        help="take joints, action limits, image size and rate from this mbrl_ros env id "
                             "(when no --config is given)")
    parser.add_argument("--active-grace", type=float, default=None,
                        help="seconds: skip bags without metadata.yaml modified more recently (still recording)")


def load_config(args: argparse.Namespace):
    from .bags import IngestConfig

    if args.config is not None:
        config = IngestConfig.from_yaml(args.config)
    elif args.env is not None:
        import mbrl_ros.envs as envs

        try:
            env = envs.make(args.env, render_image=True)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        config = IngestConfig.for_env(env)
        env.close()
    else:
        raise SystemExit("mbrl-ros ingest: give --config YAML or --env ID to say how to read the bags")
    if args.active_grace is not None:
        from dataclasses import replace

        config = replace(config, active_grace_s=args.active_grace)
    return config


def ingest_and_report(bags, cache, config, prog: str):
    """Ingest, print the report once (per-bag lines, each warning once); the IngestReport.

    The bags logger is silenced meanwhile: the summary lists its warnings, and printing both
    showed every warning twice. Raises ValueError (one line) for a missing path or a task
    that does not fit the config."""
    import logging

    from .bags import ingest_bags

    logger = logging.getLogger("mbrl_ros.data.bags")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        report = ingest_bags(bags, cache, config)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    finally:
        logger.setLevel(level)
    print(report.summary(), file=sys.stderr)
    if not report.bags:
        print(f"{prog}: no rosbag2 recording found under {' '.join(map(str, bags))}", file=sys.stderr)
    elif report.ingested_nothing:
        print(f"{prog}: nothing was ingested (see the errors above)", file=sys.stderr)
    return report


def run(args: argparse.Namespace) -> int:
    from .episodes import EpisodeCache

    try:
        config = load_config(args)
        report = ingest_and_report(args.bags, EpisodeCache(args.cache), config, "mbrl-ros ingest")
    except ValueError as exc:
        print(f"mbrl-ros ingest: {exc}", file=sys.stderr)
        return 2
    return 1 if report.errors or report.ingested_nothing else 0
