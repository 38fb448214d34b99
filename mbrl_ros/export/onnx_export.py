"""Write a WorldModel's graphs + initial state + manifest into a bundle directory.

The directory is not published here (see publish.py); this only produces the
files and the manifest that describes them.
"""
from __future__ import annotations

import io
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from mbrl_ros.export.graphs import FilterGraph, ImagineGraph, StepGraph
from mbrl_ros.export.plan_graphs import plan_graph_spec, plan_settings
from mbrl_ros.export.quantize import PRECISIONS, quantize_graph
from mbrl_ros.runtime import manifest as mf
from mbrl_ros.runtime.store_layout import MANIFEST
from mbrl_ros.spec import ActionSpec

OPSET = 17
B = mf.BATCH
DEFAULT_FUSED_HORIZON = mf.DEFAULT_FUSED_HORIZON
# Whole-plan graphs every export adds (plan_graphs.py); the choice is measured in docs/planners.md.
DEFAULT_PLAN_GRAPHS = ("cem", "mppi")


def check_fused_horizon(value) -> int:
    """A fused horizon as an int >= 1, or ValueError naming the bad value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"fused_horizon must be an integer >= 1, got {value!r}")
    return int(value)


def _io(names, dtypes, shapes) -> list[dict]:
    return [{"name": n, "dtype": d, "shape": list(s)} for n, d, s in zip(names, dtypes, shapes)]


def graph_specs(wm, fused_horizon: int) -> dict[str, dict]:
    """Per graph: its module, example inputs, and the manifest's input/output descriptions."""
    dh, dz, a, j = wm.deter_dim, wm.stoch_dim, wm.action_dim, wm.obs_spec.joint_dim
    n = 2  # example batch; the batch axis is exported as dynamic
    state_in = [torch.zeros(n, dh), torch.zeros(n, dz)]
    if wm.obs_spec.has_image:
        shape = wm.obs_spec.image_shape
        f_names, f_dtypes = mf.FILTER_INPUTS_IMAGE, ["uint8", "float32", "float32", "float32", "float32"]
        f_shapes = [[B, *shape], [B, j], [B, dh], [B, dz], [B, a]]
        f_example = [torch.zeros(n, *shape, dtype=torch.uint8), torch.zeros(n, j), *state_in, torch.zeros(n, a)]
    else:
        f_names, f_dtypes = mf.FILTER_INPUTS_JOINTS, ["float32"] * 4
        f_shapes = [[B, j], [B, dh], [B, dz], [B, a]]
        f_example = [torch.zeros(n, j), *state_in, torch.zeros(n, a)]
    f32 = lambda k: ["float32"] * k  # noqa: E731
    return {
        "filter": dict(module=FilterGraph(wm), example=f_example,
                       inputs=_io(f_names, f_dtypes, f_shapes),
                       outputs=_io(mf.FILTER_OUTPUTS, f32(2), [[B, dh], [B, dz]])),
        "step": dict(module=StepGraph(wm), example=[*state_in, torch.zeros(n, a)],
                     inputs=_io(mf.STEP_INPUTS, f32(3), [[B, dh], [B, dz], [B, a]]),
                     outputs=_io(mf.STEP_OUTPUTS, f32(5), [[B, dh], [B, dz], [B], [B], [B]])),
        "imagine": dict(module=ImagineGraph(wm, fused_horizon),
                        example=[*state_in, torch.zeros(n, fused_horizon, a)],
                        inputs=_io(mf.IMAGINE_INPUTS, f32(3), [[B, dh], [B, dz], [B, fused_horizon, a]]),
                        outputs=_io(mf.IMAGINE_OUTPUTS, f32(2), [[B, fused_horizon]] * 2)),
    }


def export_graph(module: torch.nn.Module, example: list, inputs: list[dict], outputs: list[dict],
                 dynamic: Optional[dict] = None) -> bytes:
    """Trace `module` to ONNX bytes; `dynamic` axes default to a batch axis on every input and output."""
    if dynamic is None:
        dynamic = {io_["name"]: {0: B} for io_ in inputs + outputs}
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # dynamo=False is deliberate (recurrent cells trace cleanly); silence its deprecation notice.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module.eval(), tuple(example), buf, input_names=[i["name"] for i in inputs],
                          output_names=[o["name"] for o in outputs], dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> str:
    """Write + fsync one bundle file; returns its sha256."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return mf.sha256_bytes(data)


def write_bundle(wm, out_dir: Path, version: str, fused_horizon: int = DEFAULT_FUSED_HORIZON,
                 training_step: int = 0, action_spec: Optional[ActionSpec] = None,
                 source_data: Any = None, plan_graphs: Any = DEFAULT_PLAN_GRAPHS,
                 plan_precisions: Sequence[str] = ()) -> mf.Manifest:
    """Export all graphs of `wm` (a WorldModel, eval mode) into `out_dir` with its manifest.

    fused_horizon: the steps the `imagine` graph unrolls in one call, recorded as the
        manifest's sizes.fused_horizon: the CEM/MPPI horizon the bundle serves at full speed.
        Independent of the model's training `imagination_horizon`.
    plan_graphs: whole-plan graphs to add (plan_graphs.py): planner names ("cem", "mppi"), or
        {planner: baked settings} (e.g. {"cem": {"iterations": 10}}); () for none.
    plan_precisions: extra variants of each plan graph besides fp32 ("int8", quantize.py).
    """
    wm = wm.eval()
    fused_horizon = check_fused_horizon(fused_horizon)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    action_spec = action_spec or ActionSpec(wm.action_dim)
    if action_spec.dim != wm.action_dim:
        raise ValueError(f"action_spec has dim {action_spec.dim}, the model {wm.action_dim}")
    graphs = {}
    for name, spec in graph_specs(wm, fused_horizon).items():
        data = export_graph(spec["module"], spec["example"], spec["inputs"], spec["outputs"])
        graphs[name] = {"file": f"{name}.onnx", "sha256": _write(out_dir / f"{name}.onnx", data),
                        "inputs": spec["inputs"], "outputs": spec["outputs"]}
    graphs.update(write_plan_graphs(wm, out_dir, fused_horizon, plan_graphs, plan_precisions))
    with torch.no_grad():
        h0, z0 = wm.initial_state(1)
    buf = io.BytesIO()
    np.savez(buf, h=h0.cpu().numpy().astype(np.float32), z=z0.cpu().numpy().astype(np.float32))
    init = {"file": "initial_state.npz", "sha256": _write(out_dir / "initial_state.npz", buf.getvalue())}
    raw = {
        "format": mf.FORMAT, "format_version": mf.FORMAT_VERSION, "version": version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "training_step": int(training_step),
        "source_data": source_data, "obs_spec": wm.obs_spec.to_dict(), "action_spec": action_spec.to_dict(),
        "has_value": bool(wm.has_value), "world_model_config": wm.config.to_dict(),
        # false: trained on data without a reward; its reward outputs mean nothing (runtime/reward_check.py)
        "has_reward": bool(wm.config.train_reward),
        "sizes": {"deter": wm.deter_dim, "stoch": wm.stoch_dim, "embed": wm.embed_dim,
                  "action": wm.action_dim, "fused_horizon": fused_horizon},
        "normalisation": "in-graph: raw uint8 image and raw joints go in; symlog/scaling live in the graphs",
        "opset": OPSET, "torch_version": torch.__version__,
        "graphs": graphs, "files": {"initial_state": init},
    }
    manifest = mf.Manifest.from_dict(raw)
    write_manifest(out_dir, raw)
    return manifest


def write_plan_graphs(wm, out_dir: Path, fused_horizon: int, plan_graphs: Any,
                      precisions: Sequence[str] = ()) -> dict[str, dict]:
    """Export the whole-plan graphs into `out_dir`; their manifest `graphs` entries (plan_<planner>[_<precision>])."""
    if isinstance(plan_graphs, str):
        plan_graphs = [p for p in plan_graphs.split(",") if p.strip()]
    if not isinstance(plan_graphs, dict):
        plan_graphs = {str(p).strip(): {} for p in plan_graphs or ()}
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad:
        raise ValueError(f"unknown plan graph precision(s) {bad}; choose from {list(PRECISIONS)}")
    entries = {}
    for planner, overrides in plan_graphs.items():
        spec = plan_graph_spec(wm, planner, fused_horizon, plan_settings(planner, overrides))
        data = export_graph(spec["module"], spec["example"], spec["inputs"], spec["outputs"], spec["dynamic"])
        for precision in ("fp32", *precisions):
            blob = data if precision == "fp32" else quantize_graph(data, precision)
            name = f"plan_{planner}" + ("" if precision == "fp32" else f"_{precision}")
            entries[name] = {"file": f"{name}.onnx", "sha256": _write(out_dir / f"{name}.onnx", blob),
                             "inputs": spec["inputs"], "outputs": spec["outputs"],
                             "plan": dict(spec["plan"], precision=precision)}
    return entries


def write_manifest(out_dir: Path, raw: dict) -> None:
    """(Re)write manifest.json (e.g. once parity figures are known), sealed with its checksum, fsynced."""
    _write(Path(out_dir) / MANIFEST, json.dumps(mf.seal(raw), indent=1, sort_keys=True).encode())
