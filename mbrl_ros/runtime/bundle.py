"""`ModelBundle`: one published model version, loaded, verified and ready to run.

Loading checks everything a control loop would otherwise trip over later:
manifest structure, sha256 of every file (corrupt/truncated files), that each
graph's inputs/outputs match what the manifest promises, that the bundle fits
the robot (obs spec, action dim), and a smoke inference through every graph
whose outputs must have the right shapes and be finite. Any failure is a
BundleError with a message that names the problem.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Optional

import numpy as np

from mbrl_ros.runtime import manifest as mf
from mbrl_ros.runtime.latent import LatentState
from mbrl_ros.runtime.manifest import BundleError, Manifest
from mbrl_ros.runtime.onnx_latent import OnnxLatentModel, load_plan_graphs
from mbrl_ros.runtime.safety import action_spec_mismatch
from mbrl_ros.runtime.sessions import OrtGraph, SessionConfig
from mbrl_ros.spec import ActionSpec, ObsSpec

log = logging.getLogger(__name__)


def _expected_io(m: Manifest) -> dict[str, tuple[tuple, tuple]]:
    """Input and output names each graph must have, from the contract in manifest.py."""
    filter_in = mf.FILTER_INPUTS_IMAGE if m.obs_spec.has_image else mf.FILTER_INPUTS_JOINTS
    return {"filter": (filter_in, mf.FILTER_OUTPUTS), "step": (mf.STEP_INPUTS, mf.STEP_OUTPUTS),
            "imagine": (mf.IMAGINE_INPUTS, mf.IMAGINE_OUTPUTS)}


def _check_signature(graph: OrtGraph, entry: dict, expected: tuple[tuple, tuple]) -> None:
    """Session IO must match both the naming contract and the manifest's recorded shapes."""
    inputs, outputs = graph.io_signature()
    for kind, got, want_names, recorded in (("inputs", inputs, expected[0], entry["inputs"]),
                                            ("outputs", outputs, expected[1], entry["outputs"])):
        names = tuple(n for n, _, _ in got)
        if names != tuple(want_names):
            raise BundleError(f"graph {graph.name}: {kind} {list(names)}, expected {list(want_names)}")
        for (name, _, shape), rec in zip(got, recorded):
            # ONNX shape inference leaves some output dims symbolic; compare the ones it fixed
            # (the smoke run checks the actual output shapes).
            want = list(rec["shape"])
            clash = len(shape) != len(want) or any(
                isinstance(d, int) and d != w for d, w in zip(shape, want))
            if rec["name"] != name or clash:
                raise BundleError(f"graph {graph.name}: {kind[:-1]} '{name}' has shape {shape}, "
                                  f"manifest says {rec['name']} {rec['shape']}")


def check_compatible(m: Manifest, obs_spec: Optional[ObsSpec], action_spec: Optional[ActionSpec]) -> None:
    """The bundle must consume this robot's observations and produce its actions: the same
    actuators with the same command limits as `action_spec`, the robot's (runtime.safety)."""
    if obs_spec is not None:
        if m.obs_spec.joint_dim != obs_spec.joint_dim or m.obs_spec.image_shape != obs_spec.image_shape:
            raise BundleError(f"bundle {m.version} expects joints [{m.obs_spec.joint_dim}] image "
                              f"{m.obs_spec.image_shape}, robot has joints [{obs_spec.joint_dim}] image "
                              f"{obs_spec.image_shape}")
        if m.obs_spec.joint_names and obs_spec.joint_names and m.obs_spec.joint_names != obs_spec.joint_names:
            # same count, other joints: the controller would feed this model the robot's joints by
            # the names it was configured with (bench_faults.py "obs_spec joint names renamed")
            raise BundleError(f"bundle {m.version} expects joints {list(m.obs_spec.joint_names)}, robot has "
                              f"{list(obs_spec.joint_names)}")
    if action_spec is not None:  # the robot's limits: the bundle must have been trained for exactly these
        try:  # a robot feeds the model its JointState entries by these names (nodes/observation.py)
            m.obs_spec.require_joint_names(f"bundle {m.version}")
        except ValueError as exc:
            raise BundleError(str(exc)) from None
        mismatch = action_spec_mismatch(action_spec, m.action_spec)
        if mismatch:
            raise BundleError(f"bundle {m.version} does not fit the robot's command limits: {mismatch}")


class ModelBundle:
    """A loaded bundle: manifest, the three graphs, the initial state and the LatentModel over them."""

    def __init__(self, path: Path, manifest: Manifest, graphs: dict[str, OrtGraph], h0: np.ndarray,
                 z0: np.ndarray, plan_graphs: Optional[dict] = None):
        self.path = Path(path)
        self.manifest = manifest
        self.graphs = graphs
        self.h0, self.z0 = h0, z0
        self.latent = OnnxLatentModel(graphs["step"], graphs["imagine"], manifest.action_spec.dim,
                                      manifest.has_value, manifest.fused_horizon, plan_graphs)

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def obs_spec(self) -> ObsSpec:
        return self.manifest.obs_spec

    @property
    def action_spec(self) -> ActionSpec:
        return self.manifest.action_spec

    @property
    def action_dim(self) -> int:
        return self.manifest.action_spec.dim

    @property
    def active_providers(self) -> dict[str, str]:
        """Execution provider each graph runs on (for /diagnostics)."""
        return {name: g.active_provider for name, g in self.graphs.items()}

    def initial_state(self, batch: int = 1) -> LatentState:
        """The model's start-of-episode state, repeated `batch` times (fresh arrays)."""
        return LatentState(np.repeat(self.h0, batch, axis=0), np.repeat(self.z0, batch, axis=0))

    def filter_step(self, state: LatentState, obs: dict, action: np.ndarray) -> LatentState:
        """Posterior update for a batch: obs arrays carry a leading batch axis. No validation here."""
        feeds = {"joints": np.ascontiguousarray(obs["joints"], np.float32),
                 "h": np.ascontiguousarray(state.h, np.float32), "z": np.ascontiguousarray(state.z, np.float32),
                 "action": np.ascontiguousarray(action, np.float32)}
        if self.obs_spec.has_image:
            feeds["image"] = np.ascontiguousarray(obs["image"], np.uint8)
        h, z = self.graphs["filter"].run(feeds)
        return LatentState(h, z)

    def smoke_test(self) -> None:
        """Run every graph once at batch 2 on neutral inputs; outputs must be finite and well-shaped."""
        m, n = self.manifest, 2
        state = self.initial_state(n)
        obs = {"joints": np.zeros((n, m.obs_spec.joint_dim), np.float32)}
        if m.obs_spec.has_image:
            obs["image"] = np.full((n, *m.obs_spec.image_shape), 128, np.uint8)
        action = np.zeros((n, m.action_spec.dim), np.float32)
        post = self.filter_step(state, obs, action)
        nxt, reward, value = self.latent.step(post, action)
        rewards, values = self.latent.imagine(post, np.zeros((n, m.fused_horizon, m.action_spec.dim), np.float32))
        checks = {"filter h": (post.h, (n, m.deter)), "filter z": (post.z, (n, m.stoch)),
                  "step h": (nxt.h, (n, m.deter)), "step reward": (reward, (n,)), "step value": (value, (n,)),
                  "imagine rewards": (rewards, (n, m.fused_horizon)), "imagine values": (values, (n, m.fused_horizon))}
        for what, (arr, shape) in checks.items():
            if arr.shape != shape:
                raise BundleError(f"smoke run: {what} has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                raise BundleError(f"smoke run: {what} is not finite")


def load_bundle(path: Path, config: SessionConfig = SessionConfig(), obs_spec: Optional[ObsSpec] = None,
                action_spec: Optional[ActionSpec] = None, smoke: bool = True,
                max_file_bytes: int = mf.DEFAULT_MAX_GRAPH_BYTES) -> ModelBundle:
    """Load and verify one bundle directory. Raises BundleError naming whatever is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: bundle directory missing")
    m = mf.read_manifest(path)
    check_compatible(m, obs_spec, action_spec)
    expected = _expected_io(m)
    graphs = {}
    for name in mf.GRAPHS:
        entry = m.graph(name)
        data = mf.read_verified(path, entry, max_file_bytes)
        try:
            graphs[name] = OrtGraph(data, f"{m.version}/{name}", config)
        except Exception as exc:  # noqa: BLE001 -- ORT raises several types for bad graphs
            raise BundleError(f"{path / entry['file']}: ONNX Runtime cannot load it ({exc})") from exc
        _check_signature(graphs[name], entry, expected[name])
    state_bytes = mf.read_verified(path, m.raw["files"]["initial_state"], max_file_bytes)
    try:
        with np.load(io.BytesIO(state_bytes), allow_pickle=False) as npz:
            h0, z0 = npz["h"].astype(np.float32), npz["z"].astype(np.float32)
    except Exception as exc:  # noqa: BLE001
        raise BundleError(f"{path}: initial state unreadable ({exc})") from exc
    if h0.shape != (1, m.deter) or z0.shape != (1, m.stoch):
        raise BundleError(f"{path}: initial state shapes {h0.shape}/{z0.shape}, expected "
                          f"(1, {m.deter})/(1, {m.stoch})")
    plan_graphs = load_plan_graphs(path, m, config, max_file_bytes)  # optional whole-plan graphs
    bundle = ModelBundle(path, m, graphs, h0, z0, plan_graphs)
    if smoke:
        try:
            bundle.smoke_test()
        except BundleError:
            raise
        except Exception as exc:  # noqa: BLE001 -- a graph that crashes at run time is refused too
            raise BundleError(f"{path}: smoke run failed ({type(exc).__name__}: {exc})") from exc
    return bundle
