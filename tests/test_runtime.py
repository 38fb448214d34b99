"""Torch-free runtime: export -> load -> belief filter -> imagine, agreement with the torch model,
hot swap under a running control loop, refusal of bad bundles, and import hygiene.

Real torch export and real ONNX Runtime; tiny preset so the file stays fast.
"""
import json
import logging
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mbrl_ros.export import export_to_store
from mbrl_ros.runtime import BeliefFilter, BundleError, ModelStore, SessionConfig, load_bundle
from mbrl_ros.runtime.latent import LatentModel, imagine_by_steps
from mbrl_ros.runtime.manifest import Manifest, seal, sha256_file
from mbrl_ros.fileio import atomic_write_text
from mbrl_ros.runtime.store_layout import read_current
from mbrl_ros.spec import ObsSpec
from mbrl_ros.world_model import WorldModel, WorldModelConfig
from mbrl_ros.world_model.latent_adapter import TorchFilterModel, TorchLatentModel

OBS = ObsSpec(joint_dim=6, image_shape=(64, 64, 3), joint_names=tuple(f"j{i}.pos" for i in range(6)))  # a robot store needs named joints
TOL = 1e-4


def make_model(obs_spec=OBS, action_dim=2, seed=0, value=None):
    """A tiny random model; `value` makes the value head a constant symexp(value) (a model fingerprint)."""
    torch.manual_seed(seed)
    wm = WorldModel(WorldModelConfig.preset("tiny"), obs_spec, action_dim).eval()
    if value is not None:
        with torch.no_grad():
            wm.value_head[-1].weight.zero_()
            wm.value_head[-1].bias.fill_(float(value))
    return wm


def observation(rng, spec=OBS):
    return {"image": rng.integers(0, 256, spec.image_shape, dtype=np.uint8),
            "joints": rng.normal(size=spec.joint_dim).astype(np.float32)}


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def store_dir(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    export_to_store(model, path, training_step=1, parity_steps=5)
    return path


def test_round_trip_belief_and_imagine_agree_with_torch(model, store_dir):
    store = ModelStore(store_dir, obs_spec=OBS, required=True)
    bundle = store.current
    assert store.version == read_current(store_dir)
    assert isinstance(bundle.latent, LatentModel)
    belief, torch_belief = BeliefFilter(bundle), BeliefFilter(TorchFilterModel(model))
    rng = np.random.default_rng(3)
    action = None
    for _ in range(30):
        obs = observation(rng)
        state, ref = belief.update(obs, action), torch_belief.update(obs, action)
        action = rng.uniform(-1, 1, 2)
    assert belief.steps == 30
    assert np.abs(state.h - ref.h).max() <= TOL and np.abs(state.z - ref.z).max() <= TOL

    torch_latent = TorchLatentModel(model)
    for n, horizon in ((64, bundle.manifest.fused_horizon), (16, 11), (1, bundle.manifest.fused_horizon)):
        actions = rng.uniform(-1, 1, (n, horizon, 2)).astype(np.float32)
        rewards, values = bundle.latent.imagine(state, actions)  # batch-1 state broadcast to n
        ref_r, ref_v = torch_latent.imagine(ref, actions)
        assert rewards.shape == values.shape == (n, horizon)
        assert np.abs(rewards - ref_r).max() <= TOL and np.abs(values - ref_v).max() <= TOL
        by_steps = imagine_by_steps(bundle.latent, state, actions)  # fused graph == step loop
        assert np.abs(rewards - by_steps[0]).max() <= TOL
    nxt, reward, value = bundle.latent.step(state.repeat(3), np.zeros((3, 2), np.float32))
    ref_nxt, ref_reward, ref_value = torch_latent.step(ref.repeat(3), np.zeros((3, 2), np.float32))
    assert np.abs(nxt.h - ref_nxt.h).max() <= TOL and np.abs(reward - ref_reward).max() <= TOL

    belief.reset()
    assert belief.steps == 0 and np.array_equal(belief.state.h, bundle.h0)
    assert bundle.active_providers == {"filter": "CPUExecutionProvider", "step": "CPUExecutionProvider",
                                       "imagine": "CPUExecutionProvider"}


def test_bad_observations_raise_and_leave_state_untouched(store_dir):
    belief = BeliefFilter(ModelStore(store_dir, required=True).current)
    rng = np.random.default_rng(0)
    belief.update(observation(rng))
    h, z = belief.state.h.copy(), belief.state.z.copy()
    good = observation(rng)
    bad_cases = {
        "joints: expected shape (6,)": dict(good, joints=np.zeros(5, np.float32)),
        "joints: contains NaN": dict(good, joints=np.full(6, np.nan, np.float32)),
        "image: expected uint8[64, 64, 3], got float32": dict(good, image=good["image"].astype(np.float32)),
        "image: expected uint8[64, 64, 3], got uint8[32, 64, 3]": dict(good, image=good["image"][:32]),
        "image: missing": {"joints": good["joints"]},
    }
    for message, obs in bad_cases.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            belief.update(obs, np.zeros(2))
    with pytest.raises(ValueError, match=r"action: expected shape \(2,\)"):
        belief.update(good, np.zeros(3))
    with pytest.raises(ValueError, match="action: contains NaN"):
        belief.update(good, np.array([0.0, np.nan]))
    assert np.array_equal(belief.state.h, h) and np.array_equal(belief.state.z, z) and belief.steps == 1


def test_provider_preference_falls_back_to_cpu(store_dir):
    config = SessionConfig(providers=("TensorrtExecutionProvider", "CUDAExecutionProvider", "NoSuchProvider"))
    bundle = load_bundle(store_dir / read_current(store_dir), config)
    assert set(bundle.active_providers.values()) == {"CPUExecutionProvider"}  # this CI machine has no GPU
    with pytest.raises(ValueError, match="optimization must be one of"):
        SessionConfig(optimization="max")


def test_hot_swap_under_running_ticks(tmp_path):
    """Ticks in this thread, bundles published from another; every tick sees exactly one model."""
    base = make_model(seed=0, value=1.0)
    export_to_store(base, tmp_path, training_step=1, parity_steps=5)
    store = ModelStore(tmp_path, obs_spec=OBS, required=True)
    belief = BeliefFilter(store.current)
    publish_errors, tick_errors, seen = [], [], []

    def publisher():
        try:
            for k in (2, 3, 4):  # value head of bundle k predicts symexp(k) everywhere
                export_to_store(make_model(seed=k, value=float(k)), tmp_path, training_step=k, parity_steps=5)
                time.sleep(0.2)
        except Exception as exc:  # noqa: BLE001 -- reported by the assertion below
            publish_errors.append(exc)

    thread = threading.Thread(target=publisher)
    store.start(interval=0.02)
    thread.start()
    rng = np.random.default_rng(0)
    action = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            bundle = store.current  # once per tick
            try:
                belief.use_model(bundle)
                state = belief.update(observation(rng), action)
                _, _, value = bundle.latent.step(state, np.zeros((1, 2), np.float32))
                _, values = bundle.latent.imagine(state, rng.uniform(-1, 1, (32, bundle.manifest.fused_horizon, 2)))
                k = bundle.manifest.raw["training_step"]
                expected = np.expm1(float(k))  # symexp(k) for k > 0
                assert np.allclose(value, expected, rtol=1e-5) and np.allclose(values, expected, rtol=1e-5), \
                    f"tick on {bundle.version} saw values {value} / {values.min()}..{values.max()}"
                seen.append(bundle.version)
            except Exception as exc:  # noqa: BLE001
                tick_errors.append(exc)
            action = rng.uniform(-1, 1, 2)
            if not thread.is_alive() and store.version == read_current(tmp_path):
                break
    finally:
        thread.join()
        store.stop()
    assert not publish_errors and not tick_errors, (publish_errors, tick_errors[:3])
    assert seen == sorted(seen)  # versions only move forward
    assert store.version == "v000004-s000000004" and len(set(seen)) >= 2 and store.swaps >= 2
    assert store.last_refusal is None


def _clone_version(store_dir, source, new_name):
    """Copy a good bundle under a new version name (to break it in one specific way)."""
    import shutil
    src = store_dir / source
    dst = store_dir / new_name
    shutil.copytree(src, dst)
    raw = json.loads((dst / "manifest.json").read_text())
    raw["version"] = new_name
    (dst / "manifest.json").write_text(json.dumps(seal(raw)))
    return dst


def _fix_sha(bundle_dir, graph):
    raw = json.loads((bundle_dir / "manifest.json").read_text())
    raw["graphs"][graph]["sha256"] = sha256_file(bundle_dir / raw["graphs"][graph]["file"])
    (bundle_dir / "manifest.json").write_text(json.dumps(seal(raw)))


def _nan_graph(bundle_dir):
    """A graph that loads fine but computes NaN: the smoke run must catch it."""
    import onnx
    from onnx import numpy_helper
    path = bundle_dir / "step.onnx"
    graph = onnx.load(str(path))
    for init in graph.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.ndim == 2:
            init.CopyFrom(numpy_helper.from_array(np.full_like(arr, np.nan), init.name))
            break
    onnx.save(graph, str(path))
    _fix_sha(bundle_dir, "step")


def test_bad_bundles_are_refused_and_the_old_one_keeps_running(tmp_path):
    export_to_store(make_model(seed=0), tmp_path, training_step=1, parity_steps=5)
    good = read_current(tmp_path)
    store = ModelStore(tmp_path, obs_spec=OBS, required=True)
    belief = BeliefFilter(store.current)
    rng = np.random.default_rng(0)

    def corrupt(d):
        data = bytearray((d / "step.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (d / "step.onnx").write_bytes(bytes(data))

    def truncate_keep_sha(d):  # checksum consistent, but ONNX Runtime cannot parse it
        (d / "imagine.onnx").write_bytes((d / "imagine.onnx").read_bytes()[:500])
        _fix_sha(d, "imagine")

    cases = [
        ("v000002-s000000001", corrupt, "sha256"),
        ("v000003-s000000001", lambda d: (d / "filter.onnx").write_bytes(b"\0" * 10), "sha256"),
        ("v000004-s000000001", truncate_keep_sha, "ONNX Runtime cannot load"),
        ("v000005-s000000001", lambda d: (d / "filter.onnx").unlink(), "missing"),
        ("v000006-s000000001", lambda d: (d / "manifest.json").unlink(), "bundle incomplete"),
        ("v000007-s000000001", lambda d: (d / "manifest.json").write_text('{"format": "mbrl_ros.bun'),
         "not valid JSON"),
        ("v000008-s000000001", _nan_graph, "not finite"),
    ]
    for name, breaker, reason in cases:
        breaker(_clone_version(tmp_path, good, name))
        atomic_write_text(tmp_path / "CURRENT", name + "\n")
        assert store.poll() is False
        assert store.version == good, name
        assert store.last_refusal.version == name and reason in store.last_refusal.reason, store.last_refusal
        assert store.poll() is False  # not retried until CURRENT changes
        belief.update(observation(rng))  # the old model keeps running
        store.current.latent.imagine(belief.state, np.zeros((4, store.current.manifest.fused_horizon, 2), np.float32))

    # A bundle for a different robot (5 joints instead of 6) is refused by the spec check.
    export_to_store(make_model(ObsSpec(joint_dim=5), seed=1), tmp_path, training_step=2, parity_steps=5)
    assert store.poll() is False and store.version == good
    assert "robot has joints [6]" in store.last_refusal.reason
    # A CURRENT that names no version, and one pointing at a directory that does not exist.
    atomic_write_text(tmp_path / "CURRENT", "../../etc\n")
    assert store.poll() is False and "does not name a version" in store.last_refusal.reason
    atomic_write_text(tmp_path / "CURRENT", "v000099-s000000001\n")
    assert store.poll() is False and "directory missing" in store.last_refusal.reason
    assert store.diagnostics()["model_version"] == good
    # A good bundle after all that is taken.
    export_to_store(make_model(seed=2), tmp_path, training_step=3, parity_steps=5)
    assert store.poll() is True and store.version == read_current(tmp_path) != good
    belief.use_model(store.current)
    belief.update(observation(rng), np.zeros(2))
    with pytest.raises(BundleError, match="no usable bundle"):
        ModelStore(tmp_path / "empty", required=True)


def test_runtime_imports_no_torch_or_rclpy():
    code = (
        "import importlib, pkgutil, sys\n"
        "import mbrl_ros.runtime as rt\n"
        "names = [m.name for m in pkgutil.walk_packages(rt.__path__, 'mbrl_ros.runtime.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "from mbrl_ros.runtime import ModelStore, BeliefFilter, OnnxLatentModel\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'rclpy', 'onnx'))\n"
        "assert 'mbrl_ros.runtime.model_store' in sys.modules and len(names) >= 7, names\n"
        "print('BAD', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert out.returncode == 0, out.stderr
    assert "BAD []" in out.stdout, out.stdout


SHIPPED = Path(__file__).resolve().parents[1] / "models" / "reacher2d"


def test_unfused_imagine_is_the_step_loop_and_warns_once(store_dir, caplog):
    """A length other than the fused one runs as one step-graph call per step, with the same
    numbers, and says so once: the slow path is never taken silently."""
    bundle = load_bundle(store_dir / read_current(store_dir))
    latent, fused = bundle.latent, bundle.manifest.fused_horizon
    assert latent.fused_horizon == fused
    state = bundle.initial_state(1)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (8, fused + 3, 2)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="mbrl_ros.runtime.onnx_latent"):
        latent.imagine(state, actions[:, :fused])
        assert latent.unfused_calls == 0 and not caplog.records
        rewards, values = latent.imagine(state, actions)
        latent.imagine(state, actions[:, :2])
    assert latent.unfused_calls == 2
    assert [r.getMessage() for r in caplog.records] == [
        f"imagine of {fused + 3} steps: the bundle's fused imagine graph covers exactly {fused}, so this runs "
        f"as {fused + 3} step-graph calls instead of 1 (logged once per model)"]
    s = state.repeat(8)
    for t in range(fused + 3):
        s, reward, value = latent.step(s, actions[:, t])
        np.testing.assert_array_equal(rewards[:, t], reward)
        np.testing.assert_array_equal(values[:, t], value)


def test_measure_unfused_times_both_paths(store_dir):
    bundle = load_bundle(store_dir / read_current(store_dir))
    latent, fused = bundle.latent, bundle.manifest.fused_horizon
    cost = latent.measure_unfused(bundle.initial_state(1), 16, fused + 4, repeats=2)
    assert (cost.batch, cost.horizon, cost.fused_horizon) == (16, fused + 4, fused)
    assert cost.fused_s > 0 and cost.unfused_s > 0
    assert re.fullmatch(rf"horizon {fused + 4} != fused {fused}: {fused + 4} step calls per imagine instead of 1 "
                        r"\(measured \d+\.\d ms vs \d+\.\d ms per imagine at 16 candidates\)", cost.describe())
    assert latent.unfused_calls == 0 and not latent.unfused_reported  # timing is not a planner's use


def test_format_1_manifests_still_load():
    """Bundles written before the fused rollout length was named `fused_horizon` (format_version 1,
    sizes.horizon), like the shipped models/reacher2d, load with it as their fused horizon."""
    bundle = load_bundle(SHIPPED / read_current(SHIPPED))
    raw = bundle.manifest.raw
    assert raw["format_version"] == 1 and raw["sizes"]["horizon"] == 10 and "fused_horizon" not in raw["sizes"]
    assert bundle.manifest.fused_horizon == bundle.latent.fused_horizon == 10
    assert WorldModelConfig.from_dict(raw["world_model_config"]).imagination_horizon == 15  # its old name too

    other_sizes = {k: v for k, v in raw["sizes"].items() if k != "horizon"}
    for version, key in ((1, "horizon"), (2, "fused_horizon")):
        ok = {**raw, "format_version": version, "sizes": {**other_sizes, key: 7}}
        assert Manifest.from_dict(ok).fused_horizon == 7
        other = "fused_horizon" if key == "horizon" else "horizon"  # each version reads only its own key
        with pytest.raises(BundleError, match=f"sizes.{key} missing"):
            Manifest.from_dict({**ok, "sizes": {**other_sizes, other: 7}})
        with pytest.raises(BundleError, match=f"sizes.{key} must be >= 1"):
            Manifest.from_dict({**ok, "sizes": {**other_sizes, key: 0}})
    with pytest.raises(BundleError, match=r"format_version 3 is not supported \(this runtime reads \[1, 2\]\)"):
        Manifest.from_dict({**raw, "format_version": 3})
