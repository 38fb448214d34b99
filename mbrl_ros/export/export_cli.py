"""`mbrl-ros export`: checkpoint -> parity-checked ONNX bundle in a model store."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mbrl_ros.runtime.manifest import DEFAULT_FUSED_HORIZON

DEFAULT_PLAN_GRAPHS = ("cem", "mppi")  # = mbrl_ros.export.onnx_export.DEFAULT_PLAN_GRAPHS (no torch import here)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="world-model checkpoint (.pt)")
    parser.add_argument("--store", required=True, type=Path, help="model store directory (holds CURRENT)")
    parser.add_argument("--fused-horizon", type=int, default=DEFAULT_FUSED_HORIZON,
                        help="steps the imagine graph unrolls in one call: the CEM/MPPI horizon the bundle "
                             f"serves at full speed (default {DEFAULT_FUSED_HORIZON})")
    parser.add_argument("--plan-graphs", default=",".join(DEFAULT_PLAN_GRAPHS),
                        help="whole-plan graphs to add, one ONNX Runtime call per CEM/MPPI tick (planners "
                             "cem_graph/mppi_graph): comma-separated of cem,mppi, or none "
                             f"(default {','.join(DEFAULT_PLAN_GRAPHS)})")
    parser.add_argument("--plan-settings", default="{}",
                        help="JSON of the settings baked into each plan graph, which a planner config must match "
                             'to run it, e.g. \'{"cem": {"iterations": 3, "num_elites": 32}}\' (defaults: CEM 2 '
                             "iterations, 16 elites; MPPI 2 iterations, all samples weighted)")
    parser.add_argument("--plan-precisions", default="",
                        help="reduced-precision variants of the plan graphs besides fp32: int8 and/or fp16 "
                             "(planner_config precision selects one)")
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
    plan_graphs = () if args.plan_graphs.strip() == "none" else tuple(
        p.strip() for p in args.plan_graphs.split(",") if p.strip())
    precisions = tuple(p.strip() for p in args.plan_precisions.split(",") if p.strip())
    try:
        settings = json.loads(args.plan_settings)
    except json.JSONDecodeError as exc:
        print(f"mbrl-ros export: --plan-settings is not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(settings, dict) or set(settings) - set(plan_graphs):
        print(f"mbrl-ros export: --plan-settings must be an object keyed by the exported plan graphs "
              f"{list(plan_graphs)}, got {args.plan_settings}", file=sys.stderr)
        return 2
    plan_graphs = {p: settings.get(p, {}) for p in plan_graphs}
    try:
        result = export_checkpoint(args.checkpoint, args.store, fused_horizon=args.fused_horizon, keep=args.keep,
                                   tol=args.tol, publish=not args.no_publish, plan_graphs=plan_graphs,
                                   plan_precisions=precisions)
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
    from mbrl_ros.export.parity import DRIFT_PREFIX, parity_bounds

    for key, bound in parity_bounds(report, tol).items():
        drift = report.get(DRIFT_PREFIX + key)
        why = "" if drift is None else f"; torch fp32 vs fp64 {drift:.3e}"
        print(f"  {key:<20} {report[key]:.3e}  (bound {bound:.3g}{why})", file=stream)
