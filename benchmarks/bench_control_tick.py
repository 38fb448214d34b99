"""Control-tick latency: belief update + planning, ONNX Runtime vs eager torch, same process.

    .venv/bin/python benchmarks/bench_control_tick.py --checkpoint models/reacher2d/checkpoint.pt
    .venv/bin/python benchmarks/bench_control_tick.py --random-init        # small preset, random weights

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
torch at equal work.
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
    export_to_store(wm, store, fused_horizon=args.fused_horizon, action_spec=u.action_spec)
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
                  "bundle fused horizon": args.fused_horizon, "obs": "64x64 camera + 4 joints"})
    torch_latent = TorchLatentModel(wm)
    step_flops = flops_per_latent_step(torch_latent, BeliefFilter(TorchFilterModel(wm)).update(observations[0], None),
                                       wm.action_dim, args.fused_horizon)
    peak = max(gemm_peak_gflops().values()) * 1e9 * args.threads   # linear scaling: an upper bound
    print(f"roofline: {step_flops / 1e6:.3f} MFLOP per latent transition; fp32 GEMM peak "
          f"{peak / 1e9:.1f} GFLOP/s ({args.threads} thread(s))")
    print(f"{'planner':8} {'backend':6} {'p50 ms':>8} {'p99 ms':>8} {'transitions/tick':>17} {'torch/ORT p50':>14}"
          f" {'model ms':>13} {'fp32 floor ms':>14} {'max torch/ORT':>14}")
    for name in args.planners.split(","):
        # the controller's own planner config (CEM/MPPI horizon = the bundle's fused horizon)
        config = planner_config_for(name, {}, bundle)
        rows = {}
        for backend in ("onnx", "torch"):
            if backend == "onnx":
                bundle.latent = model = TimedModel(ort_latent)
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
        (po, to, model_ms), (pt, tt, torch_model_ms) = rows["onnx"], rows["torch"]
        # The best any fp32 engine could do: ORT's tick with its model calls at the GEMM peak.
        floor_ms = to * step_flops / peak * 1e3
        best_tick = po["p50"] - model_ms + floor_ms
        print(f"{name:8} {'ORT':6} {po['p50']:8.2f} {po['p99']:8.2f} {to:17d} {pt['p50'] / po['p50']:13.2f}x"
              f" {model_ms:13.2f} {floor_ms:14.2f} {pt['p50'] / best_tick:13.2f}x")
        print(f"{name:8} {'torch':6} {pt['p50']:8.2f} {pt['p99']:8.2f} {tt:17d} {'':14} {torch_model_ms:13.2f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
