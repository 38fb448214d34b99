"""A model-based run's committed snapshot (agent/snapshot.py): what a fresh clone continues from.

Real runs (subprocess `mbrl-ros agent run` on the DMC cartpole with a tiny model), real MuJoCo
replays, real torch checkpoints.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mbrl_ros.agent import snapshot
from tests.test_dmc import CONFIGS, _agent_run, _smoke_config

REPO = CONFIGS["cartpole_swingup"].parents[2]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A smoke run stopped after 24 env steps (two 12-step episodes, trained), and its snapshot."""
    root = tmp_path_factory.mktemp("snap")
    config = _smoke_config(root, "cartpole_swingup")
    run = root / "run"
    assert (proc := _agent_run(config, run, 24)).returncode == 0, proc.stderr[-3000:]
    cli = [sys.executable, "-m", "mbrl_ros.cli", "agent", "snapshot", str(run)]
    proc = subprocess.run(cli, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "24 env steps, 2 episodes" in proc.stdout
    return config, run


def _fresh_clone(run, dest):
    """What the repository keeps of a run folder (results/.gitignore): evals.csv, run.json, resume/."""
    dest.mkdir(parents=True)
    for name in ("evals.csv", "run.json"):
        shutil.copy(run / name, dest / name)
    shutil.copytree(run / "resume", dest / "resume")
    return dest


def _checkpoint(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.mark.slow
def test_a_fresh_clone_continues_exactly_as_the_original_folder(stopped_run, tmp_path):
    """Continuing the clone (episodes replayed from the snapshot) and continuing the original folder
    give the same training data, the same model weights and the same learning curve."""
    import torch

    config, run = stopped_run
    original = tmp_path / "original"
    shutil.copytree(run, original)
    clone = _fresh_clone(run, tmp_path / "clone")
    for folder in (original, clone):
        assert (proc := _agent_run(config, folder, 36)).returncode == 0, proc.stderr[-3000:]
    a, b = _checkpoint(original / "checkpoint.pt"), _checkpoint(clone / "checkpoint.pt")
    assert a["step"] == b["step"] > 0
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    for name in sorted(p.name for p in (original / "cache").glob("*.npz")):
        assert (original / "cache" / name).read_bytes() == (clone / "cache" / name).read_bytes(), name
    rows = [line.split(",")[:5] for line in (original / "evals.csv").read_text().splitlines()]
    assert rows == [line.split(",")[:5] for line in (clone / "evals.csv").read_text().splitlines()]
    meta = json.loads((clone / "run.json").read_text())
    assert meta["restores"][0]["env_steps"] == 24 and meta["restores"][0]["episodes_rerendered"] == 0
    from importlib.metadata import version

    assert meta["machine"]["versions"]["mujoco"] == version("mujoco")  # what decided the numbers


def _restore(config, folder):
    from mbrl_ros.agent.common import make_env
    from mbrl_ros.agent.config import AgentConfig

    agent_config = AgentConfig.load(config)
    return snapshot.restore(folder, lambda: make_env(agent_config), run_seed=0, progress=False)


def test_a_replay_that_differs_from_the_collected_episode_is_refused(stopped_run, tmp_path):
    config, run = stopped_run
    clone = _fresh_clone(run, tmp_path / "clone")
    path = clone / "resume" / snapshot.EPISODES
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["actions"][5] = -arrays["actions"][5] + 0.5  # another action than the one recorded
    np.savez_compressed(path, **arrays)
    with pytest.raises(snapshot.SnapshotError, match="episode 0 .* replays differently .*action"):
        _restore(config, clone)
    assert not (clone / "checkpoint.pt").exists() and not (clone / "state.json").exists()


def test_a_snapshot_older_than_the_learning_curve_is_refused(stopped_run, tmp_path):
    config, run = stopped_run
    clone = _fresh_clone(run, tmp_path / "clone")
    with open(clone / "evals.csv", "a") as f:
        f.write("36,72,1.0,0.0,1.0,99.0\n")
    with pytest.raises(snapshot.SnapshotError, match="evals.csv holds 4 rows but the snapshot was taken at 3"):
        _restore(config, clone)


def test_restore_rebuilds_the_training_state(stopped_run, tmp_path):
    config, run = stopped_run
    clone = _fresh_clone(run, tmp_path / "clone")
    record = _restore(config, clone)
    assert record["episodes"] == 2 and record["episodes_rerendered"] == 0
    assert (clone / "checkpoint.pt").read_bytes() == (run / "checkpoint.pt").read_bytes()
    assert json.loads((clone / "state.json").read_text()) == json.loads((run / "state.json").read_text())
    assert sorted(p.name for p in (clone / "cache").glob("*.npz")) == sorted(p.name for p in (run / "cache").glob("*.npz"))


def test_a_running_or_untrained_run_is_not_snapshotted(stopped_run, tmp_path):
    _, run = stopped_run
    busy = tmp_path / "busy"
    shutil.copytree(run, busy)
    state = json.loads((busy / "state.json").read_text())
    (busy / "state.json").write_text(json.dumps({**state, "train_steps": state["train_steps"] + 1}))
    with pytest.raises(snapshot.SnapshotError, match="is the run still running"):
        snapshot.take(busy)
    (busy / "checkpoint.pt").unlink()
    with pytest.raises(snapshot.SnapshotError, match="has no checkpoint.pt"):
        snapshot.take(busy)


def test_a_snapshot_marks_a_run_that_died_running_as_stopped(stopped_run, tmp_path):
    """A run killed without the chance to say so still claims "running"; the snapshot, which is only
    taken of a stopped run, corrects that. A finished run stays "done"."""
    _, run = stopped_run
    died = tmp_path / "died"
    shutil.copytree(run, died)
    meta = json.loads((died / "run.json").read_text())
    assert meta["status"] == "done"
    (died / "run.json").write_text(json.dumps({**meta, "status": "running"}))
    snapshot.take(died)
    assert json.loads((died / "run.json").read_text())["status"] == "stopped"
    finished = tmp_path / "finished"
    shutil.copytree(run, finished)
    snapshot.take(finished)
    assert json.loads((finished / "run.json").read_text())["status"] == "done"


@pytest.mark.slow
def test_sigterm_stops_a_run_that_says_so_and_the_same_command_continues_it(tmp_path):
    """SIGTERM mid-run: exit status 143, one line on stderr, run.json "stopped"; the same command
    continues from the saved state and run.json lists each session's machine and where it began."""
    import os
    import signal
    import time

    config = _smoke_config(tmp_path, "cartpole_swingup")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "mbrl_ros.cli", "agent", "run", "--config", str(config), "--method", "mbrl",
           "--budget", "100000", "--out", str(run), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        state = run / "state.json"
        if state.exists() and json.loads(state.read_text()).get("train_steps", 0) > 0:
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "stopped by SIGTERM" in err and "the same command continues it" in err
    assert json.loads((run / "run.json").read_text())["status"] == "stopped"

    saved = json.loads((run / "state.json").read_text())["env_steps"]
    assert (done := _agent_run(config, run, saved + 12)).returncode == 0, done.stderr[-3000:]
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "done" and meta["sessions"] == 2
    assert [m["from_env_steps"] for m in meta["session_machines"]] == [0, saved]
    assert all(m["cpu_model"] and "torch" in m["versions"] for m in meta["session_machines"])


def test_the_repository_keeps_snapshots_but_not_caches_or_checkpoints():
    def ignored(path: str) -> bool:
        proc = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=REPO)
        return proc.returncode == 0

    folder = "results/dmc_reacher_easy/mbrl/seed0"
    assert not ignored(f"{folder}/resume/{snapshot.CHECKPOINT}") and not ignored(f"{folder}/resume/{snapshot.MANIFEST}")
    assert not ignored(f"{folder}/evals.csv")
    assert ignored(f"{folder}/checkpoint.pt") and ignored(f"{folder}/cache/index.json")
    assert ignored(f"{folder}/superseded-20260101T000000Z/resume/{snapshot.MANIFEST}")
