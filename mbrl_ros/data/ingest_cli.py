"""`mbrl-ros ingest`: rosbag2 recordings -> episode cache (re-ingesting a bag is a no-op).

    mbrl-ros ingest --bags bags/ --cache cache/ --config bags/ingest.yaml
    mbrl-ros ingest --bags rec1/ rec2.mcap --cache cache/ --env mbrl_ros/Reacher2D-v0

Exit status 1 if any bag failed (its error names the bag and topic), else 0.
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

        env = envs.make(args.env, render_image=True)
        config = IngestConfig.for_env(env)
        env.close()
    else:
        raise SystemExit("mbrl-ros ingest: give --config YAML or --env ID to say how to read the bags")
    if args.active_grace is not None:
        from dataclasses import replace

        config = replace(config, active_grace_s=args.active_grace)
    return config


def run(args: argparse.Namespace) -> int:
    import logging

    from .bags import ingest_bags
    from .episodes import EpisodeCache

    logging.getLogger("mbrl_ros.data.bags").setLevel(logging.CRITICAL)  # the summary below lists them
    config = load_config(args)
    report = ingest_bags(args.bags, EpisodeCache(args.cache), config)
    print(report.summary(), file=sys.stderr)
    return 1 if report.errors else 0
