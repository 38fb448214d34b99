"""Symmetry augmentation (data/augment.py) against the real camera reacher.

The claim the augmentation rests on: a quarter turn about the base, or a mirror,
of a reacher state is another reacher state with the same reward and the
correspondingly transformed image and next state. Checked on MuJoCo renders and
physics steps, for all 8 elements of the group, so a wrong sign or turn direction fails.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mbrl_ros.envs as envs
from mbrl_ros.data.augment import PlanarSymmetry
from mbrl_ros.data.episodes import random_policy, rollout_episode
from mbrl_ros.training.trainer import Trainer
from mbrl_ros.world_model import WorldModelConfig

torch.set_num_threads(1)
GROUP = [(k, m) for k in range(4) for m in (False, True)]


def world_transform(xy, turns: int, mirror: bool) -> np.ndarray:
    """The same symmetry as a map of the plane: mirror x -> -x, then rotate counter-clockwise."""
    x, y = (-xy[0], xy[1]) if mirror else (xy[0], xy[1])
    c, s = math.cos(turns * math.pi / 2), math.sin(turns * math.pi / 2)
    return np.array([c * x - s * y, s * x + c * y])


def put(env, joints: np.ndarray, target) -> dict:
    """Set the reacher to joint positions + velocities and a target; return its observation."""
    env.reset(seed=0, options={"qpos": joints[:2].tolist(), "target": tuple(target)})
    env.unwrapped.data.qvel[:] = joints[2:]
    return env.unwrapped.observe(image=True)


def test_every_symmetry_maps_renders_rewards_and_physics_exactly(reacher_env):
    env = reacher_env  # conftest: the 64x64 camera reacher
    sym = PlanarSymmetry("dihedral", base_joint=0, joint_dim=4, action_dim=2, image_shape=(64, 64, 3))
    rng = np.random.default_rng(3)
    joints = np.array([0.7, 1.3, 0.4, -0.9], np.float32)
    target = np.array([0.1, 0.13])
    action = np.array([0.6, -0.3], np.float32)
    obs = put(env, joints, target)
    next_obs, reward, *_ = env.step(action)
    assert np.abs(obs["image"].astype(int) - np.rot90(obs["image"]).astype(int)).max() > 100  # not symmetric itself

    for turns, mirror in GROUP:
        t, m = np.array([turns]), np.array([mirror])
        moved = sym.transform_joints(joints[None], t, m)[0]
        moved_obs = put(env, moved, world_transform(target, turns, mirror))
        # the transformed image is the render of the transformed state, pixel for pixel
        np.testing.assert_array_equal(sym.transform_image(obs["image"], turns, mirror), moved_obs["image"])
        np.testing.assert_allclose(moved_obs["joints"], moved, atol=1e-6)
        # one physics step from the transformed state with the transformed action lands on the
        # transformed next state, with the same reward
        moved_action = -action if mirror else action
        moved_next, moved_reward, *_ = env.step(moved_action)
        assert moved_reward == pytest.approx(reward, abs=1e-6)  # float32 joint angles
        expected = sym.transform_joints(next_obs["joints"][None], t, m)[0]
        diff = np.angle(np.exp(1j * (moved_next["joints"][:2] - expected[:2])))  # positions modulo 2 pi
        assert np.abs(diff).max() < 1e-5 and np.allclose(moved_next["joints"][2:], expected[2:], atol=1e-4)
        # (after a step the float32 angles differ in the last bit: a pixel may round one level apart)
        pixel_gap = np.abs(sym.transform_image(next_obs["image"], turns, mirror).astype(int) - moved_next["image"])
        assert pixel_gap.max() <= 2

    # a batch: one draw per window, the same over its time steps; rewards untouched
    batch = {"image": np.stack([np.stack([obs["image"], next_obs["image"]])] * 16),
             "joints": np.stack([np.stack([joints, next_obs["joints"]])] * 16),
             "action": np.stack([np.stack([np.zeros(2, np.float32), action])] * 16),
             "reward": np.zeros((16, 2), np.float32)}
    out = sym(batch, rng)
    assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in batch.items()}
    flipped = out["action"][:, 1, 0] < 0
    assert 0 < flipped.sum() < 16  # both mirrored and unmirrored windows drawn
    np.testing.assert_array_equal(out["joints"][flipped, :, 2:], -batch["joints"][flipped, :, 2:])
    assert batch["joints"][0, 0, 0] == joints[0]  # the input batch is not modified


def test_rot90_keeps_actions_and_velocities():
    sym = PlanarSymmetry("rot90", base_joint=0, joint_dim=4, action_dim=2, image_shape=None)
    joints = np.tile(np.array([0.5, 1.0, 2.0, -3.0], np.float32), (64, 3, 1))
    action = np.ones((64, 3, 2), np.float32)
    out = sym({"joints": joints, "action": action}, np.random.default_rng(0))
    np.testing.assert_array_equal(out["action"], action)
    np.testing.assert_array_equal(out["joints"][..., 1:], joints[..., 1:])
    turns = np.round((out["joints"][:, 0, 0] - 0.5) / (math.pi / 2))
    assert set(turns.tolist()) == {0, 1, 2, 3}
    np.testing.assert_allclose(out["joints"][:, :, 0] - 0.5, np.repeat(turns[:, None], 3, 1) * math.pi / 2,
                               atol=1e-6)


def test_bad_symmetry_settings_are_refused():
    with pytest.raises(ValueError, match="symmetry_augment must be"):
        WorldModelConfig.preset("tiny", symmetry_augment="mirror")
    with pytest.raises(ValueError, match="list of \\[i, j\\] index pairs"):
        WorldModelConfig.preset("tiny", symmetry_vector_pairs=[4, 5])
    # lists from YAML/JSON become tuples, so a config equals itself after a round trip
    cfg = WorldModelConfig.preset("tiny", symmetry_augment="rotation", symmetry_vector_pairs=[[4, 5]])
    assert cfg.symmetry_vector_pairs == ((4, 5),) and WorldModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="square image"):
        PlanarSymmetry("rot90", 0, 4, 2, (48, 64, 3))
    with pytest.raises(ValueError, match="even length"):
        PlanarSymmetry("rot90", 0, 5, 2, None)
    with pytest.raises(ValueError, match="not one of the 2 joints"):
        PlanarSymmetry("rot90", 2, 4, 2, None)
    with pytest.raises(ValueError, match="one action per joint"):
        PlanarSymmetry("dihedral", 0, 4, 3, None)


def test_trainer_trains_on_augmented_windows_and_resumes_them(tmp_path):
    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=16, episode_steps=25)
    episodes = [rollout_episode(env, random_policy(2), seed=i) for i in range(3)]
    env.close()
    cfg = WorldModelConfig.preset("tiny", symmetry_augment="dihedral", image_shift_pad=2, frame_reward_scale=10.0)
    trainer = Trainer.create(cfg, episodes, seed=1)
    trainer.train(2, progress=False, checkpoint_path=tmp_path / "ck.pt")
    expected = trainer.train_step()
    resumed = Trainer.resume(tmp_path / "ck.pt", episodes)
    assert resumed.augment is not None and resumed.train_step() == expected
    # switched off on resume (a training field), the same step trains on other windows
    plain = Trainer.resume(tmp_path / "ck.pt", episodes, config_overrides={"symmetry_augment": "none",
                                                                          "image_shift_pad": 0})
    assert plain.augment is None and plain.train_step()["loss/world_total"] != expected["loss/world_total"]


def test_state_rotation_maps_reacher_v5_states_and_steps_exactly():
    """gymnasium's Reacher-v5 turned by any angle about its base: same reward, turned next state."""
    from mbrl_ros.data.augment import StateRotation

    env = envs.make("mbrl_ros/Reacher-v5", render_image=False)
    gym_env = env.unwrapped.env.unwrapped
    rot = StateRotation(angle_pairs=[(0, 2)], vector_pairs=[(4, 5), (8, 9)], joint_dim=10, image_shape=None)
    obs, _ = env.reset(seed=0)
    qpos, qvel = gym_env.data.qpos.copy(), gym_env.data.qvel.copy()
    qvel[:2] = [1.5, -2.0]
    action = np.array([0.4, -0.7], np.float32)

    def put_and_step(qpos, qvel):
        gym_env.set_state(qpos, qvel)
        before = gym_env._get_obs().astype(np.float32)
        after, reward, *_ = env.step(action)
        return before, after["joints"], reward

    before, after, reward = put_and_step(qpos, qvel)
    for theta in (0.3, 2.0, -2.9):
        c, s = math.cos(theta), math.sin(theta)
        moved_qpos = qpos.copy()
        moved_qpos[0] += theta
        moved_qpos[2:4] = [c * qpos[2] - s * qpos[3], s * qpos[2] + c * qpos[3]]
        moved_before, moved_after, moved_reward = put_and_step(moved_qpos, qvel)
        assert moved_reward == pytest.approx(reward, abs=1e-6)
        for real, moved in ((before, moved_before), (after, moved_after)):
            np.testing.assert_allclose(moved, _turn(rot, real, theta), atol=2e-5)
    np.testing.assert_allclose(before[6:8], qvel[:2], atol=1e-6)
    # random draws: one angle per window, shared by its steps; lengths and the other entries kept
    windows = np.tile(np.stack([before, after]), (32, 1, 1))
    turned = rot({"joints": windows, "reward": np.zeros((32, 2))}, np.random.default_rng(1))["joints"]
    np.testing.assert_allclose(np.hypot(turned[..., 8], turned[..., 9]), np.hypot(windows[..., 8], windows[..., 9]),
                               atol=1e-6)
    np.testing.assert_array_equal(turned[..., [1, 3, 6, 7]], windows[..., [1, 3, 6, 7]])
    angles = np.arctan2(turned[..., 2], turned[..., 0]) - np.arctan2(windows[..., 2], windows[..., 0])
    assert np.allclose(np.angle(np.exp(1j * (angles[:, 0] - angles[:, 1]))), 0, atol=1e-5)
    assert np.ptp(np.angle(np.exp(1j * angles[:, 0]))) > 3  # spread over the circle
    env.close()
    with pytest.raises(ValueError, match="an image"):
        StateRotation([(0, 2)], [], 10, (64, 64, 3))
    with pytest.raises(ValueError, match="distinct indices"):
        StateRotation([(0, 2)], [(2, 3)], 10, None)


class _FixedAngle:
    """Stands in for the generator so the transform turns by a chosen angle."""

    def __init__(self, theta: float):
        self.theta = theta

    def uniform(self, low, high, size):
        return np.full(size, self.theta)


def _turn(rot, joints: np.ndarray, theta: float) -> np.ndarray:
    return rot({"joints": joints[None]}, _FixedAngle(theta))["joints"][0]


def test_random_shift_moves_each_window_by_one_offset_as_a_padded_crop():
    """image_shift_pad (DrQ's shift): every frame of a window moves by the window's own offset, exactly
    as padding by the border and cropping back; the joints and the rest of the batch are untouched."""
    from mbrl_ros.data.augment import Compose, RandomShift, from_config
    from mbrl_ros.spec import ObsSpec

    rng = np.random.default_rng(0)
    pad, image = 3, rng.integers(0, 256, (6, 4, 12, 12, 3), dtype=np.uint8)  # 6 windows of 4 frames
    batch = {"image": image, "joints": rng.normal(size=(6, 4, 2)).astype(np.float32)}
    out = RandomShift(pad, (12, 12, 3))(batch, np.random.default_rng(5))
    assert out["joints"] is batch["joints"] and out["image"].dtype == np.uint8 and out["image"].shape == image.shape
    padded = np.pad(image, [(0, 0), (0, 0), (pad, pad), (pad, pad), (0, 0)], mode="edge")
    offsets = []
    for i in range(6):  # find the one crop of window i that gives its shifted frames
        found = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                 if np.array_equal(out["image"][i], padded[i, :, dy:dy + 12, dx:dx + 12])]
        assert len(found) == 1
        offsets.append(found[0])
    assert len(set(offsets)) > 1 and offsets != [(pad, pad)] * 6  # windows move apart, not all unshifted
    frames = RandomShift(pad, (12, 12, 3))({"image": image[:, 0]}, np.random.default_rng(5))["image"]
    np.testing.assert_array_equal(frames, out["image"][:, 0])  # an i.i.d. frame batch: one offset per frame

    spec = ObsSpec(joint_dim=4, image_shape=(12, 12, 3))
    assert from_config(WorldModelConfig.preset("tiny"), spec, 2) is None
    assert isinstance(from_config(WorldModelConfig.preset("tiny", image_shift_pad=4), spec, 2), RandomShift)
    both = from_config(WorldModelConfig.preset("tiny", image_shift_pad=4, symmetry_augment="rot90"), spec, 2)
    assert isinstance(both, Compose) and [type(a).__name__ for a in both.augments] == ["PlanarSymmetry", "RandomShift"]
    with pytest.raises(ValueError, match="observes no image"):
        from_config(WorldModelConfig.preset("tiny", image_shift_pad=4), ObsSpec(joint_dim=4, image_shape=None), 2)
    with pytest.raises(ValueError, match="image_shift_pad must be 0"):
        WorldModelConfig.preset("tiny", image_shift_pad=-1)
