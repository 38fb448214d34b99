"""`mbrl-ros export`: checkpoint -> parity-checked ONNX bundle in a model store."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mbrl_ros.runtime.manifest import DEFAULT_FUSED_HORIZON


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="world-model checkpoint (.pt)")
    parser.add_argument("--store", required=True, type=Path, help="model store directory (holds CURRENT)")
    parser.add_argument("--fused-horizon", type=int, default=DEFAULT_FUSED_HORIZON,
                        help="steps the imagine graph unrolls in one call: the CEM/MPPI horizon the bundle "
                             f"serves at full speed (default {DEFAULT_FUSED_HORIZON})")
    parser.add_argument("--keep", type=int, default=3, help="published versions to keep (CURRENT always kept)")
    parser.add_argument("--tol", type=float, default=1e-4,
                        help="max scaled |onnx - torch| allowed (10x that for the free-running 50-step rollouts)")
    parser.add_argument("--no-publish", action="store_true",
                        help="write and check the version but leave CURRENT pointing where it was")


def run(args: argparse.Namespace) -> int:
    from mbrl_ros.export.parity import ParityError
    from mbrl_ros.export.publish import export_checkpoint
    from mbrl_ros.runtime.manifest import BundleError

    if args.fused_horizon < 1:
        print(f"mbrl-ros export: --fused-horizon must be >= 1, got {args.fused_horizon}", file=sys.stderr)
        return 2
    try:
        result = export_checkpoint(args.checkpoint, args.store, fused_horizon=args.fused_horizon, keep=args.keep,
                                   tol=args.tol, publish=not args.no_publish)
    except ParityError as exc:
        print(f"mbrl-ros export: NOT published: {exc}", file=sys.stderr)
        print_parity(exc.report, args.tol, sys.stderr)
        return 1
    except (ValueError, BundleError, OSError) as exc:
        print(f"mbrl-ros export: {exc}", file=sys.stderr)
        return 1
    print(f"exported {result.version} -> {result.path}")
    print("parity, max |onnx - torch| / max(1, |torch|):")
    print_parity(result.parity, args.tol, sys.stdout)
    print("published: CURRENT ->", result.version if result.published else "(unchanged, --no-publish)")
    return 0


def print_parity(report: dict, tol: float, stream) -> None:
    """One line per parity figure, with the bound it was held to."""
    from mbrl_ros.export.parity import parity_bounds

    for key, bound in parity_bounds(report, tol).items():
        print(f"  {key:<20} {report[key]:.3e}  (bound {bound:g})", file=stream)
