"""On-disk layout of a model store, shared by the exporter (writer) and the runtime (reader).

    <store>/CURRENT                  one line: the published version's directory name
    <store>/v000012-s000004000/      a complete, parity-checked bundle
        manifest.json                sizes, specs, graph files + sha256 (see manifest.py)
        filter.onnx step.onnx imagine.onnx initial_state.npz
    <store>/.tmp-...                 a version being written; readers ignore dot-names

Version names sort in publish order: `v<sequence, 6 digits>-s<training step, 9 digits>`.
Only stdlib here, so both sides can import it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VERSION_RE = re.compile(r"^v(\d{6})-s(\d{9})$")


def version_name(sequence: int, training_step: int) -> str:
    """`v000012-s000004000`: sortable by publish order, training step readable at a glance."""
    if sequence < 0 or training_step < 0:
        raise ValueError(f"sequence and training step must be >= 0, got {sequence}, {training_step}")
    return f"v{sequence:06d}-s{training_step:09d}"


def version_sequence(name: str) -> Optional[int]:
    """The sequence number of a version directory name, None if it is not one."""
    m = VERSION_RE.match(name)
    return int(m.group(1)) if m else None


def list_versions(store: Path) -> list[str]:
    """Published version directories in the store, oldest first."""
    store = Path(store)
    if not store.is_dir():
        return []
    names = [p.name for p in store.iterdir() if p.is_dir() and version_sequence(p.name) is not None]
    return sorted(names, key=version_sequence)


def read_current(store: Path) -> Optional[str]:
    """The version CURRENT points at, None if there is no CURRENT yet.

    Raises ValueError if CURRENT holds something that is not a version name
    (a reader must never follow it to an arbitrary path).
    """
    path = Path(store) / CURRENT
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if version_sequence(text) is None:
        raise ValueError(f"{path} does not name a version: {text[:80]!r}")
    return text




def store_name_for_env(env_id: str) -> str:
    """`mbrl_ros/Reacher2D-v0` -> `reacher2d`: the folder under models/ holding that task's bundles."""
    base = env_id.split("/")[-1]
    base = base.rsplit("-v", 1)[0]
    return base.lower()
