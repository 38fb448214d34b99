"""The faults bench_faults.py throws at a running graph: broken model bundles and malformed messages.

Broken bundles are built from a good, published bundle (hard links for the files a kind leaves
alone, so 150 bundles cost a few MB), each in its own version folder, before the graph starts:
feeding one is then only a CURRENT flip (or, for the CURRENT kinds, a broken CURRENT), and what
is measured is the controller's reaction, not the feeder's file work. Kinds that must get past
the sha256 checks (to reach the ONNX parser, the signature checks or the smoke run) have their
sha256 entries updated and the manifest re-sealed, as a trainer publishing a bad model would.

Malformed messages are described as plain field dicts (hostile_messages) so the worker process
that publishes them needs nothing but rclpy.
"""
from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from mbrl_ros.fileio import atomic_write_text
from mbrl_ros.runtime.manifest import MANIFEST_CHECKSUM, seal, sha256_bytes
from mbrl_ros.runtime.store_layout import CURRENT, MANIFEST, version_name

GiB, MiB = 1 << 30, 1 << 20


@dataclass
class BundleKind:
    """One kind of broken bundle: `build(folder)` makes it; `publish(store)` points CURRENT at it."""

    label: str
    version: str
    build: Callable[[Path], None]
    current: Optional[Callable[[Path], None]] = None  # a broken CURRENT instead of a version flip

    def publish(self, store: Path) -> None:
        if self.current is not None:
            self.current(store)
        else:
            atomic_write_text(store / CURRENT, self.version + "\n")


class Bundle:
    """Editing helper over one broken copy of the good bundle."""

    def __init__(self, good: Path, folder: Path):
        self.good, self.dir = good, folder
        folder.mkdir()
        for f in good.iterdir():
            if f.name != MANIFEST:
                os.link(f, folder / f.name)  # never written through: replace() unlinks first
        self.raw = json.loads((good / MANIFEST).read_text())
        self.raw["version"] = folder.name

    def entry(self, file: str) -> dict:
        for group in (self.raw["graphs"], self.raw["files"]):
            for entry in group.values():
                if entry["file"] == file:
                    return entry
        raise KeyError(file)

    def replace(self, file: str, data: bytes, update_sha: bool) -> None:
        path = self.dir / file
        path.unlink()
        path.write_bytes(data)
        if update_sha:
            self.entry(file)["sha256"] = sha256_bytes(data)

    def good_bytes(self, file: str) -> bytes:
        return (self.good / file).read_bytes()

    def write_manifest(self, reseal: bool = True, text: Optional[str] = None) -> None:
        if text is None:
            raw = seal({k: v for k, v in self.raw.items() if k != MANIFEST_CHECKSUM}) if reseal else self.raw
            text = json.dumps(raw)
        (self.dir / MANIFEST).write_text(text)


def _manifest_edit(edit: Callable[[dict], None], reseal: bool = True):
    def build(b: Bundle) -> None:
        edit(b.raw)
        b.write_manifest(reseal)
    return build


def _manifest_text(text_of: Callable[[Bundle], str]):
    def build(b: Bundle) -> None:
        b.write_manifest(text=text_of(b))
    return build


def _set(path: str, value):
    """An edit setting raw[a][b]... = value (path 'a.b')."""
    keys = path.split(".")

    def edit(raw):
        node = raw
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value(node[keys[-1]]) if callable(value) else value
    return edit


def _delete(path: str):
    keys = path.split(".")

    def edit(raw):
        node = raw
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
    return edit


def _replace_manifest_node(b: Bundle, make: Callable[[Path], None]) -> None:
    b.write_manifest()
    (b.dir / MANIFEST).unlink()
    make(b.dir / MANIFEST)


def _onnx_with(data: bytes, fill: float) -> bytes:
    """The graph with its largest float initializer filled with `fill` (NaN or inf). (Huge finite weights
    are no fault a store can see: tanh/sigmoid keep the outputs finite, and a finite but bad model is a
    badly trained one, which the robot's limits and the controller's clamps are for.)"""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    inits = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    target = max(inits, key=lambda i: int(np.prod(i.dims)) if i.dims else 1)
    arr = np.full_like(numpy_helper.to_array(target), fill)
    target.CopyFrom(numpy_helper.from_array(arr, target.name))
    return model.SerializeToString()


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _file_kinds(file: str, outside: Path) -> list[tuple[str, Callable[[Bundle], None]]]:
    """Ways one bundle file can be broken."""
    rng = np.random.default_rng(sum(file.encode()))

    def sparse(size):
        def build(b):
            p = b.dir / file
            p.unlink()
            with open(p, "wb") as f:
                f.truncate(size)
            b.write_manifest()
        return build

    def node(make):
        def build(b):
            (b.dir / file).unlink()
            make(b, b.dir / file)
            b.write_manifest()
        return build

    def link_outside(b, p):
        target = outside / f"{b.dir.name}-{file}"
        shutil.copy(b.good / file, target)
        p.symlink_to(target)

    def data(make, update_sha):
        def build(b):
            b.replace(file, make(b.good_bytes(file)), update_sha)
            b.write_manifest()
        return build

    return [
        (f"{file}: missing", node(lambda b, p: None)),
        (f"{file}: truncated to half", data(lambda d: d[:len(d) // 2], False)),
        (f"{file}: truncated to half, sha256 updated", data(lambda d: d[:len(d) // 2], True)),
        (f"{file}: empty", data(lambda d: b"", False)),
        (f"{file}: empty, sha256 updated", data(lambda d: b"", True)),
        (f"{file}: random bytes", data(lambda d: rng.bytes(len(d)), False)),
        (f"{file}: random bytes, sha256 updated", data(lambda d: rng.bytes(len(d)), True)),
        (f"{file}: one bit flipped", data(lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:], False)),
        (f"{file}: symlink to a good copy inside the store", node(lambda b, p: p.symlink_to(b.good / file))),
        (f"{file}: symlink out of the store", node(link_outside)),
        (f"{file}: a FIFO", node(lambda b, p: os.mkfifo(p))),
        (f"{file}: a directory", node(lambda b, p: p.mkdir())),
        (f"{file}: 1.5 GiB (sparse)", sparse(3 * GiB // 2)),
    ]


def bundle_kinds(store: Path, good_version: str, outside: Path, first_sequence: int = 100) -> list[BundleKind]:
    """Every kind of broken bundle, each with its own version name (not built yet)."""
    good = store / good_version
    raw = json.loads((good / MANIFEST).read_text())
    low, high = raw["action_spec"]["low"], raw["action_spec"]["high"]
    graph_files = [raw["graphs"][g]["file"] for g in ("filter", "step", "imagine")]
    state_file = raw["files"]["initial_state"]["file"]
    horizon_key = "horizon" if "horizon" in raw["sizes"] else "fused_horizon"
    nan, inf = float("nan"), float("inf")

    specs: list[tuple[str, Callable[[Bundle], None]]] = [
        # ---- fields that change what the robot does
        ("action_spec ±10, re-sealed", _manifest_edit(_set("action_spec", lambda a: {**a, "low": [-10.0] * len(low),
                                                                                     "high": [10.0] * len(high)}))),
        ("action_spec ±10, not re-sealed (edited after publishing)",
         _manifest_edit(_set("action_spec", lambda a: {**a, "low": [-10.0] * len(low), "high": [10.0] * len(high)}),
                        reseal=False)),
        ("action_spec 1 % wider, re-sealed", _manifest_edit(_set("action_spec.high", [h * 1.01 for h in high]))),
        ("action_spec low > high", _manifest_edit(_set("action_spec", lambda a: {**a, "low": high, "high": low}))),
        ("action_spec NaN limits", _manifest_edit(_set("action_spec.high", [nan] * len(high)))),
        ("action_spec inf limits", _manifest_edit(_set("action_spec.high", [inf] * len(high)))),
        ("action_spec zero width", _manifest_edit(_set("action_spec", lambda a: {**a, "low": [0.0] * len(low),
                                                                                 "high": [0.0] * len(high)}))),
        ("action_spec 3 actuators", _manifest_edit(_set("action_spec", lambda a: {
            **a, "dim": 3, "low": low + [-1.0], "high": high + [1.0], "names": list(a.get("names", [])) + ["x"]}))),
        ("action_spec 1 actuator", _manifest_edit(_set("action_spec", lambda a: {
            **a, "dim": 1, "low": low[:1], "high": high[:1], "names": list(a.get("names", []))[:1]}))),
        ("action_spec actuator names reversed", _manifest_edit(_set("action_spec", lambda a: {
            **a, "names": list(reversed(a.get("names", []))), "low": list(reversed(low)),
            "high": list(reversed(high))}))),
        ("action_spec ±10 as strings", _manifest_edit(_set("action_spec", lambda a: {
            **a, "low": ["-10"] * len(low), "high": ["10"] * len(high)}))),
        ("obs_spec 5 joints", _manifest_edit(_set("obs_spec.joint_dim", 5))),
        ("obs_spec image 32x32", _manifest_edit(_set("obs_spec.image_shape", [32, 32, 3]))),
        ("obs_spec image 1 channel", _manifest_edit(_set("obs_spec.image_shape", [64, 64, 1]))),
        ("obs_spec joint names renamed", _manifest_edit(_set("obs_spec.joint_names",
                                                             lambda n: [f"x{i}" for i in range(len(n or []))]))),
        ("obs_spec empty", _manifest_edit(_set("obs_spec", {}))),
        (f"sizes.{horizon_key} 0", _manifest_edit(_set(f"sizes.{horizon_key}", 0))),
        (f"sizes.{horizon_key} -1", _manifest_edit(_set(f"sizes.{horizon_key}", -1))),
        (f"sizes.{horizon_key} 10**12", _manifest_edit(_set(f"sizes.{horizon_key}", 10**12))),
        ("sizes.deter halved", _manifest_edit(_set("sizes.deter", lambda d: d // 2))),
        ("sizes.stoch 0", _manifest_edit(_set("sizes.stoch", 0))),
        ("sizes.embed a string", _manifest_edit(_set("sizes.embed", "wide"))),
        ("format wrong", _manifest_edit(_set("format", "onnx.bundle"))),
        ("format_version 99", _manifest_edit(_set("format_version", 99))),
        ("format_version true", _manifest_edit(_set("format_version", True))),
        ("format_version a string", _manifest_edit(_set("format_version", "1"))),
        ("version names another folder", _manifest_edit(_set("version", version_name(999999, 1)))),
        ("version a number", _manifest_edit(_set("version", 12))),
        ("version a path", _manifest_edit(_set("version", "../../etc"))),
        ("has_value a list", _manifest_edit(_set("has_value", [1, 2]))),
        ("graphs.filter missing", _manifest_edit(_delete("graphs.filter"))),
        ("graphs.step file '../step.onnx'", _manifest_edit(_set("graphs.step.file", "../" + graph_files[1]))),
        ("graphs.step file an absolute path", _manifest_edit(_set("graphs.step.file", "/etc/passwd"))),
        ("graphs.step file a dot-name", _manifest_edit(_set("graphs.step.file", ".step.onnx"))),
        ("graphs.filter inputs renamed", _manifest_edit(_set("graphs.filter.inputs",
                                                             lambda ins: [{**i, "name": i["name"] + "_x"} for i in ins]))),
        ("graphs.step outputs with wrong shapes", _manifest_edit(_set("graphs.step.outputs",
                                                                      lambda outs: [{**o, "shape": [1, 2, 3]} for o in outs]))),
        ("graphs.imagine is the step graph (manifest swap)", _manifest_edit(_set("graphs.imagine",
                                                                                 lambda _: dict(raw["graphs"]["step"])))),
        ("files.initial_state is a graph file", _manifest_edit(_set("files.initial_state",
                                                                    lambda _: {"file": graph_files[0], "sha256": raw["graphs"]["filter"]["sha256"]}))),
        ("sha256 of step wrong", _manifest_edit(_set("graphs.step.sha256", "0" * 64))),
        ("sha256 of step not a string", _manifest_edit(_set("graphs.step.sha256", None))),
        # ---- the seal
        ("seal: checksum wrong", _manifest_edit(_set(MANIFEST_CHECKSUM, "f" * 64), reseal=False)),
        ("seal: checksum missing", _manifest_edit(_delete(MANIFEST_CHECKSUM), reseal=False)),
        ("seal: the good bundle's checksum", _manifest_edit(_set("training_step", 1), reseal=False)),
        ("seal: checksum a number", _manifest_edit(_set(MANIFEST_CHECKSUM, 0), reseal=False)),
        # ---- the manifest file itself
        ("manifest: not JSON", _manifest_text(lambda b: "this is not json")),
        ("manifest: empty", _manifest_text(lambda b: "")),
        ("manifest: a JSON array", _manifest_text(lambda b: "[1, 2, 3]")),
        ("manifest: a JSON string", _manifest_text(lambda b: '"manifest"')),
        ("manifest: truncated", _manifest_text(lambda b: json.dumps(seal(b.raw))[:500])),
        ("manifest: binary garbage", _manifest_text(lambda b: "\x00\xff\xfe" * 100)),
        ("manifest: nested 100000 deep", _manifest_text(lambda b: "[" * 100000 + "]" * 100000)),
        ("manifest: 2 MiB (a padded field, re-sealed)", _manifest_edit(_set("source_data", "x" * (2 * MiB)))),
        ("manifest: 200 MiB (sparse)", lambda b: _replace_manifest_node(
            b, lambda p: open(p, "wb").truncate(200 * MiB))),
        ("manifest: 1.5 GiB (sparse)", lambda b: _replace_manifest_node(
            b, lambda p: open(p, "wb").truncate(3 * GiB // 2))),
        ("manifest: a FIFO", lambda b: _replace_manifest_node(b, os.mkfifo)),
        ("manifest: a directory", lambda b: _replace_manifest_node(b, lambda p: p.mkdir())),
        ("manifest: missing", lambda b: _replace_manifest_node(b, lambda p: None)),
        ("manifest: symlink to the good manifest", lambda b: _replace_manifest_node(
            b, lambda p: p.symlink_to(b.good / MANIFEST))),
        ("manifest: symlink to /dev/zero", lambda b: _replace_manifest_node(b, lambda p: p.symlink_to("/dev/zero"))),
        # ---- graphs that load but compute nonsense (sha256 updated, re-sealed)
        *[(f"{f}: NaN weights (NaN-producing graph)", _graph_fill(f, nan)) for f in graph_files],
        *[(f"{f}: inf weights (inf/NaN-producing graph)", _graph_fill(f, inf)) for f in graph_files],
        (f"{graph_files[0]} holds the step graph", _graph_swap(graph_files[0], graph_files[1])),
        (f"{graph_files[2]} holds the step graph", _graph_swap(graph_files[2], graph_files[1])),
        (f"{state_file}: NaN initial state", _state(lambda h, z: {"h": np.full_like(h, nan), "z": z})),
        (f"{state_file}: wrong shapes", _state(lambda h, z: {"h": h[:, :3], "z": z})),
        (f"{state_file}: key missing", _state(lambda h, z: {"h": h})),
        (f"{state_file}: a pickled object array", _state(lambda h, z: {"h": np.array([object()], dtype=object),
                                                                      "z": z})),
    ]
    for file in graph_files + [state_file]:
        specs += _file_kinds(file, outside)

    kinds = []
    seq = first_sequence
    for label, build in specs:
        name = version_name(seq, int(raw.get("training_step", 0)))
        kinds.append(BundleKind(label, name, _builder(good, build)))
        seq += 1

    # ---- version folders
    def folder(label, make):
        nonlocal seq
        name = version_name(seq, 0)
        seq += 1
        kinds.append(BundleKind(label, name, make))

    def link_out(d: Path):
        target = outside / d.name
        Bundle(good, target).write_manifest()  # a complete good-looking bundle, outside the store
        d.symlink_to(target, target_is_directory=True)

    folder("version folder: symlink out of the store", link_out)
    folder("version folder: symlink to the good version", lambda d: d.symlink_to(good, target_is_directory=True))
    folder("version folder: a regular file", lambda d: d.write_text("not a folder"))
    folder("version folder: a FIFO", lambda d: os.mkfifo(d))
    folder("version folder: missing", lambda d: None)
    folder("version folder: empty", lambda d: d.mkdir())

    # ---- CURRENT itself
    def current(label, write):
        kinds.append(BundleKind(label, f"CURRENT ({label})", lambda d: None, current=write))

    def replace_current(make):
        def write(store):
            (store / CURRENT).unlink(missing_ok=True)
            make(store / CURRENT)
        return write

    current("CURRENT: garbage text", lambda s: atomic_write_text(s / CURRENT, "latest please\n"))
    current("CURRENT: a path", lambda s: atomic_write_text(s / CURRENT, "../../etc\n"))
    current("CURRENT: empty", lambda s: atomic_write_text(s / CURRENT, ""))
    current("CURRENT: binary", lambda s: (s / CURRENT).write_bytes(b"\xff\xfe\x00v0001"))
    current("CURRENT: 10 MiB (sparse)", replace_current(lambda p: open(p, "wb").truncate(10 * MiB)))
    current("CURRENT: a FIFO", replace_current(os.mkfifo))
    current("CURRENT: symlink to a file naming the good version",
            replace_current(lambda p: p.symlink_to(store.parent / f"{store.name}-current-link")))
    current("CURRENT: a directory", replace_current(lambda p: p.mkdir()))
    return kinds


def _builder(good: Path, build: Callable[[Bundle], None]) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        build(Bundle(good, folder))
    return make


def _graph_fill(file: str, fill: float):
    def build(b: Bundle) -> None:
        b.replace(file, _onnx_with(b.good_bytes(file), fill), update_sha=True)
        b.write_manifest()
    return build


def _graph_swap(slot: str, source: str):
    def build(b: Bundle) -> None:
        b.replace(slot, b.good_bytes(source), update_sha=True)
        b.write_manifest()
    return build


def _state(make):
    def build(b: Bundle) -> None:
        with np.load(b.good / b.raw["files"]["initial_state"]["file"]) as npz:
            arrays = make(npz["h"], npz["z"])
        b.replace(b.raw["files"]["initial_state"]["file"], _npz(**arrays), update_sha=True)
        b.write_manifest()
    return build


def build_all(store: Path, kinds: list[BundleKind]) -> None:
    """Build every kind's version folder in `store` (CURRENT untouched)."""
    for kind in kinds:
        if kind.current is None:
            kind.build(store / kind.version)
    # the target of "CURRENT: symlink to a file naming the good version"
    link_target = store.parent / f"{store.name}-current-link"
    link_target.write_text(open(store / CURRENT).read())


# --------------------------------------------------------------------------------------- messages
def hostile_messages(image_size: int, joint_names: list[str], with_velocity: bool = True) -> list[tuple[str, str, dict]]:
    """(kind, topic, fields) for every malformed message kind; topics are relative (the graph's
    namespace). Stamps: 0 means "now" to the controller (drivers that leave stamps empty)."""
    n, s = len(joint_names), image_size
    rng = np.random.default_rng(0)
    good_img = rng.integers(0, 255, (s, s, 3), dtype=np.uint8).tobytes()

    def img(h, w, enc="rgb8", step=None, data=None, sec=0, nanosec=0):
        return {"height": h, "width": w, "encoding": enc, "step": w * 3 if step is None else step,
                "data": (bytes(h * w * 3) if data is None else data), "sec": sec, "nanosec": nanosec}

    def js(names=None, pos=None, vel=None, sec=0, nanosec=0):
        return {"name": list(joint_names if names is None else names),
                "position": [0.1] * n if pos is None else pos,
                "velocity": ([0.0] * n if with_velocity else []) if vel is None else vel,
                "sec": sec, "nanosec": nanosec}

    kinds = [
        ("image 32x32", "image", img(32, 32)),
        ("image 1x1", "image", img(1, 1)),
        ("image 0x0", "image", img(0, 0, data=b"")),
        ("image 512x512", "image", img(512, 512)),
        ("image mono16", "image", img(s, s, "mono16", step=s * 2, data=bytes(s * s * 2))),
        ("image 32FC1", "image", img(s, s, "32FC1", step=s * 4, data=bytes(s * s * 4))),
        ("image encoding empty", "image", img(s, s, "")),
        ("image encoding garbage", "image", img(s, s, "rgb8\u00e9junk")),
        ("image bayer_rggb8", "image", img(s, s, "bayer_rggb8", step=s, data=bytes(s * s))),
        ("image step 0", "image", img(s, s, step=0)),
        ("image step one short", "image", img(s, s, step=s * 3 - 1)),
        ("image step 2**31", "image", img(s, s, step=2**31)),
        ("image data truncated", "image", img(s, s, data=good_img[: len(good_img) // 2])),
        ("image data doubled", "image", img(s, s, data=good_img * 2)),
        ("image data empty", "image", img(s, s, data=b"")),
        ("image height 2**31", "image", img(2**31, s, data=good_img)),
        ("image width 2**30", "image", img(s, 2**30, step=3 * 2**30 % 2**32, data=good_img)),
        ("image stamped +1e6 s (future)", "image", img(s, s, data=good_img, sec=10**6)),
        ("image stamped 1 s (past)", "image", img(s, s, data=good_img, sec=1)),
        ("image stamp nanosec 2e9", "image", img(s, s, data=good_img, sec=1, nanosec=2_000_000_000)),
        ("joints NaN position", "joints", js(pos=[float("nan")] * n)),
        ("joints inf position", "joints", js(pos=[float("inf")] * n)),
        ("joints -inf velocity", "joints", js(vel=[-float("inf")] * n)),
        ("joints 1e308", "joints", js(pos=[1e308] * n, vel=[1e308] * n)),
        ("joints unknown names", "joints", js(names=[f"j{i}" for i in range(n)])),
        ("joints one missing", "joints", js(names=joint_names[:-1], pos=[0.1] * (n - 1), vel=[0.0] * (n - 1))),
        ("joints duplicate names", "joints", js(names=[joint_names[0]] * n)),
        ("joints names/positions count mismatch", "joints", js(pos=[0.1] * (n - 1))),
        ("joints empty", "joints", js(names=[], pos=[], vel=[])),
        ("joints velocity missing", "joints", js(vel=[])),
        ("joints names without values", "joints", js(pos=[], vel=[])),
        ("joints non-ASCII names", "joints", js(names=["\u00e9\u00e8"] * n)),
        ("joints stamped +1e6 s (future)", "joints", js(sec=10**6)),
        ("joints stamped 1 s (past)", "joints", js(sec=1)),
        ("episode -1", "episode", {"data": -1}),
        ("episode 2**63-1", "episode", {"data": 2**63 - 1}),
        ("episode -2**63", "episode", {"data": -2**63}),
        ("episode 0 again", "episode", {"data": 0}),
    ]
    return kinds
