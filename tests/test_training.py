"""Trainer and the train/evaluate commands: resume, CLI runs, TensorBoard logs, training from rosbag2.

Episodes come from the real camera reacher (MuJoCo); the bag test writes real
rosbag2 files (MCAP and sqlite3) with `rosbags` itself.
"""
from __future__ import annotations

import json

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
import yaml

import mbrl_ros.envs as envs
from mbrl_ros import cli
from mbrl_ros.data import ros_messages as rm
from mbrl_ros.data.episodes import EpisodeCache, random_policy, rollout_episode
from mbrl_ros.training.trainer import Trainer
from tests.bag_helpers import write_bag_with_rosbags
from mbrl_ros.world_model import WorldModelConfig
from mbrl_ros.world_model.checkpoint import load_checkpoint, load_world_model

torch.set_num_threads(1)
IMAGE = 16


@pytest.fixture(scope="module")
def episodes():
    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=IMAGE, episode_steps=25)
    eps = [rollout_episode(env, random_policy(2), seed=i) for i in range(4)]
    env.close()
    return eps


def tiny(**overrides) -> WorldModelConfig:
    return WorldModelConfig.preset("tiny", **overrides)


def test_resume_continues_like_an_uninterrupted_run(tmp_path, episodes):
    ckpt = tmp_path / "ck.pt"
    straight = Trainer.create(tiny(), episodes[:3], seed=4)
    straight.train(3, progress=False, checkpoint_path=ckpt)
    assert load_checkpoint(ckpt)["step"] == 3
    expected = [straight.train_step() for _ in range(3)]

    resumed = Trainer.resume(ckpt, episodes[:3])
    assert resumed.step == 3
    got = [resumed.train_step() for _ in range(3)]
    assert resumed.step == straight.step == 6
    for a, b in zip(expected, got):
        assert a == b  # bit-identical: same batches, same RNG draws, same optimiser moments
    assert resumed.optimizers["world"].state_dict()["state"][0]["step"] == 6

    # a different seed really does change the run (so the equality above means something)
    other = Trainer.create(tiny(), episodes[:3], seed=5)
    assert other.train_step()["loss/world_total"] != Trainer.create(tiny(), episodes[:3], seed=4).train_step()[
        "loss/world_total"]


def test_tensorboard_logs_scalars_and_frames(tmp_path, episodes):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = Trainer.create(tiny(), episodes, seed=0, log_dir=tmp_path / "tb", log_every=2, image_every=2)
    trainer.train(4, progress=False)
    trainer.close()
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in ("loss/image", "loss/joints", "loss/reward", "loss/cont", "loss/kl", "kl/prior_posterior",
                "kl/free_bits_active", "grad_norm/world", "actor/loss", "value/loss", "grad_norm/actor"):
        assert tag in scalars, tag
    frames = events.Images("open_loop/real_recon_imagined")
    assert [f.step for f in frames] == [2, 4]
    assert frames[0].height == 4 * 3 * IMAGE  # 4 sequences x (real, reconstructed, imagined)


def test_trainer_rejects_bad_episodes(episodes):
    trainer = Trainer.create(tiny(), episodes[:1], seed=0)
    bad = dict(episodes[1], joints=np.zeros((26, 3), np.float32))
    with pytest.raises(ValueError, match="joints have shape"):
        trainer.add_episodes([bad])
    no_image = {k: v for k, v in episodes[1].items() if k != "image"}
    with pytest.raises(ValueError, match="images are no image"):
        trainer.add_episodes([no_image])
    empty = Trainer(trainer.model)
    with pytest.raises(ValueError, match="no training episode"):
        empty.train(1, progress=False)
    empty.add_episodes(episodes[:1])  # the online node's path: episodes arrive later
    assert empty.train(1, progress=False)["loss/world_total"] > 0


def test_train_and_evaluate_commands(tmp_path, episodes, capsys):
    train_cache, held_cache = EpisodeCache(tmp_path / "train"), EpisodeCache(tmp_path / "held")
    unnamed = EpisodeCache(tmp_path / "unnamed")
    unnamed.add(episodes[:3], "train-key")
    run = tmp_path / "run"
    base = ["train", "--cache", str(unnamed.root), "--out", str(run), "--preset", "tiny", "--seed", "2",
            "--threads", "1"]
    # a cache that does not say which joint is which cannot make a model for a robot
    assert cli.main(base + ["--steps", "3"]) == 2 and not (run / "checkpoint.pt").exists()
    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=IMAGE)
    train_cache.add(episodes[:3], "train-key", obs_spec=env.unwrapped.obs_spec)
    env.close()
    held_cache.add(episodes[3:], "held-key")
    base[2] = str(train_cache.root)
    assert cli.main(base + ["--steps", "3", "--set", "imagination_horizon=3"]) == 0
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3
    assert json.loads((run / "config.json").read_text())["imagination_horizon"] == 3
    assert cli.main(base + ["--steps", "5"]) == 1  # would overwrite the run without --resume
    assert cli.main(base + ["--steps", "5", "--resume"]) == 0
    model, payload = load_world_model(run / "checkpoint.pt")
    assert payload["step"] == 5 and model.config.imagination_horizon == 3

    out = tmp_path / "eval"
    assert cli.main(["evaluate", "--checkpoint", str(run / "checkpoint.pt"), "--cache", str(held_cache.root),
                     "--out", str(out), "--horizons", "1", "5", "15"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["horizons"]) == {"0", "1", "5", "15"}
    one = metrics["horizons"]["1"]
    assert one["count"] == 25 and 0 <= one["image_mse"] < 1 and one["joint_rmse"] > 0 and "reward_r2" in one
    assert metrics["horizons"]["15"]["count"] == len(episodes[3]["reward"]) - 15
    each = np.array(one["joint_rmse_each"])   # per joint entry; their mean square is the aggregate's
    assert each.shape == (4,) and np.isclose(np.sqrt((each ** 2).mean()), one["joint_rmse"])
    strip = imageio.imread(out / "open_loop.png")
    assert strip.shape[0] == 2 * IMAGE and strip.shape[1] % IMAGE == 0 and strip.shape[2] == 3
    gif = imageio.mimread(out / "open_loop.gif")
    assert len(gif) == 26 and gif[0].shape[:2] == (IMAGE, 2 * IMAGE)

    narrow = EpisodeCache(tmp_path / "narrow")  # one joint entry fewer than the model reads
    narrow.add([{**ep, "joints": ep["joints"][:, :-1]} for ep in episodes[3:]], "narrow-key")
    assert cli.main(["evaluate", "--checkpoint", str(run / "checkpoint.pt"), "--cache", str(narrow.root),
                     "--out", str(tmp_path / "eval_narrow")]) == 1
    assert "do not fit" in capsys.readouterr().err and not (tmp_path / "eval_narrow" / "metrics.json").exists()

    (tmp_path / "bad.pt").write_bytes(b"\x00" * 100)
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "bad.pt"), "--cache", str(held_cache.root),
                     "--out", str(out)]) == 1


def write_reacher_bag(path, episodes, action_spec, joint_names, storage):
    """Record episodes like the sim does: bgr8 camera, joints in a shuffled order plus an extra
    joint, commands in robot units 10 ms after each observation, rewards, episode/terminal markers."""
    ms, dt = 1_000_000, 50_000_000
    messages, start = [], 5_000 * ms
    order = list(reversed(joint_names)) + ["gripper"]
    for e, ep in enumerate(episodes):
        messages.append(("/mbrl/episode", rm.make_int64(e), start - 5 * ms))
        steps = len(ep["reward"])
        half = len(joint_names)
        for k in range(steps):
            t = start + k * dt
            messages.append(("/camera/image_raw", rm.make_image(ep["image"][k], t, encoding="bgr8"), t + 3 * ms))
            pos = dict(zip(joint_names, ep["joints"][k, :half]), gripper=0.5)
            vel = dict(zip(joint_names, ep["joints"][k, half:]), gripper=0.0)
            messages.append(("/joint_states", rm.make_joint_state(order, [float(pos[n]) for n in order],
                                                                  [float(vel[n]) for n in order], t), t + ms))
            if k >= 1:
                messages.append(("/mbrl/reward", rm.make_float64(float(ep["reward"][k])), t + 2 * ms))
            if k + 1 < steps:
                command = action_spec.to_robot(ep["action"][k + 1])
                messages.append(("/mbrl/commands", rm.make_commands(command), t + 10 * ms))
        messages.append(("/mbrl/terminal", rm.make_bool(False), start + (steps - 1) * dt + 2 * ms))
        start += (steps + 3) * dt
    write_bag_with_rosbags(path, messages, storage)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_train_from_bags(tmp_path, episodes, storage):
    from mbrl_ros.data.bags import IngestConfig

    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=IMAGE)
    config = IngestConfig.for_env(env, active_grace_s=0.0)
    env.close()
    write_reacher_bag(tmp_path / "bags" / "rec", episodes[:2], config.action_spec, config.joint_names, storage)
    (tmp_path / "ingest.yaml").write_text(yaml.safe_dump({"ingest": config.to_dict()}))

    run = tmp_path / "run"
    assert cli.main(["train", "--bags", str(tmp_path / "bags"), "--config", str(tmp_path / "ingest.yaml"),
                     "--out", str(run), "--preset", "tiny", "--steps", "2"]) == 0
    cached = EpisodeCache(run / "cache").episodes()
    assert len(cached) == 2
    for got, sent in zip(cached, episodes[:2]):
        np.testing.assert_array_equal(got["image"], sent["image"])  # bgr8 came back as RGB
        np.testing.assert_allclose(got["joints"], sent["joints"], atol=1e-5)  # shuffled order undone
        np.testing.assert_allclose(got["action"], sent["action"], atol=1e-5)
        np.testing.assert_allclose(got["reward"], sent["reward"], atol=1e-5)
    payload = load_checkpoint(run / "checkpoint.pt")
    assert payload["step"] == 2
    assert payload["obs_spec"]["joint_names"] == list(config.obs_spec.joint_names)
    assert payload["action_spec"] == config.action_spec.to_dict()


def test_resume_may_change_training_fields_not_architecture(tmp_path, episodes):
    ckpt = tmp_path / "ck.pt"
    Trainer.create(tiny(), episodes[:2], seed=0).train(1, progress=False, checkpoint_path=ckpt)
    resumed = Trainer.resume(ckpt, episodes[:2], config_overrides={"reward_scale": 5.0, "lr_model": 1e-4})
    assert resumed.config.reward_scale == 5.0 and resumed.step == 1
    assert resumed.optimizers["world"].param_groups[0]["lr"] == 1e-4
    resumed.save(ckpt)
    assert load_checkpoint(ckpt)["config"]["reward_scale"] == 5.0
    with pytest.raises(ValueError, match="architecture fields \\['deter'\\]"):
        Trainer.resume(ckpt, episodes[:2], config_overrides={"deter": 64})
    with pytest.raises(ValueError, match="lr_model must be a positive number"):
        Trainer.resume(ckpt, episodes[:2], config_overrides={"lr_model": 0.0})
    # joint_loss_norm may be switched on and off again: its variance buffer comes and goes
    on = Trainer.resume(ckpt, episodes[:2], config_overrides={"joint_loss_norm": True})
    assert float(on.model.joint_feature_var.abs().sum()) == 0.0   # unseen until the next batch
    on.train(1, progress=False, checkpoint_path=ckpt)
    assert float(on.model.joint_feature_var.min()) > 0.0
    off = Trainer.resume(ckpt, episodes[:2], config_overrides={"joint_loss_norm": False})
    assert not hasattr(off.model, "joint_feature_var") and off.step == 2


def test_frame_reward_head_trains_the_encoder_and_resumes(tmp_path, episodes):
    """frame_reward_scale > 0: an extra loss on i.i.d. single frames reaches the image encoder."""
    from mbrl_ros.data.episodes import SequenceSampler

    sampler = SequenceSampler(episodes, 2, 8, seed=0)
    frames = sampler.sample_frames(50)
    assert frames["image"].shape == (50, IMAGE, IMAGE, 3) and frames["joints"].shape == (50, 4)
    assert frames["reward"].shape == (50,)
    # step 0 (placeholder reward 0.0) is never drawn; real rewards here are all < 0
    assert np.all(frames["reward"] != 0.0)

    ckpt = tmp_path / "ck.pt"
    trainer = Trainer.create(tiny(frame_reward_scale=100.0, frame_reward_batch=16), episodes[:3], seed=0)
    model = trainer.model
    loss = model.frame_reward_loss(trainer.sampler.sample_frames(8))
    loss.backward()
    assert all(float(p.grad.abs().sum()) > 0 for p in model.image_encoder.parameters())
    model.zero_grad()
    metrics = trainer.train_step()
    assert metrics["loss/frame_reward"] > 0
    trainer.save(ckpt)
    resumed = Trainer.resume(ckpt, episodes[:3], config_overrides={"frame_reward_scale": 10.0})
    assert resumed.config.frame_reward_scale == 10.0 and resumed.model.frame_reward_head is not None
    with pytest.raises(ValueError, match="frame reward head off"):
        Trainer.resume(ckpt, episodes[:3], config_overrides={"frame_reward_scale": 0.0})
    with pytest.raises(ValueError, match="needs frame_reward_scale > 0"):
        Trainer.create(tiny(), episodes[:3]).model.frame_reward_loss(frames)


def test_value_from_real_learns_the_recorded_return():
    """value_from="real": the value head fits TD(lambda) returns of the recorded rewards and
    terminations (no actor), so it knows how many steps an episode has left."""
    length, gamma = 12, 0.9
    rng = np.random.default_rng(0)
    eps = []
    for _ in range(6):
        t = np.arange(length, dtype=np.float32)
        eps.append({"joints": np.stack([t / length, rng.normal(0, 0.01, length).astype(np.float32)], 1),
                    "action": rng.uniform(-1, 1, (length, 1)).astype(np.float32),
                    "reward": np.r_[0.0, np.ones(length - 1)].astype(np.float32),
                    "is_first": t == 0, "is_terminal": t == length - 1})
    config = tiny(train_actor=False, value_from="real", discount=gamma, lambda_=0.95, slow_value_rate=0.1,
                  lr_value=3e-3, seq_len=8)
    trainer = Trainer.create(config, eps, seed=0)
    assert trainer.model.has_value and config.has_value
    trainer.train(600, progress=False)
    model = trainer.model.eval()
    with torch.no_grad():
        post = model.observe({k: v[None] for k, v in eps[0].items()}, sample=False)
        got = model.value_from_features(model.features(post["h"], post["z"]))[0].numpy()
    steps_left = length - 1 - np.arange(length)
    expected = (1 - gamma ** steps_left) / (1 - gamma)    # 6.9 at the start .. 0 at the end
    assert np.abs(got[:-1] - expected[:-1]).mean() < 0.6, (got, expected)
    assert got[1] > got[-3] + 3.0  # early states are worth clearly more than late ones

    with pytest.raises(ValueError, match="value_from"):
        tiny(value_from="monte_carlo")
