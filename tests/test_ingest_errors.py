"""Ingest that tells the truth: exit codes, one-line errors, the derived control rate, gaps and
repeated frames reported per bag, each warning once, `evaluate --bags`.

Bags are real rosbag2 files (MCAP and sqlite3) written by `rosbags` in a ros2_control layout
(tests/robot_bags.py): commands at ~20 Hz with jitter, 2 s pauses between episodes, no reward.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import yaml

from mbrl_ros import cli
from mbrl_ros.data.bags import IngestConfig, ingest_bags
from mbrl_ros.data.episodes import EpisodeCache
from mbrl_ros.spec import ActionSpec
from tests.bag_helpers import write_bag_with_rosbags
from tests.robot_bags import MS, ingest_dict, write_robot_bag

torch.set_num_threads(1)


def _ingest(tmp_path, bags, config: dict, capsys):
    path = tmp_path / "ingest.yaml"
    path.write_text(yaml.safe_dump({"ingest": config}))
    capsys.readouterr()
    code = cli.main(["ingest", "--bags", *map(str, bags), "--cache", str(tmp_path / "cache"), "--config", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ({"max_gap": 1.0}, r"unknown keys \['max_gap'\]; known: \['action_spec', 'active_grace_s', "),
    ({"max_gap_s": "half a second"}, "max_gap_s must be a number, got 'half a second'"),
    ({"joint_names": "shoulder_joint"}, "joint_names must be a list of strings"),
    ({"image_size": [64]}, "image_size must be a list of 2 integers or null"),
    ({"reward_source": "magic"}, r"reward_source must be one of \['topic', 'task', 'none'\]"),
    ({"action_spec": {"low": [0]}}, "action_spec .* is not {dim, low, high"),
    ({"reward_source": "task", "task": "nowhere/task.yaml"}, "task file nowhere/task.yaml does not exist"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys, change, message):
    write_robot_bag(tmp_path / "bags" / "arm", "mcap", episodes=1, steps=10)
    code, err = _ingest(tmp_path, [tmp_path / "bags"], ingest_dict(**change), capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("mbrl-ros ingest: ") and re.search(message, err), err


def test_missing_paths_and_nothing_ingested_fail(tmp_path, capsys):
    code, err = _ingest(tmp_path, [tmp_path / "no_such_bag"], ingest_dict(), capsys)
    assert code == 2 and err.strip() == f"mbrl-ros ingest: bag path {tmp_path / 'no_such_bag'} does not exist"
    capsys.readouterr()
    assert cli.main(["ingest", "--bags", str(tmp_path), "--cache", str(tmp_path / "c"),
                     "--config", str(tmp_path / "missing.yaml")]) == 2
    missing = tmp_path / "missing.yaml"
    assert capsys.readouterr().err.strip() == f"mbrl-ros ingest: ingest config {missing} does not exist"

    (tmp_path / "empty").mkdir()
    code, err = _ingest(tmp_path, [tmp_path / "empty"], ingest_dict(), capsys)
    assert code == 1 and "no rosbag2 recording found" in err

    # bags that give nothing (commands recorded under another name): every bag failed -> exit 1
    write_robot_bag(tmp_path / "bags" / "arm", "sqlite3", episodes=1, steps=10)
    code, err = _ingest(tmp_path, [tmp_path / "bags"], ingest_dict(command_topic="/arm/commands"), capsys)
    assert code == 1 and "nothing was ingested" in err and "/arm/commands" in err and "Traceback" not in err

    # the same bag read right: exit 0; again: already ingested, still exit 0 (a no-op, not a failure)
    for _ in range(2):
        code, err = _ingest(tmp_path, [tmp_path / "bags"], ingest_dict(), capsys)
        assert code == 0, err


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_derived_rate_ignores_pauses_and_jitter(tmp_path, storage):
    """Commands at ~20 Hz (+-5 ms) in 200-step episodes with 2 s pauses: their mean spacing is
    60 ms (16.7 Hz); the rate derived and reported must be 20 Hz and every step kept."""
    truth = write_robot_bag(tmp_path / "arm", storage, seed=2, episodes=2, steps=200, camera_every=2)
    config = IngestConfig.from_dict(ingest_dict(image_size=[16, 16]))
    report = ingest_bags([tmp_path / "arm"], EpisodeCache(tmp_path / "cache"), config, progress=False)
    (bag,) = report.bags
    timeline = bag.timeline
    assert timeline["rate_hz"] == pytest.approx(20.0)
    assert timeline["rate_from"] == "derived from 398 commands in 2 run(s)"
    assert timeline["gaps_split"] == 1 and timeline["gaps_merged"] == 0 and timeline["fragments_dropped"] == 0
    assert timeline["repeated_frames"] == pytest.approx(0.5, abs=0.01)  # a 10 Hz camera under 20 Hz control
    line = bag.describe()
    assert "20.00 Hz (derived from 398 commands in 2 run(s))" in line and "repeated frames 50%" in line
    assert "1 split an episode" in line and line in report.summary()
    episodes = EpisodeCache(tmp_path / "cache").episodes()
    # all 200 states: the last (step 199) reuses the camera's last frame (step 198), as odd steps do
    assert [len(ep["joints"]) for ep in episodes] == [200, 200]
    for ep, t in zip(episodes, truth):
        np.testing.assert_allclose(ep["joints"][:, :2], t["q"], atol=1e-6)
        np.testing.assert_allclose(ep["action"][1:] * 1.5, t["commands"], atol=1e-5)


def test_bridged_silence_is_reported(tmp_path):
    """A joint-state silence of 200 ms (under max_gap_s) is bridged, not split, and reported."""
    from mbrl_ros.data import ros_messages as rm

    messages = []
    for k in range(30):
        t = 1_000 * MS + k * 50 * MS
        if k not in (10, 11, 12):  # the driver went quiet for 200 ms
            messages.append(("/joint_states", rm.make_joint_state(["a"], [0.01 * k], [0.0], t), t + MS))
        if k < 29:
            messages.append(("/cmd", rm.make_commands([0.1]), t + 10 * MS))
    write_bag_with_rosbags(tmp_path / "bag", messages, "mcap")
    config = IngestConfig(joint_names=("a",), action_spec=ActionSpec(1), image_size=None, command_topic="/cmd",
                          reward_source="none", active_grace_s=0.0)
    report = ingest_bags([tmp_path / "bag"], EpisodeCache(tmp_path / "cache"), config, progress=False)
    assert report.bags[0].timeline["gaps_merged"] == 1 and report.bags[0].timeline["gaps_split"] == 0
    assert "1 bridged" in report.summary() and report.episodes == 1


def test_train_and_evaluate_from_bags_print_each_warning_once(tmp_path, capsys):
    write_robot_bag(tmp_path / "bags" / "arm", "mcap", seed=3, episodes=3, steps=25)
    write_robot_bag(tmp_path / "held" / "arm", "sqlite3", seed=4, episodes=1, steps=25)
    (tmp_path / "ingest.yaml").write_text(yaml.safe_dump(ingest_dict()))
    capsys.readouterr()
    assert cli.main(["train", "--bags", str(tmp_path / "bags"), "--config", str(tmp_path / "ingest.yaml"),
                     "--out", str(tmp_path / "run"), "--preset", "tiny", "--steps", "2"]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert warnings and len(warnings) == len(set(warnings)), err
    assert "topic /mbrl/terminal has no messages" in err
    assert all(err.count(w) == 1 for w in warnings)

    out = tmp_path / "eval"
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "run" / "checkpoint.pt"), "--bags",
                     str(tmp_path / "held"), "--config", str(tmp_path / "ingest.yaml"), "--out", str(out),
                     "--horizons", "1", "5"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["horizons"]["5"]["count"] > 0 and len(EpisodeCache(out / "cache").episodes()) == 1
    capsys.readouterr()
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "run" / "checkpoint.pt"), "--bags",
                     str(tmp_path / "nowhere"), "--config", str(tmp_path / "ingest.yaml"), "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip().endswith(f"bag path {tmp_path / 'nowhere'} does not exist")
