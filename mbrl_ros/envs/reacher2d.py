"""Reacher2D: planar 2-joint arm reaching a visible target (sim/reacher2d.xml).

Joints: shoulder (unlimited hinge), elbow (+-2.8 rad). The target is a red disc
(mocap body) placed uniformly at radius [0.05, 0.22] m and any angle each
episode; it is NOT in the "joints" observation, only in the camera image.

Reward per env step (state after the step, action = the one applied):
    r = -d / 0.24 + 1[d < 0.03] - 0.01 * sum(a**2)
d = fingertip-to-target distance in metres, 0.24 m = the arm's reach, a in [-1, 1]^2.
"""
from __future__ import annotations

import math

import numpy as np

from mbrl_ros.envs.base import MujocoRobotEnv

LINK1 = 0.12
LINK2 = 0.12
REACH = LINK1 + LINK2
SUCCESS_RADIUS = 0.03
TARGET_RADIUS_RANGE = (0.05, 0.22)
TARGET_Z = 0.005
ELBOW_INIT = 2.5


class Reacher2DEnv(MujocoRobotEnv):
    xml_file = "reacher2d.xml"
    camera = "top"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._target_mocap = int(self.model.body("target").mocapid[0])
        self._fingertip_site = self.model.site("fingertip").id

    @property
    def target_pos(self) -> np.ndarray:
        """Target (x, y) in metres: ground truth, not part of the observation."""
        return self.data.mocap_pos[self._target_mocap, :2].copy()

    @property
    def fingertip_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._fingertip_site, :2].copy()

    def set_target(self, xy) -> None:
        """Move the target to (x, y) (e.g. tests, demos). Takes effect immediately."""
        self.data.mocap_pos[self._target_mocap] = [float(xy[0]), float(xy[1]), TARGET_Z]

    def distance(self) -> float:
        return float(np.linalg.norm(self.fingertip_pos - self.target_pos))

    def _init_episode(self, rng, options):
        qpos = options.get("qpos")
        if qpos is None:
            qpos = [rng.uniform(-math.pi, math.pi), rng.uniform(-ELBOW_INIT, ELBOW_INIT)]
        self.data.qpos[:] = qpos
        self.data.qvel[:] = 0.0
        target = options.get("target")
        if target is None:
            radius = rng.uniform(*TARGET_RADIUS_RANGE)
            angle = rng.uniform(-math.pi, math.pi)
            target = (radius * math.cos(angle), radius * math.sin(angle))
        self.set_target(target)

    def task_reward(self) -> float:
        d = self.distance()
        a = self._last_action.astype(np.float64)
        return -d / REACH + float(d < SUCCESS_RADIUS) - 0.01 * float(np.sum(a * a))

    def _info(self) -> dict:
        d = self.distance()
        return {"distance": d, "success": bool(d < SUCCESS_RADIUS), "target": self.target_pos,
                "sim_time": self.sim_time}


def inverse_kinematics(xy, elbow_up: bool = True) -> np.ndarray:
    """Joint angles (shoulder, elbow) putting the fingertip at (x, y) (clamped to the reach)."""
    x, y = float(xy[0]), float(xy[1])
    r2 = min(max(x * x + y * y, 1e-9), (REACH - 1e-6) ** 2)
    c2 = (r2 - LINK1**2 - LINK2**2) / (2 * LINK1 * LINK2)
    q2 = math.acos(max(-1.0, min(1.0, c2))) * (1 if elbow_up else -1)
    q1 = math.atan2(y, x) - math.atan2(LINK2 * math.sin(q2), LINK1 + LINK2 * math.cos(q2))
    return np.array([q1, q2])


def scripted_action(env: Reacher2DEnv, kp: float = 4.0, kd=(0.6, 0.4)) -> np.ndarray:
    """Privileged expert (knows the target): IK to the target + PD on the joints, in [-1, 1]^2.

    For tests, demonstrations and exploration data; a learned policy only sees the image.
    """
    q = env.data.qpos[:2].copy()
    qd = env.data.qvel[:2].copy()
    best = None
    for elbow_up in (True, False):
        err = inverse_kinematics(env.target_pos, elbow_up) - q
        err[0] = (err[0] + math.pi) % (2 * math.pi) - math.pi  # shoulder is unlimited; elbow is not
        if best is None or np.abs(err).sum() < np.abs(best).sum():
            best = err
    return np.clip(kp * best - np.asarray(kd) * qd, -1.0, 1.0).astype(np.float32)
