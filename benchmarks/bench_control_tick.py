"""Control-tick latency: belief update + planning, ONNX Runtime vs eager torch, same process.

    .venv/bin/python benchmarks/bench_control_tick.py --checkpoint models/reacher2d/checkpoint.pt
    .venv/bin/python benchmarks/bench_control_tick.py --random-init        # small preset, random weights
    .venv/bin/python benchmarks/bench_control_tick.py --checkpoint models/reacher2d/checkpoint.pt \
        --planners cem,cem_graph,cem_graph:int8 --plan-precisions int8 --no-torch   # whole-plan graphs (issue 30)

One tick is what the controller does every control period, timed as it runs there:
`ControlLoop.tick()` (fold the newest camera frame + joints and the last action into
the belief, shift the warm start, plan, clamp), each planner at its default config
(CEM/MPPI at the bundle's fused horizon), without a deadline so both backends do the
same search. The torch row runs the same ControlLoop over the torch model. The same observations
(a recorded random-action episode of the camera reacher) and the same planner seeds
drive both backends, so the work per tick is equal; both run with the same thread
count (--threads). Reports p50/p99 per tick, latent transitions per tick, the
torch/ORT ratio, and the fp32 roofline: the ORT tick with its model time replaced by
(FLOPs of the tick's transitions / this core's GEMM peak), i.e. the fastest tick any
fp32 engine could give at equal work, and the torch/ORT ratio that would make.
Targets (issue 5): default CEM and MCTS p99 <= 20 ms (50 Hz) on ORT, ORT >= 2x eager
torch at equal work. A planner may be given as name:precision (cem_graph:int8), its
planner_config precision; the "vs first" columns are each ORT row's p50/p99 over the first
planner's, measured in this same run (issue 30: default CEM p99 <= 10 ms).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("MUJOCO_GL", "egl")

from common import TimedModel, percentiles, print_header  # noqa: E402
from roofline import flops_per_latent_step, gemm_peak_gflops  # noqa: E402


class TimedPlanGraph:
    """A bundle's PlanGraph whose run() time is added to `timed`.seconds (a TimedModel)."""

    def __init__(self, inner, timed):
        self.inner, self.timed, self.plan = inner, timed, inner.plan

    def run(self, feeds):
        return self.timed._timed(self.inner.run, feeds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path)
    src.add_argument("--random-init", action="store_true", help="small preset with random weights")
    parser.add_argument("--planners", default="cem,mcts,mppi")
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch and ORT intra-op threads (equal work)")
    parser.add_argument("--fused-horizon", type=int, default=10, help="fused imagine length of the exported bundle")
    parser.add_argument("--plan-precisions", default="",
                        help="extra plan-graph variants to export, e.g. int8 (cem_graph:int8 then runs them)")
    parser.add_argument("--no-torch", action="store_true", help="skip the eager-torch rows")
    parser.add_argument("--interleave", action="store_true",
                        help="(with --no-torch) tick the planners in turn, one tick each per round, so a "
                             "shared machine's changing load hits every row alike (fairer ratios)")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import mbrl_ros.envs as envs
    from mbrl_ros.agent.common import BundleStore, ControlPolicy, control_loop
    from mbrl_ros.runtime.belief import BeliefFilter
    from mbrl_ros.runtime.control import planner_config_for
    from mbrl_ros.data.episodes import random_policy, rollout_episode
    from mbrl_ros.export import export_to_store
    from mbrl_ros.runtime.model_store import ModelStore
    from mbrl_ros.runtime.sessions import SessionConfig
    from mbrl_ros.world_model.checkpoint import load_world_model
    from mbrl_ros.world_model.config import WorldModelConfig
    from mbrl_ros.world_model.latent_adapter import TorchFilterModel, TorchLatentModel
    from mbrl_ros.world_model.model import WorldModel

    env = envs.make("mbrl_ros/Reacher2D-v0")
    u = env.unwrapped
    if args.checkpoint:
        wm, _ = load_world_model(args.checkpoint)
        what = f"checkpoint {args.checkpoint}"
    else:
        torch.manual_seed(0)
        wm = WorldModel(WorldModelConfig.preset("small"), u.obs_spec, u.action_spec.dim).eval()
        what = "small preset, random init"
    store = Path(tempfile.mkdtemp(prefix="bench_tick_"))
    precisions = tuple(p for p in args.plan_precisions.split(",") if p)
    export_to_store(wm, store, fused_horizon=args.fused_horizon, action_spec=u.action_spec,
                    plan_precisions=precisions)
    bundle = ModelStore(store, session_config=SessionConfig(intra_op_threads=args.threads), required=True).current
    ort_latent = bundle.latent

    class TorchBundle(TorchFilterModel):
        """The torch model in the bundle's place (its action spec and horizon), so the torch row
        ticks through the same ControlLoop; model calls timed as the ORT row's."""

        def __init__(self, world_model, like):
            super().__init__(world_model, version="torch")
            self.latent = TimedModel(TorchLatentModel(world_model))
            self.action_spec, self.manifest, self.path = like.action_spec, like.manifest, like.path
    episode = rollout_episode(env, random_policy(2), seed=0)
    observations = [{"image": episode["image"][t], "joints": episode["joints"][t]} for t in range(len(episode["reward"]))]

    print_header("control tick: belief update + planning, ORT vs eager torch",
                 {"model": what, "threads": args.threads, "ticks": args.ticks, "warmup": args.warmup,
                  "bundle fused horizon": args.fused_horizon, "obs": "64x64 camera + 4 joints",
                  "plan graphs": ",".join(sorted(bundle.latent.plan_graphs)) or "none"})
    torch_latent = TorchLatentModel(wm)
    step_flops = flops_per_latent_step(torch_latent, BeliefFilter(TorchFilterModel(wm)).update(observations[0], None),
                                       wm.action_dim, args.fused_horizon)
    peak = max(gemm_peak_gflops().values()) * 1e9 * args.threads   # linear scaling: an upper bound
    print(f"roofline: {step_flops / 1e6:.3f} MFLOP per latent transition; fp32 GEMM peak "
          f"{peak / 1e9:.1f} GFLOP/s ({args.threads} thread(s))")
    print(f"{'planner':14} {'backend':6} {'p50 ms':>8} {'p99 ms':>8} {'transitions/tick':>17} {'torch/ORT p50':>14}"
          f" {'model ms':>13} {'fp32 floor ms':>14} {'max torch/ORT':>14} {'p50 vs first':>13} {'p99 vs first':>13}")
    if args.interleave:
        if not args.no_torch:
            parser.error("--interleave needs --no-torch")
        return interleaved(args, bundle, ort_latent, observations, u.action_spec)
    first = None
    for spec in args.planners.split(","):
        name, _, precision = spec.partition(":")
        # the controller's own planner config (CEM/MPPI horizon = the bundle's fused horizon)
        config = planner_config_for(name, {"precision": precision} if precision else {}, bundle)
        rows = {}
        for backend in ("onnx",) if args.no_torch else ("onnx", "torch"):
            if backend == "onnx":
                bundle.latent = model = TimedModel(ort_latent)
                # whole-plan graph calls count as model time too (the graph is the model plus the refits)
                model.plan_graphs = {k: TimedPlanGraph(g, model) for k, g in ort_latent.plan_graphs.items()}
                ticking = bundle
            else:
                ticking = TorchBundle(wm, bundle)
                model = ticking.latent
            policy = ControlPolicy(control_loop(BundleStore(ticking), name, config, seed=0,
                                                action_spec=u.action_spec))
            times, transitions, model_times = [], [], []
            for i in range(args.warmup + args.ticks):
                obs = observations[i % len(observations)]
                start, model.seconds = time.perf_counter(), 0.0
                policy.act(obs)
                times.append(time.perf_counter() - start)
                transitions.append(policy.last_result.info.get("transitions", 0))
                model_times.append(model.seconds)
            p = percentiles(np.array(times[args.warmup:]) * 1e3)
            rows[backend] = (p, int(np.mean(transitions[args.warmup:])),
                             float(np.median(model_times[args.warmup:])) * 1e3)
        (po, to, model_ms) = rows["onnx"]
        first = first or po
        vs_first = f" {po['p50'] / first['p50']:12.2f}x {po['p99'] / first['p99']:12.2f}x"
        if args.no_torch:
            print(f"{spec:14} {'ORT':6} {po['p50']:8.2f} {po['p99']:8.2f} {to:17d} {'':14} {model_ms:13.2f}"
                  f" {'':14} {'':14}{vs_first}", flush=True)
            continue
        (pt, tt, torch_model_ms) = rows["torch"]
        # The best any fp32 engine could do: ORT's tick with its model calls at the GEMM peak.
        floor_ms = to * step_flops / peak * 1e3
        best_tick = po["p50"] - model_ms + floor_ms
        print(f"{spec:14} {'ORT':6} {po['p50']:8.2f} {po['p99']:8.2f} {to:17d} {pt['p50'] / po['p50']:13.2f}x"
              f" {model_ms:13.2f} {floor_ms:14.2f} {pt['p50'] / best_tick:13.2f}x{vs_first}")
        print(f"{spec:14} {'torch':6} {pt['p50']:8.2f} {pt['p99']:8.2f} {tt:17d} {'':14} {torch_model_ms:13.2f}",
              flush=True)
    return 0


def interleaved(args, bundle, ort_latent, observations, action_spec) -> int:
    """All ORT rows ticking in turn (round robin), then one line each; ratios against the first planner."""
    import numpy as np

    from mbrl_ros.agent.common import BundleStore, ControlPolicy, control_loop
    from mbrl_ros.runtime.control import planner_config_for

    bundle.latent = model = TimedModel(ort_latent)
    model.plan_graphs = {k: TimedPlanGraph(g, model) for k, g in ort_latent.plan_graphs.items()}
    specs = args.planners.split(",")
    policies = {}
    for spec in specs:
        name, _, precision = spec.partition(":")
        config = planner_config_for(name, {"precision": precision} if precision else {}, bundle)
        policies[spec] = ControlPolicy(control_loop(BundleStore(bundle), name, config, seed=0,
                                                    action_spec=action_spec))
    times = {spec: [] for spec in specs}
    model_times = {spec: [] for spec in specs}
    transitions = {spec: 0 for spec in specs}
    for i in range(args.warmup + args.ticks):
        obs = observations[i % len(observations)]
        for spec in specs:
            start, model.seconds = time.perf_counter(), 0.0
            policies[spec].act(obs)
            if i >= args.warmup:
                times[spec].append(time.perf_counter() - start)
                model_times[spec].append(model.seconds)
                transitions[spec] = policies[spec].last_result.info.get("transitions", 0)
    first = None
    for spec in specs:
        p = percentiles(np.array(times[spec]) * 1e3)
        first = first or p
        print(f"{spec:14} {'ORT':6} {p['p50']:8.2f} {p['p99']:8.2f} {transitions[spec]:17d} {'':14}"
              f" {float(np.median(model_times[spec])) * 1e3:13.2f} {'':14} {'':14}"
              f" {p['p50'] / first['p50']:12.2f}x {p['p99'] / first['p99']:12.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
