"""Export a world model into a model store and publish it atomically.

    1. under the store lock, pick the next version name (v<seq>-s<step>);
    2. write every file into `<store>/.tmp-<version>-<pid>` (each fsynced);
    3. load that directory with the runtime loader (sha256, signatures, smoke run)
       and check ONNX/torch parity; a failure deletes it and raises (nothing published);
    4. record the parity figures in the manifest, fsync, rename to `<store>/<version>`;
    5. replace CURRENT atomically (tmp + fsync + os.replace) and prune old versions,
       keeping the newest `keep` and always the one CURRENT names.

Readers (mbrl_ros.runtime.ModelStore) only ever follow CURRENT to a complete directory.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from mbrl_ros.export.onnx_export import DEFAULT_FUSED_HORIZON, DEFAULT_PLAN_GRAPHS, write_bundle, write_manifest
from mbrl_ros.export.parity import DEFAULT_TOL, ROLLOUT_FACTOR, check_parity, parity_bounds
from mbrl_ros.runtime.bundle import load_bundle
from mbrl_ros.runtime.sessions import CPU, SessionConfig
from mbrl_ros.fileio import atomic_write_text, fsync_path, fsync_tree
from mbrl_ros.runtime.store_layout import (CURRENT, list_versions, read_current,
                                           version_name, version_sequence)
from mbrl_ros.spec import ActionSpec

log = logging.getLogger(__name__)
TMP_PREFIX = ".tmp-"


@dataclass
class ExportResult:
    version: str
    path: Path
    parity: dict[str, float]
    published: bool  # CURRENT now names this version


@contextmanager
def store_lock(store: Path):
    """Exclusive lock on the store so two exporters never pick the same version number."""
    with open(Path(store) / ".publish.lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def prune(store: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` versions, never the one CURRENT names. Returns removed names."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    store = Path(store)
    try:
        current = read_current(store)
    except ValueError:
        current = None
    versions = list_versions(store)
    removed = [v for v in versions[:-keep] if v != current]
    for name in removed:
        shutil.rmtree(store / name, ignore_errors=True)
    return removed


def export_to_store(wm, store: Path, fused_horizon: int = DEFAULT_FUSED_HORIZON, training_step: int = 0,
                    action_spec: Optional[ActionSpec] = None, source_data: Any = None, publish: bool = True,
                    keep: int = 3, tol: float = DEFAULT_TOL, reference=None, parity_steps: int = 50,
                    plan_graphs: Any = DEFAULT_PLAN_GRAPHS, plan_precisions: Sequence[str] = ()) -> ExportResult:
    """Export `wm` into `store` as a new version, parity-checked; publish it unless `publish=False`.

    fused_horizon: steps the `imagine` graph unrolls in one call (write_bundle).
    plan_graphs, plan_precisions: the whole-plan graphs and their reduced-precision variants (write_bundle).

    reference: the torch model parity is measured against (default `wm` itself; tests
        pass a different one to prove a mismatching bundle is never published).
    Raises ParityError (with the figures) or BundleError; the store is then unchanged.
    """
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    with store_lock(store):
        for stale in store.glob(TMP_PREFIX + "*"):  # leftovers of crashed exports (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        existing = [version_sequence(v) for v in list_versions(store)]
        version = version_name(max(existing, default=0) + 1, training_step)
        tmp = store / f"{TMP_PREFIX}{version}-{os.getpid()}"
        try:
            manifest = write_bundle(wm, tmp, version, fused_horizon=fused_horizon, training_step=training_step,
                                    action_spec=action_spec, source_data=source_data,
                                    plan_graphs=plan_graphs, plan_precisions=plan_precisions)
            bundle = load_bundle(tmp, SessionConfig(providers=(CPU,)))
            report = check_parity(reference if reference is not None else wm, bundle, tol=tol,
                                  steps=parity_steps)
            raw = dict(manifest.raw, parity={"tolerance": tol, "rollout_tolerance": tol * ROLLOUT_FACTOR,
                                             "bounds": parity_bounds(report, tol), "max_abs_diff": report})
            write_manifest(tmp, raw)
            fsync_tree(tmp)
            os.rename(tmp, store / version)
            fsync_path(store)  # the rename itself must survive a power cut before CURRENT names it
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if publish:
            atomic_write_text(store / CURRENT, version + "\n")
            removed = prune(store, keep)
            log.info("published %s in %s (pruned %s)", version, store, removed or "nothing")
        return ExportResult(version, store / version, report, publish)


def export_checkpoint(checkpoint: Path, store: Path, **kwargs) -> ExportResult:
    """`export_to_store` for a checkpoint file written by mbrl_ros.world_model.checkpoint."""
    from mbrl_ros.data.episodes import content_key
    from mbrl_ros.world_model.checkpoint import load_world_model

    wm, payload = load_world_model(Path(checkpoint))
    action_spec = ActionSpec.from_dict(payload["action_spec"]) if payload.get("action_spec") else None
    extra = payload.get("extra") or {}
    source = {"checkpoint": str(checkpoint), "checkpoint_sha256": content_key(Path(checkpoint).read_bytes()),
              "episodes": extra.get("source_data") or extra.get("episodes")}
    kwargs.setdefault("action_spec", action_spec)
    kwargs.setdefault("source_data", source)
    return export_to_store(wm, store, training_step=int(payload["step"]), **kwargs)
