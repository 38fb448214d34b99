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

import os
import re
import stat
from pathlib import Path
from typing import Optional

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VERSION_RE = re.compile(r"^v(\d{6})-s(\d{9})$")
MAX_CURRENT_BYTES = 256  # one version name
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few KiB; anything near this is not one
DEFAULT_MAX_GRAPH_BYTES = 512 << 20  # per graph file; ModelStore(max_file_bytes=...) changes it


class StoreFileError(ValueError):
    """A store file that must not be read: not a regular file, a link, outside the store, too large."""


def read_store_file(path: Path, max_bytes: int, inside: Optional[Path] = None) -> bytes:
    """The bytes of `path`, read only if it is a regular file of at most `max_bytes`.

    Never follows a symlink at the last component (O_NOFOLLOW), never blocks on a FIFO or device
    (O_NONBLOCK, then fstat must say regular file), never reads more than max_bytes + 1 bytes, and,
    with `inside`, refuses a path whose resolved location is not under that folder (a version folder
    that is a link out of the store). Whatever is refused raises StoreFileError naming the reason.
    """
    path = Path(path)
    if inside is not None:
        root = Path(inside).resolve()
        real = path.resolve()
        if real != root and root not in real.parents:
            raise StoreFileError(f"{path}: resolves to {real}, outside {root}")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP: a symlink under O_NOFOLLOW
        raise StoreFileError(f"{path}: cannot open as a plain file ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StoreFileError(f"{path}: not a regular file")
        if info.st_size > max_bytes:
            raise StoreFileError(f"{path}: {info.st_size} bytes, over the {max_bytes}-byte limit")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:  # grew while being read
            raise StoreFileError(f"{path}: over the {max_bytes}-byte limit")
        return data
    finally:
        os.close(fd)


def version_dir(store: Path, name: str) -> Path:
    """`<store>/<name>` for a published version, refused unless it is a real folder inside the store."""
    if version_sequence(name) is None:
        raise StoreFileError(f"{name!r} is not a version name")
    path = Path(store) / name
    if path.is_symlink():
        raise StoreFileError(f"{path}: a version folder must not be a symlink")
    root, real = Path(store).resolve(), path.resolve()
    if real.parent != root:
        raise StoreFileError(f"{path}: resolves to {real}, outside the store {root}")
    if not path.is_dir():
        raise StoreFileError(f"{path}: bundle directory missing" if not path.exists() else f"{path}: not a folder")
    return path


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
        raw = read_store_file(path, MAX_CURRENT_BYTES)
    except FileNotFoundError:
        return None
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not ASCII text") from None
    if version_sequence(text) is None:
        raise ValueError(f"{path} does not name a version: {text[:80]!r}")
    return text


def store_name_for_env(env_id: str) -> str:
    """`mbrl_ros/Reacher2D-v0` -> `reacher2d`: the folder under models/ holding that task's bundles."""
    base = env_id.split("/")[-1]
    base = base.rsplit("-v", 1)[0]
    return base.lower()
