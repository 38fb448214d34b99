"""MuJoCo robots as gymnasium envs with the mbrl_ros observation/action contract.

    import mbrl_ros.envs as envs
    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=64)
    obs, info = env.reset(seed=0)          # {"image": uint8[64,64,3], "joints": float32[4]}
    u = env.unwrapped                      # obs_spec, action_spec, joint_names, control_dt, ...

Importing this package registers the ids in ENV_IDS with gymnasium and sets
MUJOCO_GL=egl when it is unset (before mujoco is imported). See docs/envs.md.
"""
from __future__ import annotations

from mbrl_ros.envs import _mujoco  # noqa: F401  (sets MUJOCO_GL before anything imports mujoco)

from typing import Callable, Optional  # noqa: E402

import gymnasium as gym  # noqa: E402

from mbrl_ros.envs.base import MujocoRobotEnv  # noqa: E402
from mbrl_ros.envs.cartpole import CartpoleSwingupEnv  # noqa: E402
from mbrl_ros.envs.dmc import DMC_TASKS, DMCEnv, dmc_id  # noqa: E402
from mbrl_ros.envs.gym_adapter import GymMujocoAdapter  # noqa: E402
from mbrl_ros.envs.reacher2d import Reacher2DEnv  # noqa: E402
from mbrl_ros.envs.rewards import (  # noqa: E402
    cartpole_swingup_reward, inverted_pendulum_reward, reacher_v5_reward)

ROBOT_IDS = ("mbrl_ros/Reacher2D-v0", "mbrl_ros/CartpoleSwingup-v0")
ADAPTER_IDS = ("mbrl_ros/InvertedPendulum-v5", "mbrl_ros/Reacher-v5", "mbrl_ros/HalfCheetah-v5")
ENV_IDS = ROBOT_IDS + ADAPTER_IDS
# DeepMind Control Suite tasks through dm_control's own suite (envs/dmc.py; dm_control is imported
# only when one is made). Registered and made like the others, and they run on the sim node like
# the robots; kept out of ENV_IDS because their `joint_names` name the observation's entries (one
# JointState entry each), not MuJoCo joints, and each needs dm_control (tests/test_dmc.py).
DMC_IDS = tuple(dmc_id(t) for t in DMC_TASKS)

_ENTRY_POINTS = {
    "mbrl_ros/Reacher2D-v0": ("mbrl_ros.envs.reacher2d:Reacher2DEnv", {}),
    "mbrl_ros/CartpoleSwingup-v0": ("mbrl_ros.envs.cartpole:CartpoleSwingupEnv", {}),
    "mbrl_ros/InvertedPendulum-v5": ("mbrl_ros.envs.gym_adapter:GymMujocoAdapter", {"gym_id": "InvertedPendulum-v5"}),
    "mbrl_ros/Reacher-v5": ("mbrl_ros.envs.gym_adapter:GymMujocoAdapter", {"gym_id": "Reacher-v5"}),
    "mbrl_ros/HalfCheetah-v5": ("mbrl_ros.envs.gym_adapter:GymMujocoAdapter", {"gym_id": "HalfCheetah-v5"}),
    **{dmc_id(t): ("mbrl_ros.envs.dmc:DMCEnv", {"task": t}) for t in DMC_TASKS},
}

_REWARD_FNS: dict[str, Optional[Callable]] = {
    "mbrl_ros/Reacher2D-v0": None,  # target only in the image: use the recorded /mbrl/reward
    "mbrl_ros/CartpoleSwingup-v0": cartpole_swingup_reward,
    "mbrl_ros/InvertedPendulum-v5": inverted_pendulum_reward,
    "mbrl_ros/Reacher-v5": reacher_v5_reward,
    "mbrl_ros/HalfCheetah-v5": None,  # needs the x position before and after the step
    **{dmc_id(t): None for t in DMC_TASKS},  # the suite's reward: use the recorded /mbrl/reward
}


def _register() -> None:
    for env_id, (entry_point, kwargs) in _ENTRY_POINTS.items():
        if env_id not in gym.registry:
            # No TimeLimit from gymnasium: our robots truncate after `episode_steps`
            # themselves, the adapters keep the original task's TimeLimit inside.
            gym.register(id=env_id, entry_point=entry_point, kwargs=kwargs, max_episode_steps=None,
                         disable_env_checker=True)


_register()


def make(env_id: str, **kwargs) -> gym.Env:
    """gymnasium.make for the ids in ENV_IDS (kwargs: image_size, render_image, episode_steps,
    frame_skip (robots only), action_repeat/proprio (DMC only), render_mode). The metadata API is on `env.unwrapped`."""
    if env_id not in _ENTRY_POINTS:
        raise KeyError(f"unknown env id {env_id!r}; known: {', '.join(ENV_IDS + DMC_IDS)}")
    return gym.make(env_id, **kwargs)


def reward_fn(env_id: str) -> Optional[Callable]:
    """`f(joints, action) -> reward` computed from recorded observations, or None when the
    reward cannot be computed from them (use the recorded reward instead)."""
    if env_id not in _REWARD_FNS:
        raise KeyError(f"unknown env id {env_id!r}; known: {', '.join(ENV_IDS + DMC_IDS)}")
    return _REWARD_FNS[env_id]


__all__ = [
    "ENV_IDS", "ROBOT_IDS", "ADAPTER_IDS", "DMC_IDS", "DMC_TASKS", "DMCEnv", "make", "reward_fn", "MujocoRobotEnv", "Reacher2DEnv",
    "CartpoleSwingupEnv", "GymMujocoAdapter", "cartpole_swingup_reward",
]
