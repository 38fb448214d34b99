"""CartpoleSwingup: cart-pole swing-up (sim/cartpole.xml), DMC-style.

Joints: slider (cart x, +-1.0 m rail), hinge (pole angle, 0 = upright). The
pole starts hanging down (hinge = pi + N(0, 0.01)); slider, velocities ~ N(0, 0.01).
Reward: `rewards.cartpole_swingup_reward(joints, action)`, in [0, 1].
"""
from __future__ import annotations

import math

import numpy as np

from mbrl_ros.envs.base import MujocoRobotEnv
from mbrl_ros.envs.rewards import cartpole_swingup_reward


class CartpoleSwingupEnv(MujocoRobotEnv):
    xml_file = "cartpole.xml"
    camera = "side"

    def _init_episode(self, rng, options):
        qpos = options.get("qpos")
        if qpos is None:
            qpos = [0.01 * rng.standard_normal(), math.pi + 0.01 * rng.standard_normal()]
        qvel = options.get("qvel")
        if qvel is None:
            qvel = 0.01 * rng.standard_normal(2)
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel

    def task_reward(self) -> float:
        return float(cartpole_swingup_reward(self.joint_vector(), self._last_action))

    def _info(self) -> dict:
        # The hinge angle is not wrapped, so an episode's net turns of the pole can be read from it.
        x, th = (float(v) for v in self.data.qpos[:2])
        return {"sim_time": self.sim_time, "cart_x": x, "pole_angle": th}


UPRIGHT_COS = 0.9  # |pole angle| < ~26 deg counts as up


def episode_figures(infos: list[dict]) -> dict:
    """What a policy did with the pole over one episode, from its step infos: the share of steps
    it was up, the longest run of steps up (balancing vs passing through), its net turns (a
    spinning pole passes upright every turn and earns part of the reward) and the cart's range."""
    angle = np.array([i["pole_angle"] for i in infos])
    up = np.cos(angle) > UPRIGHT_COS
    longest = run = 0
    for flag in up:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    x = np.array([i["cart_x"] for i in infos])
    return {"upright_fraction": round(float(up.mean()), 3), "longest_upright_steps": int(longest),
            "pole_turns": round(float((angle[-1] - angle[0]) / (2 * math.pi)), 1),
            "cart_x_range": [round(float(x.min()), 2), round(float(x.max()), 2)]}


def scripted_action(joints) -> np.ndarray:
    """Hand-written expert from the joints alone: energy-pumping swing-up, then a linear
    balance controller near upright. Returns float32[1] in [-1, 1]. Typical return over a
    200-step episode: ~150 (random actions: ~1-20)."""
    x, th, xd, thd = (float(v) for v in np.asarray(joints).reshape(-1)[:4])
    th = (th + math.pi) % (2 * math.pi) - math.pi
    if math.cos(th) > 0.8:
        a = (40.0 * th + 7.0 * thd + 2.0 * x + 3.0 * xd) / 10.0
    else:
        m, lc, g = 0.1, 0.35, 9.81
        inertia = m * 0.7**2 / 3.0
        energy = 0.5 * inertia * thd**2 + m * g * lc * (math.cos(th) - 1.0)  # 0 = upright at rest
        a = 40.0 * energy * math.copysign(1.0, thd * math.cos(th)) - 0.8 * x - 0.4 * xd
    return np.clip(np.array([a], dtype=np.float32), -1.0, 1.0)
