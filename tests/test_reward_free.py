"""A robot's bags without a reward topic -> a reward-free world model -> a bundle the controller
refuses -> `mbrl-ros relabel` with a task -> a bundle it plans with.

Real rosbag2 files (MCAP and sqlite3) written by `rosbags` in a ros2_control layout the package
never writes itself (tests/robot_bags.py), real torch training (tiny preset), real ONNX bundles
run by ONNX Runtime through the one control path (ControlLoop).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from mbrl_ros import cli
from mbrl_ros.data.episodes import EpisodeCache
from mbrl_ros.data.tasks import load_task
from mbrl_ros.runtime import ModelStore
from mbrl_ros.runtime.control import ControlConfig, ControlLoop, Observation
from mbrl_ros.training.trainer import Trainer
from mbrl_ros.world_model import WorldModelConfig
from mbrl_ros.world_model.checkpoint import load_checkpoint, load_world_model
from tests.robot_bags import ACTION_SPEC, ingest_dict, write_robot_bag

torch.set_num_threads(1)

TASK = {"task": {"name": "reach", "terms": [
    {"type": "reach", "joints": ["shoulder_joint", "elbow_joint"], "target": [0.5, -0.3]},
    {"type": "effort", "weight": 0.01}]}}
WORLD_PARTS = ("image_encoder", "joint_encoder", "rssm", "image_decoder", "joint_decoder", "cont_head")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two recordings of the arm (MCAP, sqlite3), ingested with reward_source none and trained reward-free."""
    root = tmp_path_factory.mktemp("reward_free")
    write_robot_bag(root / "bags" / "arm_mcap", "mcap", seed=0)
    write_robot_bag(root / "bags" / "arm_sqlite", "sqlite3", seed=1)
    (root / "ingest.yaml").write_text(yaml.safe_dump({"ingest": ingest_dict()}))
    (root / "reach.yaml").write_text(yaml.safe_dump(TASK))
    assert cli.main(["train", "--bags", str(root / "bags"), "--config", str(root / "ingest.yaml"),
                     "--out", str(root / "run"), "--preset", "tiny", "--steps", "40", "--seed", "0"]) == 0
    return root


def _tick(store_dir, **config):
    loop = ControlLoop(ModelStore(store_dir, required=True), ControlConfig(**config))
    joints = np.array([0.1, -0.2, 0.0, 0.0], np.float32)
    return loop.tick(1.0, Observation(joints=joints, joints_stamp=1.0))


def test_reward_free_config_trains_no_reward_actor_or_value(run):
    cache = EpisodeCache(run / "run" / "cache")
    assert cache.reward_free and cache.rewards == ["none"]
    episodes = cache.episodes()
    assert len(episodes) == 6 and all(not ep["reward"].any() for ep in episodes)
    with pytest.raises(ValueError, match="train_reward=False"):
        WorldModelConfig.preset("tiny", train_reward=False)  # an actor without a reward: refused
    trainer = Trainer.create(WorldModelConfig.preset("tiny").reward_free(), episodes, obs_spec=cache.obs_spec,
                             action_dim=2, seed=3)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    metrics = trainer.train(5, progress=False)
    after = trainer.model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert {"rssm", "joint_encoder", "joint_decoder"} <= changed
    assert not changed & {"reward_head", "value_head", "slow_value_head", "actor"}
    assert not any(k.startswith(("actor/", "value/")) for k in metrics)


def test_train_on_bags_without_reward_is_reward_free(run):
    payload = load_checkpoint(run / "run" / "checkpoint.pt")
    cfg = payload["config"]
    assert cfg["train_reward"] is False and cfg["train_actor"] is False
    assert payload["obs_spec"]["joint_names"] == ["shoulder_joint.pos", "elbow_joint.pos",
                                                  "shoulder_joint.vel", "elbow_joint.vel"]
    assert payload["action_spec"] == ACTION_SPEC.to_dict()


def test_controller_refuses_a_bundle_without_reward(run, tmp_path):
    assert cli.main(["export", "--checkpoint", str(run / "run" / "checkpoint.pt"), "--store", str(tmp_path)]) == 0
    (manifest,) = tmp_path.glob("v*/manifest.json")
    raw = json.loads(manifest.read_text())
    assert raw["has_reward"] is False and raw["has_value"] is False
    for on_stale in ("zero", "hold"):
        result = _tick(tmp_path, on_stale=on_stale)
        assert result.mode == "no_task"
        assert "without a reward" in result.reason and "mbrl-ros relabel" in result.reason
        np.testing.assert_array_equal(result.command, [0.0, 0.0])  # the safe command, inside the limits


def test_relabel_trains_only_the_heads_and_gives_a_bundle_to_plan_with(run, tmp_path):
    out = tmp_path / "reach"
    assert cli.main(["relabel", "--checkpoint", str(run / "run" / "checkpoint.pt"), "--cache",
                     str(run / "run" / "cache"), "--task", str(run / "reach.yaml"), "--out", str(out),
                     "--steps", "300", "--set", "imagination_horizon=3"]) == 0
    old, new = load_checkpoint(run / "run" / "checkpoint.pt"), load_checkpoint(out / "checkpoint.pt")
    for key, weights in old["model"].items():
        if key.startswith(WORLD_PARTS):  # representation and dynamics: not retrained
            assert torch.equal(weights, new["model"][key]), key
    assert not torch.equal(old["model"]["reward_head.0.weight"], new["model"]["reward_head.0.weight"])
    assert new["config"]["train_reward"] is True and new["step"] == old["step"] + 300

    # the relabelled episodes carry the task's reward of their own joints and actions
    cache = EpisodeCache(out / "cache")
    task = load_task(str(run / "reach.yaml"), cache.obs_spec, cache.action_spec)
    episodes = cache.episodes()
    for ep in episodes:
        np.testing.assert_allclose(ep["reward"][1:], task(ep["joints"][1:], ep["action"][1:]), rtol=1e-5)
        assert ep["reward"][0] == 0
    # and the reward head learned it on the frozen latent (R^2 on the posterior states)
    model, _ = load_world_model(out / "checkpoint.pt")
    pred, true = [], []
    with torch.no_grad():
        for ep in episodes:
            post = model.observe({k: v[None] for k, v in ep.items()}, sample=False)
            pred.append(model.reward(post["h"][0, 1:], post["z"][0, 1:]).numpy())
            true.append(ep["reward"][1:])
    pred, true = np.concatenate(pred), np.concatenate(true)
    r2 = 1 - ((pred - true) ** 2).sum() / ((true - true.mean()) ** 2).sum()
    assert r2 > 0.3, r2

    store = tmp_path / "store"
    assert cli.main(["export", "--checkpoint", str(out / "checkpoint.pt"), "--store", str(store)]) == 0
    (manifest,) = store.glob("v*/manifest.json")
    raw = json.loads(manifest.read_text())
    assert raw["has_reward"] is True
    assert raw["source_data"]["episodes"]["task"]["name"] == "reach"  # the bundle says which task it plans for
    result = _tick(store)
    assert result.mode == "plan", result.reason
    assert np.all(np.abs(result.command) <= 1.5)
