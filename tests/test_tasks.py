"""Tasks a user states without writing a node: task YAML terms, checked module:function tasks,
env rewards on the wrong robot refused, ingest with a task, and `mbrl-ros relabel` changing the
task of a trained model without re-ingesting or retraining it.

Bags are real rosbag2 files (MCAP and sqlite3) written by `rosbags` (tests/robot_bags.py).
"""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
import yaml

from mbrl_ros import cli
from mbrl_ros.data.bags import IngestConfig, ingest_bags
from mbrl_ros.data.episodes import EpisodeCache
from mbrl_ros.data.tasks import TaskError, load_task, task_from_dict
from mbrl_ros.spec import ActionSpec, ObsSpec
from mbrl_ros.training.trainer import Trainer
from mbrl_ros.world_model import WorldModelConfig
from mbrl_ros.world_model.checkpoint import load_checkpoint
from tests.robot_bags import ACTION_SPEC, ingest_dict, write_robot_bag

torch.set_num_threads(1)
NAMES = ("shoulder.pos", "elbow.pos", "shoulder.vel", "elbow.vel")
SPEC = ObsSpec(4, None, NAMES, angle_joints=(0,))  # the shoulder turns without limits
ACTIONS = ActionSpec(2, names=("shoulder", "elbow"))


def test_yaml_terms_give_the_stated_reward():
    task = task_from_dict({"name": "t", "terms": [
        {"type": "reach", "joints": ["shoulder", "elbow"], "target": [0.5, -0.3], "weight": 2.0},
        {"type": "hold", "joint": "elbow.pos", "setpoint": 0.1, "weight": 0.5},
        {"type": "velocity", "weight": 0.01},
        {"type": "effort", "actions": ["elbow"], "weight": 0.1}]}, SPEC, ACTIONS)
    rng = np.random.default_rng(0)
    j, a = rng.normal(size=(7, 4)), rng.uniform(-1, 1, size=(7, 2))
    d = j[:, :2] - [0.5, -0.3]
    d[:, 0] = (d[:, 0] + np.pi) % (2 * np.pi) - np.pi
    expected = (-2.0 * np.linalg.norm(d, axis=1) - 0.5 * (j[:, 1] - 0.1) ** 2
                - 0.01 * (j[:, 2] ** 2 + j[:, 3] ** 2) - 0.1 * a[:, 1] ** 2)
    np.testing.assert_allclose(task(j, a), expected)
    # a continuous joint's angle is compared the short way round
    near = task_from_dict({"terms": [{"type": "reach", "joints": ["shoulder"], "target": [np.pi - 0.1]}]},
                          SPEC, ACTIONS)
    assert near(np.array([-np.pi + 0.1, 0, 0, 0]), np.zeros(2)) == pytest.approx(-0.2)
    # with a margin: 1 at the target, 0.1 at the margin
    tol = task_from_dict({"terms": [{"type": "reach", "joints": ["elbow"], "target": [0.0], "margin": 0.2}]},
                         SPEC, ACTIONS)
    assert tol(np.zeros(4), np.zeros(2)) == pytest.approx(1.0)
    assert tol(np.array([0, 0.2, 0, 0]), np.zeros(2)) == pytest.approx(0.1)


@pytest.mark.parametrize("terms, message", [
    ([{"type": "reach", "joints": ["wrist"], "target": [0]}], r"'wrist' is not in the observation \(entries: "),
    ([{"type": "reach", "joints": ["elbow"], "targt": [0]}], r"unknown keys \['targt'\]; known: "),
    ([{"type": "reach", "joints": ["elbow", "shoulder"], "target": [0]}], "2 joint.s. but 1 target"),
    ([{"type": "hold", "joint": "elbow", "setpoint": "up"}], "setpoint must be a finite number"),
    ([{"type": "effort", "actions": ["gripper"]}], "action 'gripper' is neither"),
    ([{"type": "dance"}], "needs 'type' one of"),
    ([], "'terms' must be a non-empty list"),
])
def test_bad_task_yaml_is_one_clear_error(terms, message):
    with pytest.raises(TaskError, match=message):
        task_from_dict({"terms": terms}, SPEC, ACTIONS)


def test_function_tasks_are_checked_against_the_obs_spec():
    mod = types.ModuleType("user_rewards_for_test")

    def by_size(j, a):
        return -np.linalg.norm(j[..., 8:10], axis=-1)  # the slice that was silently empty on 4 entries
    by_size.joint_dim = 10

    def by_name(j, a):
        return j[..., 0] - j[..., 1]
    by_name.joint_names = ["elbow.vel", "shoulder.pos"]

    def undeclared(j, a):
        return j[..., 0]

    mod.by_size, mod.by_name, mod.undeclared = by_size, by_name, undeclared
    sys.modules[mod.__name__] = mod
    try:
        with pytest.raises(TaskError, match=r"reads a joint vector of 10 entries, the observation spec has 4"):
            load_task("user_rewards_for_test:by_size", SPEC, ACTIONS)
        with pytest.raises(TaskError, match="say which joint vector it reads"):
            load_task("user_rewards_for_test:undeclared", SPEC, ACTIONS)
        with pytest.raises(TaskError, match="has no 'missing'"):
            load_task("user_rewards_for_test:missing", SPEC, ACTIONS)
        task = load_task("user_rewards_for_test:by_name", SPEC, ACTIONS)
        j = np.array([[1.0, 2.0, 3.0, 4.0]])
        np.testing.assert_allclose(task(j, np.zeros((1, 2))), [4.0 - 1.0])  # picked by name, not position
        with pytest.raises(TaskError, match="joint vector has 3 entries, the task was built for 4"):
            task(np.zeros((1, 3)), np.zeros((1, 2)))
    finally:
        del sys.modules[mod.__name__]
    # an env's reward on another robot's vector: refused by name instead of reading an empty slice
    with pytest.raises(TaskError, match="'joint0.cos' is not in the observation"):
        load_task("mbrl_ros/Reacher-v5", SPEC, ACTIONS)
    with pytest.raises(TaskError, match="not a function of the recorded joints"):
        load_task("mbrl_ros/Reacher2D-v0", SPEC, ACTIONS)


def test_ingest_with_a_task_and_with_an_env_reward_that_does_not_fit(tmp_path, capsys):
    write_robot_bag(tmp_path / "bags" / "arm", "sqlite3", seed=4, episodes=2, steps=20)
    task_file = tmp_path / "hold.yaml"
    task_file.write_text(yaml.safe_dump({"task": {"terms": [
        {"type": "hold", "joints": ["shoulder_joint", "elbow_joint"], "setpoint": [0.2, 0.0]},
        {"type": "velocity", "weight": 0.01}]}}))
    config = IngestConfig.from_dict(ingest_dict(reward_source="task", task=str(task_file)))
    cache = EpisodeCache(tmp_path / "cache")
    report = ingest_bags(tmp_path / "bags", cache, config, progress=False)
    assert report.episodes == 2 and not report.errors
    task = load_task(str(task_file), config.obs_spec, config.action_spec)
    for ep in cache.episodes():
        np.testing.assert_allclose(ep["reward"][1:], task(ep["joints"][1:], ep["action"][1:]), rtol=1e-5)
        assert ep["reward"][1:].std() > 0
    assert cache.rewards == [f"task {task_file}"] and not cache.reward_free

    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(ingest_dict(reward_source="reward_fn",
                                                                     task="mbrl_ros/Reacher-v5")))
    capsys.readouterr()
    assert cli.main(["ingest", "--bags", str(tmp_path / "bags"), "--cache", str(tmp_path / "c2"),
                     "--config", str(tmp_path / "wrong.yaml")]) == 2
    err = capsys.readouterr().err
    assert "'joint0.cos' is not in the observation" in err and "Traceback" not in err
    assert not list((tmp_path / "c2").glob("*.npz"))


def test_relabel_changes_the_task_without_reingesting_or_retraining(tmp_path, capsys):
    write_robot_bag(tmp_path / "bags" / "arm", "mcap", seed=5, episodes=2, steps=30)
    cache = EpisodeCache(tmp_path / "cache")
    config = IngestConfig.from_dict(ingest_dict())
    assert ingest_bags(tmp_path / "bags", cache, config, progress=False).episodes == 2
    trainer = Trainer.create(WorldModelConfig.preset("tiny").reward_free(), cache.episodes(),
                             obs_spec=cache.obs_spec, action_dim=2, action_spec=ACTION_SPEC)
    trainer.train(3, checkpoint_path=tmp_path / "wm.pt", progress=False)
    files_before = sorted(p.name for p in cache.paths())

    tasks = {"up": [0.8, 0.8], "down": [-0.8, -0.8]}
    for name, target in tasks.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"terms": [
            {"type": "reach", "joints": ["shoulder_joint", "elbow_joint"], "target": target}]}))
        assert cli.main(["relabel", "--checkpoint", str(tmp_path / "wm.pt"), "--cache", str(cache.root),
                         "--task", str(tmp_path / f"{name}.yaml"), "--out", str(tmp_path / name), "--steps", "4",
                         "--set", "train_actor=false"]) == 0
    assert sorted(p.name for p in cache.paths()) == files_before  # the ingested cache is untouched
    world = load_checkpoint(tmp_path / "wm.pt")["model"]
    up, down = (load_checkpoint(tmp_path / n / "checkpoint.pt")["model"] for n in tasks)
    for key in world:
        if key.startswith(("rssm", "joint_encoder", "joint_decoder", "cont_head")):
            assert torch.equal(world[key], up[key]) and torch.equal(world[key], down[key]), key
    r_up = np.concatenate([ep["reward"] for ep in EpisodeCache(tmp_path / "up" / "cache").episodes()])
    r_down = np.concatenate([ep["reward"] for ep in EpisodeCache(tmp_path / "down" / "cache").episodes()])
    assert r_up.shape == r_down.shape and not np.allclose(r_up, r_down)

    # a task that does not fit the recorded joints: one line, no checkpoint
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"terms": [{"type": "hold", "joint": "wrist", "setpoint": 0}]}))
    capsys.readouterr()
    assert cli.main(["relabel", "--checkpoint", str(tmp_path / "wm.pt"), "--cache", str(cache.root),
                     "--task", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "bad"), "--steps", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'wrist' is not in the observation" in err
    assert not (tmp_path / "bad" / "checkpoint.pt").exists()


def test_the_shipped_example_task_loads_for_the_example_robot():
    from mbrl_ros.paths import config_dir

    spec = IngestConfig.from_yaml(config_dir() / "ros" / "robot_ingest.example.yaml")
    task = load_task(str(config_dir() / "tasks" / "reach.example.yaml"), spec.obs_spec, spec.action_spec)
    assert task.name == "reach_home"
    at_target = np.array([0.5, -0.3, 0.0, 0.0])
    assert task(at_target, np.zeros(2)) == pytest.approx(0.0)
    assert task(at_target + [0.1, 0, 0.2, 0], np.zeros(2)) < 0
