"""Pure reward functions: reward from recorded observations (joints) and actions.

`reward_fn(env_id)` in `mbrl_ros.envs` returns one of these, or None where the
reward cannot be computed from the joints (Reacher2D: the target is only in the
image, so its reward must come from the recorded /mbrl/reward topic).

All functions broadcast over leading dimensions: joints[..., J], action[..., A].
Each says which joint vector it reads (`fn.joint_names`, the obs spec entries in the
order it indexes them): mbrl_ros.data.tasks hands it exactly those entries, matched by
name, and refuses a recording that lacks them, where positional slicing of another
robot's vector would silently read the wrong (or no) entries.
"""
from __future__ import annotations

import numpy as np

_GAUSS_SCALE_01 = float(np.sqrt(-2.0 * np.log(0.1)))  # gaussian tolerance, value 0.1 at the margin


def tolerance_gaussian(x, margin: float):
    """dm_control `tolerance(x, bounds=(0, 0), margin, sigmoid="gaussian", value_at_margin=0.1)`."""
    d = np.asarray(x, dtype=np.float64) / margin
    return np.exp(-0.5 * (d * _GAUSS_SCALE_01) ** 2)


def tolerance_quadratic(x, margin: float):
    """dm_control `tolerance(x, bounds=(0, 0), margin, sigmoid="quadratic", value_at_margin=0)`."""
    d = np.asarray(x, dtype=np.float64) / margin
    return np.where(np.abs(d) < 1.0, 1.0 - d**2, 0.0)


# Cartpole joints: [slider.pos, hinge.pos, slider.vel, hinge.vel]; hinge = 0 is upright.
CARTPOLE_CENTER_MARGIN = 1.0  # m (the rail is +-1.0 m)
CARTPOLE_VELOCITY_MARGIN = 5.0  # rad/s


def cartpole_swingup_reward(joints, action):
    """DMC-style smooth swing-up reward in [0, 1]:

    upright * centered * small_control * small_velocity with
      upright        = (cos(hinge) + 1) / 2
      centered       = (1 + tol_gauss(slider, margin=1.0)) / 2
      small_control  = (4 + tol_quad(action, margin=1)) / 5       (action in [-1, 1])
      small_velocity = (1 + tol_gauss(hinge.vel, margin=5)) / 2
    """
    j = np.asarray(joints, dtype=np.float64)
    a = np.asarray(action, dtype=np.float64)
    upright = (np.cos(j[..., 1]) + 1.0) / 2.0
    centered = (1.0 + tolerance_gaussian(j[..., 0], CARTPOLE_CENTER_MARGIN)) / 2.0
    small_control = (4.0 + tolerance_quadratic(a, 1.0).mean(axis=-1)) / 5.0
    small_velocity = (1.0 + tolerance_gaussian(j[..., 3], CARTPOLE_VELOCITY_MARGIN)) / 2.0
    return upright * centered * small_control * small_velocity


cartpole_swingup_reward.joint_names = ("slider.pos", "hinge.pos", "slider.vel", "hinge.vel")


# Reacher-v5's state vector (envs/gym_adapter.py TASKS) ends with fingertip - target (x, y).
REACHER_V5_FINGERTIP_TO_TARGET = slice(8, 10)


def reacher_v5_reward(joints, action):
    """gymnasium Reacher-v5 (reward_dist_weight 1, reward_control_weight 1): -|fingertip - target| - |a|^2.

    gymnasium (>= 1.0) computes it after the physics step, from the same state the observation
    reports, so it is a function of the recorded joints and the action that led there.
    """
    j = np.asarray(joints, dtype=np.float64)
    a = np.asarray(action, dtype=np.float64)
    return -np.linalg.norm(j[..., REACHER_V5_FINGERTIP_TO_TARGET], axis=-1) - np.square(a).sum(axis=-1)


reacher_v5_reward.joint_names = ("joint0.cos", "joint1.cos", "joint0.sin", "joint1.sin", "target_x.pos",
                                 "target_y.pos", "joint0.vel", "joint1.vel", "fingertip_minus_target.x",
                                 "fingertip_minus_target.y")


def inverted_pendulum_reward(joints, action):
    """gymnasium InvertedPendulum-v5: 1 while |pole angle| <= 0.2 rad (and finite), else 0."""
    j = np.asarray(joints, dtype=np.float64)
    ok = np.all(np.isfinite(j), axis=-1) & (np.abs(j[..., 1]) <= 0.2)
    return ok.astype(np.float64)


inverted_pendulum_reward.joint_names = ("slider.pos", "hinge.pos", "slider.vel", "hinge.vel")
