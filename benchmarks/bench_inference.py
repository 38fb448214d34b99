"""Inference benchmark: ONNX Runtime bundle vs eager torch on the same world model, same process.

Measures
  1. one control tick's belief update (encode one 64x64 image + joints, posterior step), p50/p99
     target: ORT p50 <= 2 ms
  2. imagine() throughput in latent steps/s (batch x horizon / time per call) at several batches
     target: ORT >= 2x eager torch
  3. the roofline for (2): FLOPs per latent step (counted by torch's FlopCounterMode on the
     same imagine call) and the single-thread fp32 GEMM peak of this CPU (the best of ORT and
     torch on a large square MatMul), so the printout says how much of the machine each side
     already uses and the largest ORT/torch ratio that fp32 arithmetic allows here

Usage:
  .venv/bin/python benchmarks/bench_inference.py [--preset small] [--checkpoint PATH]
      [--batches 256 1024 4096] [--threads 0 1 2] [--ticks 300] [--calls 20]

Random-init weights are fine for timing (the graph is the same); pass --checkpoint for a trained model.
Timings on a shared machine are noisy: compare ratios measured in one run, not across runs.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mbrl_ros.export import write_bundle  # noqa: E402
from mbrl_ros.export.parity import check_parity  # noqa: E402
from mbrl_ros.runtime import BeliefFilter, SessionConfig, load_bundle  # noqa: E402
from mbrl_ros.runtime.latent import imagine_by_steps  # noqa: E402
from mbrl_ros.spec import ObsSpec  # noqa: E402
from common import machine, p50_p99, timings  # noqa: E402
from roofline import flops_per_latent_step, gemm_peak_gflops  # noqa: E402
from mbrl_ros.world_model import WorldModel, WorldModelConfig  # noqa: E402
from mbrl_ros.world_model.latent_adapter import TorchFilterModel, TorchLatentModel  # noqa: E402


def build_model(args) -> WorldModel:
    if args.checkpoint:
        from mbrl_ros.world_model.checkpoint import load_world_model
        wm, _ = load_world_model(Path(args.checkpoint))
        return wm.eval()
    torch.manual_seed(0)
    obs = ObsSpec(joint_dim=args.joints, image_shape=(64, 64, 3))
    return WorldModel(WorldModelConfig.preset(args.preset), obs, args.action_dim).eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="small", choices=WorldModelConfig.PRESETS)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--joints", type=int, default=6)
    p.add_argument("--action-dim", type=int, default=2)
    p.add_argument("--batches", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 0],
                   help="ORT intra_op thread counts to try (0 = one per core)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads for the eager baseline (default 1 = ORT's default)")
    p.add_argument("--ticks", type=int, default=300)
    p.add_argument("--calls", type=int, default=20)
    args = p.parse_args()

    torch.set_num_threads(args.torch_threads)
    wm = build_model(args)
    torch_threads = torch.get_num_threads()
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {machine()}")
    print(f"versions: torch {torch.__version__} (threads {torch_threads}), onnxruntime "
          f"{__import__('onnxruntime').__version__}, numpy {np.__version__}")
    print(f"model: {'checkpoint ' + args.checkpoint if args.checkpoint else 'random init, preset ' + args.preset}"
          f" deter={wm.deter_dim} stoch={wm.stoch_dim} embed={wm.embed_dim} "
          f"obs={wm.obs_spec.to_dict()} action_dim={wm.action_dim}")

    with tempfile.TemporaryDirectory() as tmp:
        horizon = write_bundle(wm, Path(tmp), "v000001-s000000000").fused_horizon
        bundles = {t: load_bundle(Path(tmp), SessionConfig(providers=("CPUExecutionProvider",),
                                                           intra_op_threads=t)) for t in args.threads}
        check_parity(wm, bundles[args.threads[0]], steps=10)
        rng = np.random.default_rng(0)
        obs = {"image": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
               "joints": rng.normal(size=wm.obs_spec.joint_dim).astype(np.float32)}
        action = np.zeros(wm.action_dim, np.float32)

        print(f"\n[tick] belief update (encode 1 image + posterior step), {args.ticks} ticks, ms")
        torch_filter = BeliefFilter(TorchFilterModel(wm))
        base = timings(lambda: torch_filter.update(obs, action), args.ticks)
        b50, b99 = p50_p99(base)
        print(f"  {'eager torch':<22} p50 {b50 * 1e3:7.3f}  p99 {b99 * 1e3:7.3f}  (baseline)")
        for t, bundle in bundles.items():
            f = BeliefFilter(bundle)
            o50, o99 = p50_p99(timings(lambda: f.update(obs, action), args.ticks))
            print(f"  {f'ORT intra_op={t}':<22} p50 {o50 * 1e3:7.3f}  p99 {o99 * 1e3:7.3f}  "
                  f"speed-up p50 x{b50 / o50:.2f}  target p50<=2ms: {'met' if o50 <= 2e-3 else 'MISSED'}")

        torch_latent = TorchLatentModel(wm)
        state = BeliefFilter(TorchFilterModel(wm)).update(obs, None)
        step_flops = flops_per_latent_step(torch_latent, state, wm.action_dim, horizon)
        peak = gemm_peak_gflops()
        peak_best = max(peak.values())
        print(f"\n[roofline] {step_flops / 1e6:.3f} MFLOP per latent step (torch FlopCounterMode); "
              f"1-thread fp32 GEMM peak 1024^3: ORT {peak['ort']:.1f} GFLOP/s, torch {peak['torch']:.1f} GFLOP/s")
        print(f"\n[imagine] fused horizon {horizon}, {args.calls} calls per batch, latent steps/s (p50 call time)")
        for batch in args.batches:
            actions = rng.uniform(-1, 1, (batch, horizon, wm.action_dim)).astype(np.float32)
            base = timings(lambda: torch_latent.imagine(state, actions), args.calls, warmup=2)
            b50, b99 = p50_p99(base)
            # Peak on N threads taken as N x the 1-thread peak: generous, so the bound is an upper one.
            torch_gflops, peak_n = batch * horizon / b50 * step_flops / 1e9, peak_best * torch_threads
            print(f"  batch {batch:5d} {'eager torch':<18} {batch * horizon / b50:12,.0f} steps/s  "
                  f"p50 {b50 * 1e3:8.2f} ms  p99 {b99 * 1e3:8.2f} ms  (baseline)  "
                  f"{torch_gflops:.1f} GFLOP/s = {torch_gflops / peak_n:.0%} of {torch_threads}-thread peak: "
                  f"no fp32 engine on {torch_threads} thread(s) can beat it by more than x{peak_n / torch_gflops:.2f}")
            for t, bundle in bundles.items():
                o50, o99 = p50_p99(timings(lambda: bundle.latent.imagine(state, actions), args.calls, warmup=2))
                ort_gflops = batch * horizon / o50 * step_flops / 1e9
                print(f"  batch {batch:5d} {f'ORT intra_op={t}':<18} {batch * horizon / o50:12,.0f} steps/s  "
                      f"p50 {o50 * 1e3:8.2f} ms  p99 {o99 * 1e3:8.2f} ms  x{b50 / o50:.2f} vs torch "
                      f"(target >= 2x: {'met' if b50 / o50 >= 2 else 'MISSED'})  {ort_gflops:.1f} GFLOP/s")
            # The same rollout as `horizon` calls of the step graph: what the fused graph saves.
            loop = bundles[args.threads[0]].latent
            l50, _ = p50_p99(timings(lambda: imagine_by_steps(loop, state, actions), max(3, args.calls // 4), warmup=1))
            print(f"  batch {batch:5d} {f'ORT step loop t={args.threads[0]}':<18} {batch * horizon / l50:12,.0f} "
                  f"steps/s  p50 {l50 * 1e3:8.2f} ms  x{b50 / l50:.2f} vs torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
