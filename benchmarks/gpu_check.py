"""GPU check (issue 30): the controller path, the whole-plan graphs and training on whatever CUDA machine runs it.

    python benchmarks/gpu_check.py                      # full check, <= ~10 min, writes gpu_check.json
    python benchmarks/gpu_check.py --random-init tiny --sizes 32x2 --ticks 5 --train-steps 2 --out /tmp/g.json
                                                        # smoke run (CI, CPU provider, ~1 min)

What it measures, per execution provider this onnxruntime build has (TensorRT, CUDA, then CPU as the floor):
  1. controller path: ModelStore -> ControlLoop.tick (belief update from a 64x64 frame + joints, then the
     plan), planners cem (numpy, one imagine call per iteration) and cem_graph (one whole-plan graph call),
     sessions on that provider (IO binding on GPU providers), p50/p99 per tick;
  2. the whole-plan CEM graph alone at each --sizes NxI (candidates x iterations, horizon = the bundle's
     fused horizon): plain run, BoundRunner (inputs/outputs in fixed device buffers), and on CUDA the same
     with ORT's CUDA-graph capture (enable_cuda_graph), or the reason ORT refused it; p50/p99, plans/s,
     latent transitions/s, against issue 30's targets (120k transitions at >= 50 Hz; 4096x6x10 at >= 1 kHz);
  3. world-model training steps/s (small preset, synthetic episodes) with --device cuda (and a few CPU
     steps for the ratio).
When the build has only the CPU provider it says so on the first lines and in the JSON ("fallback"), and
runs everything on CPU; when torch has no CUDA, training runs on CPU only and says so.

Python 3.12 and onnxruntime-gpu from a local wheel folder (a GPU machine may have no package index):

    python3.12 -m venv /tmp/gpuenv
    /tmp/gpuenv/bin/pip install --no-index --find-links /path/to/wheels onnxruntime-gpu torch onnx numpy \\
        gymnasium mujoco rosbags pyyaml   # only onnxruntime-gpu: it and `onnxruntime` must not both be installed
    /tmp/gpuenv/bin/python benchmarks/gpu_check.py   # the repo on sys.path; no install of mbrl_ros needed

onnxruntime-gpu needs the CUDA 12 / cuDNN 9 libraries: torch's wheels bring them, and this script imports
torch first and calls onnxruntime.preload_dlls() (ORT >= 1.21) so ORT finds them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("MUJOCO_GL", "egl")

from common import command, machine, percentiles  # noqa: E402

TARGETS = {"120k transitions/tick": ">= 50 Hz", "4096x6x10": ">= 1000 Hz"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=ROOT / "models/reacher2d/checkpoint.pt")
    p.add_argument("--random-init", metavar="PRESET",
                   help="instead of --checkpoint: a world model of this preset (tiny|small|large) with random "
                        "weights, the camera reacher's specs (smoke runs)")
    p.add_argument("--sizes", default="128x2,1000x10,4096x6", help="whole-plan graph sizes, candidates x iterations")
    p.add_argument("--ticks", type=int, default=50, help="timed calls per row")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--train-steps", type=int, default=30, help="timed training steps on cuda (0: skip training)")
    p.add_argument("--providers", default="auto", help="comma list of execution providers, or auto")
    p.add_argument("--tensorrt-sizes", default="128x2",
                   help="sizes also tried on TensorRT (engine builds of big unrolled graphs take minutes)")
    p.add_argument("--budget-s", type=float, default=540.0, help="stop starting new rows after this long")
    p.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    return p.parse_args(argv)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        try:
            n, i = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--sizes: {item!r} is not NxI (e.g. 1000x10)") from None
        if n < 2 or i < 1:
            raise SystemExit(f"--sizes: {item!r} needs N >= 2 candidates and I >= 1 iterations")
        sizes.append((n, i))
    return sizes


class Report:
    """Rows printed as they come and collected for the JSON."""

    def __init__(self, budget_s: float):
        self.rows, self.notes = [], []
        self.start, self.budget_s = time.perf_counter(), budget_s

    def over_budget(self) -> bool:
        return time.perf_counter() - self.start > self.budget_s

    def note(self, text: str) -> None:
        print(f"note: {text}", flush=True)
        self.notes.append(text)

    def row(self, **row) -> None:
        self.rows.append(row)
        cells = [f"{row.get('section', ''):10}", f"{row.get('what', ''):34}", f"{row.get('provider', ''):26}"]
        if "error" in row:
            cells.append(f"FAILED/SKIPPED: {row['error']}")
        else:
            cells += [f"{row['p50_ms']:9.3f}", f"{row['p99_ms']:9.3f}", f"{row.get('rate_hz', float('nan')):10.1f}",
                      f"{row.get('transitions_per_s', float('nan')):12.3g}", row.get("extra", "")]
        print(" ".join(str(c) for c in cells), flush=True)


def timed(fn, ticks: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(ticks):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    p = percentiles(times)
    return {"p50_ms": p["p50"], "p99_ms": p["p99"], "rate_hz": 1e3 / p["p50"] if p["p50"] > 0 else float("inf")}


def choose_providers(spec: str, ort) -> tuple[list[str], bool]:
    """(providers to test, fallback: True when no GPU provider is present)."""
    from mbrl_ros.runtime.sessions import CPU, CUDA, TENSORRT

    available = ort.get_available_providers()
    wanted = [TENSORRT, CUDA, CPU] if spec == "auto" else [p.strip() for p in spec.split(",") if p.strip()]
    chosen = [p for p in wanted if p in available]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen, not any(p in available for p in (CUDA, TENSORRT))


def synthetic_observation(rng, obs_spec) -> dict:
    obs = {"joints": rng.normal(size=obs_spec.joint_dim).astype("float32")}
    if obs_spec.has_image:
        obs["image"] = rng.integers(0, 256, obs_spec.image_shape, dtype="uint8")
    return obs


def provider_options(provider: str) -> dict:
    """TensorRT: cache built engines (a rebuild per session would eat the time budget)."""
    if provider == "TensorrtExecutionProvider":
        cache = Path(tempfile.gettempdir()) / "gpu_check_trt_cache"
        cache.mkdir(exist_ok=True)
        return {provider: {"trt_engine_cache_enable": "1", "trt_engine_cache_path": str(cache)}}
    return {}


def controller_rows(report, store, providers, args) -> None:
    """ModelStore -> belief update -> plan through ControlLoop.tick, on each provider."""
    import numpy as np

    from mbrl_ros.runtime.control import ControlConfig, ControlLoop, Observation
    from mbrl_ros.runtime.model_store import ModelStore
    from mbrl_ros.runtime.sessions import SessionConfig

    for provider in providers:
        if report.over_budget():
            report.row(section="controller", what="ModelStore->tick", provider=provider, error="time budget")
            continue
        try:
            models = ModelStore(store, session_config=SessionConfig(providers=(provider,),
                                                                    provider_options=provider_options(provider)),
                                required=True)
        except Exception as exc:  # noqa: BLE001 -- a provider that cannot load the bundle is a finding
            report.row(section="controller", what="ModelStore", provider=provider, error=f"{type(exc).__name__}: {exc}")
            continue
        bundle = models.current
        active = ",".join(sorted(set(bundle.active_providers.values())))
        graph_active = ",".join(sorted({g.graph.active_provider for g in bundle.latent.plan_graphs.values()}))
        variants = [("cem", {}), ("cem_graph", {})]
        if provider != "CPUExecutionProvider" and "plan_cem_fp16" in bundle.latent.plan_graphs:
            variants.append(("cem_graph", {"precision": "fp16"}))
        rng = np.random.default_rng(0)
        frames = [synthetic_observation(rng, bundle.obs_spec) for _ in range(8)]
        for planner, config in variants:
            loop = ControlLoop(models, ControlConfig(planner=planner, planner_config=config,
                                                     planning_budget_s=float("inf")))
            step = {"t": 0}

            def tick():
                t = step["t"] = step["t"] + 1
                o = frames[t % len(frames)]
                result = loop.tick(float(t), Observation(joints=o["joints"], joints_stamp=float(t),
                                                         image=o.get("image"), image_stamp=float(t)))
                if result.mode != "plan":
                    raise RuntimeError(f"tick mode {result.mode}: {result.reason}")
                step["info"] = result.info

            what = planner + (f":{config['precision']}" if config else "")
            try:
                figures = timed(tick, args.ticks, args.warmup)
            except Exception as exc:  # noqa: BLE001
                report.row(section="controller", what=what, provider=provider, error=f"{type(exc).__name__}: {exc}")
                continue
            info = step["info"]
            report.row(section="controller", what=f"tick {what}", provider=provider, **figures,
                       transitions_per_s=info.get("transitions", 0) * figures["rate_hz"],
                       extra=f"sessions on {active}; plan graphs on {graph_active or '-'}; "
                             f"graph {info.get('plan_graph')}")


def plan_feeds(rng, n: int, iterations: int, horizon: int, a: int, deter: int, stoch: int) -> dict:
    import numpy as np

    f32 = np.float32
    return {"h": rng.normal(size=(1, deter)).astype(f32), "z": rng.normal(size=(1, stoch)).astype(f32),
            "mean": np.zeros((horizon, a), f32), "std": np.full((horizon, a), 0.5, f32),
            "noise": rng.standard_normal((iterations, n - 1, horizon, a), dtype=f32),
            "low": -np.ones(a, f32), "high": np.ones(a, f32), "min_std": np.full(a, 0.05, f32),
            "momentum": np.array(0.1, f32), "discount": np.array(0.99, f32), "value_weight": np.array(1.0, f32)}


def plan_graph_rows(report, wm, providers, sizes, args, horizon: int) -> None:
    """The whole-plan CEM graph alone at each size: plain run, bound buffers, CUDA graph."""
    import numpy as np

    from mbrl_ros.export.onnx_export import export_graph
    from mbrl_ros.export.plan_graphs import plan_graph_spec, plan_settings
    from mbrl_ros.runtime.sessions import CPU, CUDA, TENSORRT, BoundRunner, OrtGraph, SessionConfig

    rng = np.random.default_rng(0)
    trt_sizes = set(parse_sizes(args.tensorrt_sizes)) if args.tensorrt_sizes else set()
    for n, iterations in sizes:
        elites = max(16, n // 10) if n > 16 else max(1, n // 4)
        spec = plan_graph_spec(wm, "cem", horizon, plan_settings("cem", {"iterations": iterations,
                                                                           "num_elites": elites}))
        data = export_graph(spec["module"], spec["example"], spec["inputs"], spec["outputs"], spec["dynamic"])
        feeds = plan_feeds(rng, n, iterations, horizon, wm.action_dim, wm.deter_dim, wm.stoch_dim)
        transitions = n * iterations * horizon
        label = f"plan_cem {n}x{iterations} (k={elites})"
        for provider in providers:
            if provider == TENSORRT and (n, iterations) not in trt_sizes:
                continue
            modes = [("run", provider_options(provider)), ("bound", provider_options(provider))]
            if provider == CUDA:
                modes.append(("cuda-graph", {CUDA: {"enable_cuda_graph": "1"}}))
            for mode, options in modes:
                if report.over_budget():
                    report.row(section="plan", what=f"{label} {mode}", provider=provider, error="time budget")
                    continue
                try:
                    config = SessionConfig(providers=(provider,), provider_options=options,
                                           intra_op_threads=1 if provider == CPU else 0)
                    graph = OrtGraph(data, label, config)
                    if graph.active_provider != provider:
                        raise RuntimeError(f"session fell back to {graph.active_provider}")
                    call = graph.run if mode == "run" else BoundRunner(graph).run
                    figures = timed(lambda: call(feeds), args.ticks, args.warmup)
                except Exception as exc:  # noqa: BLE001 -- e.g. CUDA-graph capture refused: a finding
                    report.row(section="plan", what=f"{label} {mode}", provider=provider,
                               error=f"{type(exc).__name__}: {str(exc)[:300]}")
                    continue
                report.row(section="plan", what=f"{label} {mode}", provider=provider, **figures,
                           transitions_per_s=transitions * figures["rate_hz"], candidates=n, iterations=iterations,
                           horizon=horizon, transitions=transitions)


def synthetic_episodes(obs_spec, action_dim: int, count: int = 4, length: int = 64) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(count):
        ep = {"joints": rng.normal(size=(length, obs_spec.joint_dim)).astype("float32"),
              "action": rng.uniform(-1, 1, (length, action_dim)).astype("float32"),
              "reward": rng.normal(size=length).astype("float32"),
              "is_first": np.r_[True, np.zeros(length - 1, bool)], "is_terminal": np.zeros(length, bool)}
        if obs_spec.has_image:
            ep["image"] = rng.integers(0, 256, (length, *obs_spec.image_shape), dtype="uint8")
        episodes.append(ep)
    return episodes


def training_rows(report, wm, args) -> None:
    import torch

    from mbrl_ros.training.trainer import Trainer

    devices = ["cuda"] if torch.cuda.is_available() else []
    if not devices:
        report.note("torch has no CUDA device: training measured on cpu only")
    devices.append("cpu")
    episodes = synthetic_episodes(wm.obs_spec, wm.action_dim)
    for device in devices:
        # cpu: a couple of steps for the ratio only (a small-preset step takes seconds on a shared CPU)
        steps = args.train_steps if device == "cuda" else max(1, min(2, args.train_steps))
        if report.over_budget():
            report.row(section="train", what="world-model steps", provider=device, error="time budget")
            continue
        try:
            trainer = Trainer.create(wm.config, episodes, obs_spec=wm.obs_spec, action_dim=wm.action_dim,
                                     device=device)

            def step():
                trainer.train_step()
                if device == "cuda":
                    torch.cuda.synchronize()

            figures = timed(step, steps, 2 if device == "cuda" else 1)
        except Exception as exc:  # noqa: BLE001
            report.row(section="train", what="world-model steps", provider=device, error=f"{type(exc).__name__}: {exc}")
            continue
        cfg = wm.config
        report.row(section="train", what=f"train_step B={cfg.batch_size} T={cfg.seq_len}", provider=f"torch {device}",
                   **figures, extra=f"{figures['rate_hz']:.2f} steps/s")


def main(argv=None) -> int:
    args = parse_args(argv)
    sizes = parse_sizes(args.sizes)
    report = Report(args.budget_s)
    try:
        import torch  # first: onnxruntime-gpu finds the CUDA/cuDNN libraries torch's wheels bring
    except ImportError:
        torch = None
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls") and torch is not None and torch.cuda.is_available():
        try:
            ort.preload_dlls()
        except Exception as exc:  # noqa: BLE001
            report.note(f"onnxruntime.preload_dlls failed ({exc})")
    providers, fallback = choose_providers(args.providers, ort)
    gpu = torch.cuda.get_device_name(0) if torch is not None and torch.cuda.is_available() else "none (torch)"
    print(f"# gpu_check\ncommand: {command()}\nmachine: {machine()}\nGPU: {gpu}\n"
          f"onnxruntime {ort.__version__} ({ort.get_device()}), providers in this build: "
          f"{ort.get_available_providers()}\ntesting: {providers}", flush=True)
    if fallback:
        report.note(f"FALLBACK: this onnxruntime build has no CUDA/TensorRT provider; everything below ran "
                    f"on the CPU provider (install onnxruntime-gpu: see this script's docstring)")
    if torch is None:
        raise SystemExit("gpu_check needs torch (export of the plan graphs and training); see the docstring")

    from mbrl_ros.export import export_to_store
    from mbrl_ros.world_model.checkpoint import load_world_model

    from mbrl_ros.spec import ActionSpec, ObsSpec

    if args.random_init:
        from mbrl_ros.world_model import WorldModel, WorldModelConfig

        torch.manual_seed(0)
        wm = WorldModel(WorldModelConfig.preset(args.random_init), ObsSpec(joint_dim=4, image_shape=(64, 64, 3)), 2)
        action_spec, source = None, f"{args.random_init} preset, random weights"
    else:
        wm, payload = load_world_model(args.checkpoint)
        action_spec = ActionSpec.from_dict(payload["action_spec"]) if payload.get("action_spec") else None
        source = str(args.checkpoint)
    wm = wm.cpu().eval()
    store = Path(tempfile.mkdtemp(prefix="gpu_check_store_"))
    export_to_store(wm, store, action_spec=action_spec, parity_steps=5,
                    plan_precisions=() if fallback else ("fp16",))
    horizon = json.loads(next(store.glob("v*/manifest.json")).read_text())["sizes"]["fused_horizon"]
    print(f"model: {source} ({wm.config.deter}-GRU), bundle fused horizon {horizon}\n", flush=True)
    print(f"{'section':10} {'what':34} {'provider':26} {'p50 ms':>9} {'p99 ms':>9} {'rate Hz':>10} "
          f"{'transitions/s':>12} notes", flush=True)
    controller_rows(report, store, providers, args)
    plan_graph_rows(report, wm, providers, sizes, args, horizon)
    if args.train_steps > 0:
        training_rows(report, wm, args)
    result = {"command": command(), "machine": machine(), "gpu": gpu, "onnxruntime": ort.__version__,
              "available_providers": ort.get_available_providers(), "tested_providers": providers,
              "fallback": fallback, "torch": torch.__version__, "torch_cuda": torch.cuda.is_available(),
              "targets": TARGETS, "notes": report.notes, "rows": report.rows,
              "seconds": time.perf_counter() - report.start}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(f"\nwrote {args.out} ({len(report.rows)} rows, {result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
