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
        return {"sim_time": self.sim_time}
