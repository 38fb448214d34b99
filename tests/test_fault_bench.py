"""The fault benchmark (benchmarks/bench_faults.py) cannot rot: its kinds build, and a short run
against the real graph (sim + controller processes, real ONNX Runtime) sends no bad command, loads
no broken bundle and crashes nothing."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_every_fault_kind_builds(tmp_path):
    from fault_kinds import build_all, bundle_kinds, hostile_messages

    from mbrl_ros.paths import models_dir
    from mbrl_ros.runtime.store_layout import list_versions, read_current

    store = tmp_path / "store"
    shutil.copytree(models_dir() / "reacher2d", store, ignore=shutil.ignore_patterns("checkpoint.pt"))
    (tmp_path / "outside").mkdir()
    good = read_current(store)
    kinds = bundle_kinds(store, good, tmp_path / "outside")
    assert len(kinds) >= 100 and len({k.label for k in kinds}) == len(kinds)
    assert len({k.version for k in kinds}) == len(kinds)
    build_all(store, kinds)
    assert read_current(store) == good  # building publishes nothing
    folders = {k.version for k in kinds if k.current is None and (store / k.version).is_dir()
               and not (store / k.version).is_symlink()}
    assert len(folders) >= 100 and set(list_versions(store)) >= folders
    # the good files were hard-linked, never written through
    from mbrl_ros.runtime.bundle import load_bundle

    load_bundle(store / good)
    messages = hostile_messages(64, ["shoulder", "elbow"])
    assert len(messages) >= 30 and {t for _, t, _ in messages} == {"image", "joints", "episode"}


@pytest.mark.ros
@pytest.mark.slow
def test_quick_fault_bench_against_the_running_graph():
    env = {**os.environ, "MUJOCO_GL": "egl"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_faults.py"), "--quick", "--control-good"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["bad_commands"] == 0 and result["commands"] > 100, result
    assert result["bundles_loaded"] == 0 and result["model_version"]["before"] == result["model_version"]["after"]
    assert result["bundles_refusal_seen"] == result["kinds_bundles"] >= 8, result["bundles_refusal_not_seen"]
    assert result["crashes"] == 0 and result["exit_codes"] == {"controller": 0, "sim": 0}, result
    assert result["hostile_messages"] >= 300 and result["hostile_kinds"] >= 30
    # the check can fail: a good bundle published after the broken ones is seen loaded
    assert result["control_good_loaded"] is True
    assert proc.returncode == 0, proc.stdout[-3000:]
