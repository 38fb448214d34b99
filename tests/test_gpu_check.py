"""The GPU code paths, exercised on the CPU provider so CI covers them (issue 30).

- OrtGraph's IO-binding path (what GPU providers use) forced on CPU: same outputs as a plain run,
  and it really goes through run_with_iobinding (a plain `run` would fail the test);
- BoundRunner (fixed device buffers, the precondition of CUDA-graph capture): same outputs, stable
  buffers, results that survive the next run, a clear error for a feed of another shape;
- benchmarks/gpu_check.py end to end with small sizes: says it fell back to CPU, writes its JSON.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from mbrl_ros.export.onnx_export import write_bundle
from mbrl_ros.runtime import load_bundle
from mbrl_ros.runtime.sessions import CPU, CUDA, BoundRunner, OrtGraph, SessionConfig
from mbrl_ros.spec import ObsSpec
from mbrl_ros.world_model import WorldModel, WorldModelConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    torch.manual_seed(0)
    wm = WorldModel(WorldModelConfig.preset("tiny"), ObsSpec(joint_dim=4, image_shape=(64, 64, 3)), 2).eval()
    path = tmp_path_factory.mktemp("bundle")
    write_bundle(wm, path, "v1", fused_horizon=4, plan_graphs=("cem",))
    return path


def imagine_feeds(rng, n=5):
    return {"h": rng.normal(size=(n, 32)).astype(np.float32), "z": rng.normal(size=(n, 8)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (n, 4, 2)).astype(np.float32)}


def test_io_binding_path_on_cpu_matches_a_plain_run(bundle_dir):
    data = (bundle_dir / "imagine.onnx").read_bytes()
    plain = OrtGraph(data, "imagine", SessionConfig(providers=(CPU,)))
    bound = OrtGraph(data, "imagine", SessionConfig(providers=(CPU,), io_binding=True))
    assert not plain.uses_io_binding() and bound.uses_io_binding() and bound.device == "cpu"

    def no_plain_run(*args, **kwargs):
        raise AssertionError("the IO-binding path must not call session.run")

    bound.session.run = no_plain_run
    rng = np.random.default_rng(0)
    for _ in range(3):
        feeds = imagine_feeds(rng)
        for want, got in zip(plain.run(feeds), bound.run(feeds)):
            np.testing.assert_array_equal(got, want)
    # GPU providers get the bound path by default; CUDA is skipped where this build lacks it
    gpu = OrtGraph(data, "imagine", SessionConfig(providers=(CUDA, CPU)))
    assert gpu.uses_io_binding() == (gpu.active_provider != CPU)


def test_bound_runner_keeps_its_buffers_and_its_results(bundle_dir):
    graph = OrtGraph((bundle_dir / "imagine.onnx").read_bytes(), "imagine",
                     SessionConfig(providers=(CPU,), io_binding=True))
    plain = OrtGraph((bundle_dir / "imagine.onnx").read_bytes(), "imagine", SessionConfig(providers=(CPU,)))
    runner = BoundRunner(graph)
    rng = np.random.default_rng(1)
    first_feeds, second_feeds = imagine_feeds(rng), imagine_feeds(rng)
    first = runner.run(first_feeds)
    in_ptrs = {k: v.data_ptr() for k, v in runner._inputs.items()}
    out_ptrs = [v.data_ptr() for v in runner._outputs]
    second = runner.run(second_feeds)
    # fixed addresses across runs: what CUDA-graph replay needs
    assert {k: v.data_ptr() for k, v in runner._inputs.items()} == in_ptrs
    assert [v.data_ptr() for v in runner._outputs] == out_ptrs
    for want, got in zip(plain.run(first_feeds), first):  # the first results were not overwritten
        np.testing.assert_array_equal(got, want)
    for want, got in zip(plain.run(second_feeds), second):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="input h .*bound buffer"):
        runner.run(imagine_feeds(rng, n=6))


def test_bound_runner_runs_the_whole_plan_graph(bundle_dir):
    bundle = load_bundle(bundle_dir)
    plan = bundle.latent.plan_graphs["plan_cem"]
    graph = OrtGraph((bundle_dir / "plan_cem.onnx").read_bytes(), "plan", SessionConfig(providers=(CPU,)))
    runner = BoundRunner(graph)
    rng = np.random.default_rng(2)
    f32 = np.float32
    for _ in range(2):
        feeds = {"h": rng.normal(size=(1, 32)).astype(f32), "z": rng.normal(size=(1, 8)).astype(f32),
                 "mean": np.zeros((4, 2), f32), "std": np.full((4, 2), 0.5, f32),
                 "noise": rng.standard_normal((2, 40, 4, 2), dtype=f32), "low": -np.ones(2, f32),
                 "high": np.ones(2, f32), "min_std": np.full(2, 0.05, f32), "momentum": np.array(0.1, f32),
                 "discount": np.array(0.99, f32), "value_weight": np.array(1.0, f32)}
        for want, got in zip(plan.run(feeds), runner.run(feeds)):
            np.testing.assert_allclose(got, want, atol=1e-6)


def test_provider_options_reach_the_session(bundle_dir, monkeypatch):
    """Per-provider options (e.g. CUDA's enable_cuda_graph) go to the session with their provider."""
    import mbrl_ros.runtime.sessions as sessions

    seen = []
    real = sessions.ort.InferenceSession

    def recording(*args, **kwargs):
        seen.append((kwargs["providers"], kwargs["provider_options"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(sessions.ort, "InferenceSession", recording)
    data = (bundle_dir / "step.onnx").read_bytes()
    OrtGraph(data, "step", SessionConfig(providers=(CUDA, CPU), provider_options={
        CUDA: {"enable_cuda_graph": "1"}, CPU: {"use_arena": "0"}}))
    has_cuda = CUDA in ort.get_available_providers()
    want = ([CUDA, CPU], [{"enable_cuda_graph": "1"}, {"use_arena": "0"}]) if has_cuda else \
        ([CPU], [{"use_arena": "0"}])
    assert seen[0] == want


def test_gpu_check_smoke_run_on_the_cpu_provider(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_check.py"), "--random-init", "tiny",
                           "--sizes", "24x2,40x3", "--ticks", "3", "--warmup", "1", "--train-steps", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    has_gpu = CUDA in ort.get_available_providers()
    assert report["fallback"] == (not has_gpu)
    if not has_gpu:
        assert "FALLBACK" in proc.stdout and report["tested_providers"] == [CPU]
    rows = {(r["section"], r["what"], r["provider"]): r for r in report["rows"]}
    for key in [("controller", "tick cem", CPU), ("controller", "tick cem_graph", CPU),
                ("plan", "plan_cem 24x2 (k=16) run", CPU), ("plan", "plan_cem 40x3 (k=16) bound", CPU)]:
        assert key in rows and "error" not in rows[key], (key, sorted(rows))
        assert rows[key]["p50_ms"] > 0 and rows[key]["p99_ms"] >= rows[key]["p50_ms"]
    assert "graph plan_cem" in rows[("controller", "tick cem_graph", CPU)]["extra"]
    assert rows[("plan", "plan_cem 40x3 (k=16) bound", CPU)]["transitions"] == 40 * 3 * 10
    assert any(r["section"] == "train" and "error" not in r for r in report["rows"])
