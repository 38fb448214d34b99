#!/usr/bin/env python3
"""Per-tick latency of the latent planners (CEM, MPPI, MCTS) on a LatentModel.

Each tick = planner.plan(state) at the planner's config (defaults unless
overridden), then the state moves on by model.step with the chosen action, as
in the control loop (so warm starts and MCTS tree reuse are exercised).
Reports p50/p99 per tick, latent transitions per tick, the share of the tick
spent inside the model, and ratios against a baseline measured in the same
process: one model.imagine call of 128 sequences x 10 steps (one default CEM
iteration's model work).

Models (--model):
  gru                 random-weight numpy GRU RSSM (sizes from --deter/--stoch/--hidden/--action-dim)
  analytic            the double integrator of the planner tests (model cost ~0)
  onnx:<bundle_dir>   an exported bundle via mbrl_ros.runtime.bundle.load_bundle
  torch:<checkpoint>  a world-model checkpoint via mbrl_ros.world_model (needs torch)

Example:
  .venv/bin/python benchmarks/bench_planning.py --model gru --ticks 60
  .venv/bin/python benchmarks/bench_planning.py --model onnx:<bundle_dir> --ort-threads 1 \
      --planners cem,cem_graph,cem_graph:int8,cem_graph:fp16     # whole-plan graphs (name:precision)
(whole-plan graph planners spend their tick in one graph call the "model %" column does not count)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gru", help="gru | analytic | onnx:<bundle_dir> | torch:<checkpoint>")
    p.add_argument("--planners", default="cem,mppi,mcts")
    p.add_argument("--ticks", type=int, default=60, help="timed ticks per planner")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--deter", type=int, default=128)
    p.add_argument("--stoch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--action-dim", type=int, default=2)
    p.add_argument("--override", default="{}",
                   help='JSON config overrides per planner, e.g. \'{"cem": {"horizon": 12}}\'')
    p.add_argument("--blas-threads", type=int, default=1,
                   help="OPENBLAS/OMP threads for numpy (set before numpy loads; 0 = leave as is)")
    p.add_argument("--ort-threads", type=int, default=0,
                   help="onnx: ONNX Runtime intra-op threads (0 = the runtime's SessionConfig default)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def load_model(spec: str, args):
    """(LatentModel, initial batch-1 LatentState, description). Real loaders import lazily."""
    kind, _, where = spec.partition(":")
    if kind == "gru":
        from mbrl_ros.runtime.planners.testing import RandomGRULatentModel
        m = RandomGRULatentModel(args.action_dim, args.deter, args.stoch, args.hidden, seed=args.seed)
        return m, m.initial_state(), f"random numpy GRU RSSM deter={args.deter} stoch={args.stoch} " \
                                     f"hidden={args.hidden} A={args.action_dim}"
    if kind == "analytic":
        from mbrl_ros.runtime.planners.testing import DoubleIntegratorModel, state_of
        return DoubleIntegratorModel(dt=0.2), state_of([0.25, -0.1]), "double integrator (analytic)"
    if kind == "onnx":
        from mbrl_ros.runtime.bundle import load_bundle  # numpy + onnxruntime only
        from mbrl_ros.runtime.sessions import SessionConfig
        session = SessionConfig(intra_op_threads=args.ort_threads) if args.ort_threads else SessionConfig()
        bundle = load_bundle(Path(where), session)
        return bundle.latent, bundle.initial_state(), (f"ONNX bundle {where} (version {bundle.version}, "
                                                       f"deter={bundle.manifest.deter} stoch={bundle.manifest.stoch}, "
                                                       f"ORT intra-op threads {session.intra_op_threads or 'default'})")
    if kind == "torch":
        from mbrl_ros.runtime.latent import LatentState
        from mbrl_ros.world_model.checkpoint import load_world_model  # pulls in torch
        from mbrl_ros.world_model.latent_adapter import TorchLatentModel
        wm, _ = load_world_model(Path(where))
        h, z = wm.initial_state(1)
        return TorchLatentModel(wm), LatentState(h.numpy(), z.numpy()), f"torch checkpoint {where}"
    raise SystemExit(f"--model: unknown kind {kind!r} (gru | analytic | onnx:<dir> | torch:<ckpt>)")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.blas_threads > 0:  # must happen before numpy is imported
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import TimedModel, command, machine, p50_p99
    import numpy as np
    from mbrl_ros.runtime.planners import PLANNERS, make_planner
    from mbrl_ros.runtime.planners.base import config_from

    overrides = json.loads(args.override)
    model, state0, description = load_model(args.model, args)
    print("command:", command())
    print("machine:", machine())
    print(f"numpy {np.__version__}, BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    print("model:", description, f"(action_dim={model.action_dim}, has_value={model.has_value})")

    # Baseline in this process: one batched imagine of 128 x 10 (a default CEM iteration's model work).
    base_actions = np.zeros((128, 10, model.action_dim), np.float32)
    base_times = []
    for i in range(args.warmup + args.ticks):
        t0 = time.perf_counter()
        model.imagine(state0, base_actions)
        if i >= args.warmup:
            base_times.append(time.perf_counter() - t0)
    base_p50, base_p99 = p50_p99(np.asarray(base_times) * 1e3)
    print(f"baseline imagine(128 x 10): p50 {base_p50:.2f} ms  p99 {base_p99:.2f} ms")
    print()
    header = f"{'planner':8s} {'p50 ms':>8s} {'p99 ms':>8s} {'p50/base':>9s} {'transitions':>12s} " \
             f"{'model %':>8s} {'iters':>6s} {'<=20ms %':>9s}"
    print(header)
    rows = []
    for spec in [n.strip() for n in args.planners.split(",") if n.strip()]:
        name, _, precision = spec.partition(":")  # cem_graph:int8 -> planner_config precision "int8"
        cfg_over = dict(overrides.get(name, {}), **({"precision": precision} if precision else {}))
        if name in ("cem", "mppi", "cem_graph", "mppi_graph") and "horizon" not in cfg_over and \
                hasattr(model, "fused_horizon"):
            cfg_over["horizon"] = int(model.fused_horizon)  # match the bundle's fused imagine graph
        config = config_from(PLANNERS[name][1], cfg_over)
        timed = TimedModel(model)
        planner = make_planner(name, timed, config, seed=args.seed)
        state = state0
        ticks, model_share, transitions, iters = [], [], [], []
        for i in range(args.warmup + args.ticks):
            timed.seconds = 0.0
            t0 = time.perf_counter()
            result = planner.plan(state)
            dt = time.perf_counter() - t0
            state, _, _ = model.step(state, result.action[None])
            if i >= args.warmup:
                ticks.append(dt)
                model_share.append(timed.seconds / dt)
                transitions.append(result.info["transitions"])
                iters.append(result.info["iterations"])
        p50, p99 = p50_p99(np.asarray(ticks) * 1e3)
        within = 100.0 * np.mean(np.asarray(ticks) <= 0.020)
        print(f"{spec:8s} {p50:8.2f} {p99:8.2f} {p50 / base_p50:9.2f} {np.mean(transitions):12.0f} "
              f"{100 * np.mean(model_share):8.1f} {np.mean(iters):6.1f} {within:9.1f}")
        rows.append((name, config))
    print()
    for name, config in rows:
        print(f"config {name}: {config}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
