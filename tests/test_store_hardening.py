"""A model store that trusts nothing on disk: links, FIFOs, huge files, edited or misnamed manifests.

Real export, real ONNX Runtime: each case breaks a copy of a good bundle in one way, publishes it
through CURRENT, and checks that the store refuses it quickly, says why, and keeps the good one.
"""
import json
import os
import shutil
import threading
import time

import numpy as np
import pytest
import torch

from mbrl_ros.export import export_to_store
from mbrl_ros.fileio import atomic_write_text
from mbrl_ros.runtime import BundleError, ModelStore, load_bundle
from mbrl_ros.runtime.manifest import seal
from mbrl_ros.runtime.store_layout import MAX_MANIFEST_BYTES, StoreFileError, read_current, read_store_file
from mbrl_ros.spec import ObsSpec
from mbrl_ros.world_model import WorldModel, WorldModelConfig

OBS = ObsSpec(joint_dim=4, joint_names=tuple(f"j{i}.pos" for i in range(4)))  # a robot store needs named joints


@pytest.fixture(scope="module")
def good_store(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("store")
    export_to_store(WorldModel(WorldModelConfig.preset("tiny"), OBS, 2).eval(), path, training_step=1,
                    parity_steps=5)
    return path


@pytest.fixture
def store(good_store, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(good_store, root)
    return root, read_current(root), ModelStore(root, obs_spec=OBS, required=True)


def clone(root, good, name, version=None):
    dst = root / name
    shutil.copytree(root / good, dst)
    raw = json.loads((dst / "manifest.json").read_text())
    raw["version"] = version or name
    (dst / "manifest.json").write_text(json.dumps(seal(raw)))
    return dst


def publish_and_poll(root, store, name, within_s=2.0):
    atomic_write_text(root / "CURRENT", name + "\n")
    start = time.perf_counter()
    swapped = store.poll()
    return swapped, time.perf_counter() - start


def assert_refused(store, good, name, reason, took, within_s=2.0):
    assert store.version == good, f"{name} was loaded"
    assert store.last_refusal is not None and store.last_refusal.version == name
    assert reason in store.last_refusal.reason, store.last_refusal.reason
    assert took < within_s, f"refusing {name} took {took:.2f} s"


def test_a_manifest_edited_after_publishing_is_refused(store):
    """The ±10 action limits written into a real bundle's manifest (graphs untouched): refused."""
    root, good, ms = store
    d = clone(root, good, "v000002-s000000001")
    raw = json.loads((d / "manifest.json").read_text())
    raw["action_spec"]["low"], raw["action_spec"]["high"] = [-10.0, -10.0], [10.0, 10.0]
    (d / "manifest.json").write_text(json.dumps(raw))  # checksum not recomputed
    swapped, took = publish_and_poll(root, ms, d.name)
    assert not swapped
    assert_refused(ms, good, d.name, "manifest_sha256 does not match", took)
    del raw["manifest_sha256"]
    (d / "manifest.json").write_text(json.dumps(raw))
    atomic_write_text(root / "CURRENT", good + "\n")
    ms.poll()
    swapped, took = publish_and_poll(root, ms, d.name)
    assert not swapped and "no manifest_sha256" in ms.last_refusal.reason


def test_a_huge_manifest_is_refused_before_it_is_read(store):
    root, good, ms = store
    d = clone(root, good, "v000002-s000000001")
    with open(d / "manifest.json", "r+b") as f:  # 200 MiB (sparse: the size is what matters)
        f.truncate(200 << 20)
    swapped, took = publish_and_poll(root, ms, d.name)
    assert not swapped
    assert_refused(ms, good, d.name, "over the", took, within_s=0.5)


def test_a_manifest_that_is_a_fifo_does_not_block_the_watcher(store):
    root, good, ms = store
    d = clone(root, good, "v000002-s000000001")
    (d / "manifest.json").unlink()
    os.mkfifo(d / "manifest.json")
    result = {}
    worker = threading.Thread(target=lambda: result.update(took=publish_and_poll(root, ms, d.name)[1]), daemon=True)
    worker.start()
    worker.join(5.0)
    assert not worker.is_alive(), "the store blocked on a FIFO"
    assert_refused(ms, good, d.name, "not a regular file", result["took"])


def test_links_out_of_the_store_are_refused(store, tmp_path):
    root, good, ms = store
    outside = tmp_path / "elsewhere"
    clone(root, good, "v000009-s000000001").rename(outside)
    (root / "v000002-s000000001").symlink_to(outside, target_is_directory=True)
    swapped, took = publish_and_poll(root, ms, "v000002-s000000001")
    assert not swapped
    assert_refused(ms, good, "v000002-s000000001", "must not be a symlink", took)
    # A graph file that is a link (to a good copy of itself, even) is refused too.
    d = clone(root, good, "v000003-s000000001")
    shutil.copy(d / "step.onnx", tmp_path / "step.onnx")
    (d / "step.onnx").unlink()
    (d / "step.onnx").symlink_to(tmp_path / "step.onnx")
    swapped, took = publish_and_poll(root, ms, d.name)
    assert not swapped
    assert_refused(ms, good, d.name, "outside", took)


def test_a_manifest_naming_another_version_is_refused(store):
    root, good, ms = store
    d = clone(root, good, "v000002-s000000001", version="v000007-s000000009")
    swapped, took = publish_and_poll(root, ms, d.name)
    assert not swapped
    assert_refused(ms, good, d.name, "is not its folder's name", took)
    assert ms.diagnostics()["model_version"] == good


def test_graphs_over_the_configured_size_are_refused(good_store, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(good_store, root)
    with pytest.raises(BundleError, match="over the 1000-byte limit"):
        ModelStore(root, obs_spec=OBS, required=True, max_file_bytes=1000)
    assert ModelStore(root, obs_spec=OBS, required=True).current is not None


def test_current_is_read_as_a_small_regular_file(store):
    root, good, ms = store
    (root / "CURRENT").unlink()
    with open(root / "CURRENT", "wb") as f:
        f.truncate(10 << 20)
    assert ms.poll() is False and "over the" in ms.last_refusal.reason and ms.version == good
    (root / "CURRENT").unlink()
    os.mkfifo(root / "CURRENT")
    start = time.perf_counter()
    assert ms.poll() is False and "not a regular file" in ms.last_refusal.reason
    assert time.perf_counter() - start < 1.0


def test_read_store_file_limits(tmp_path):
    small = tmp_path / "a"
    small.write_bytes(b"x" * 10)
    assert read_store_file(small, 10) == b"x" * 10
    with pytest.raises(StoreFileError, match="over the 9-byte limit"):
        read_store_file(small, 9)
    (tmp_path / "link").symlink_to(small)
    with pytest.raises(StoreFileError):
        read_store_file(tmp_path / "link", 100)
    with pytest.raises(StoreFileError, match="outside"):
        read_store_file(small, 100, inside=tmp_path / "sub")
    assert MAX_MANIFEST_BYTES < 200 << 20


def test_the_shipped_model_is_sealed_and_loads():
    from mbrl_ros.paths import models_dir

    store = models_dir() / "reacher2d"
    bundle = load_bundle(store / read_current(store))
    assert bundle.manifest.raw["manifest_sha256"]
    assert np.all(np.isfinite(bundle.h0))


def test_every_file_the_robot_runs_is_under_the_publish_time_seal(store):
    """The seal (manifest_sha256) covers every manifest field, and the manifest records the sha256 of
    every file that is loaded (graphs, initial state): a file swapped for another one, even a valid
    graph, is refused; so is re-pointing a graph entry at another file without re-sealing."""
    from mbrl_ros.runtime.manifest import read_manifest

    root, good, ms = store
    raw = json.loads((root / good / "manifest.json").read_text())
    loaded = {entry["file"] for entry in raw["graphs"].values()} | {raw["files"]["initial_state"]["file"]}
    on_disk = {p.name for p in (root / good).iterdir() if p.name != "manifest.json"}
    assert on_disk == loaded, "every file in the bundle is listed with a sha256 the seal covers"
    for key in raw:
        if key == "manifest_sha256":
            continue
        d = clone(root, good, "v000009-s000000001")
        edited = json.loads((d / "manifest.json").read_text())
        edited[key] = {"changed": True} if not isinstance(edited[key], str) else edited[key] + "x"
        (d / "manifest.json").write_text(json.dumps(edited))
        with pytest.raises(BundleError, match="manifest_sha256 does not match"):
            read_manifest(d)
        shutil.rmtree(d)
    # a valid graph in place of another (step.onnx over filter.onnx): its sha256 is not the recorded one
    d = clone(root, good, "v000002-s000000001")
    shutil.copy(d / raw["graphs"]["step"]["file"], d / raw["graphs"]["filter"]["file"])
    swapped, took = publish_and_poll(root, ms, d.name)
    assert not swapped
    assert_refused(ms, good, d.name, "does not match manifest", took)
