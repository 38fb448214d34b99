"""Record a simulated robot straight into rosbag2, with the live system's topic layout.

`BagRecordingEnv` wraps an env of `mbrl_ros.envs` and, as it is reset and stepped,
writes exactly what the ROS graph would record (docs/data.md): on reset the episode
index and the first observation, on each step the command (robot units, logged at
the time of the observation it answers), then the new image and joint state (stamped
with sim time), the step's reward and, at the end, the terminal flag. The clock keeps
running across episodes (a reset takes one control period) so stamps never go back.

Ingesting such a bag with `IngestConfig.for_env(env)` gives back the episodes that
`rollout_episode` returns for the same env, policy and seed.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import ros_messages as rm


class BagRecordingEnv:
    """A gymnasium-style env (reset/step/action_space/unwrapped) that also writes a bag.

    `writer`: a BagWriter or SegmentedBagWriter; `config`: the IngestConfig giving topic
    names and the joint layout (default: IngestConfig.for_env(env)).
    """

    def __init__(self, env, writer, config=None, start_ns: int = 1_000_000_000):
        from .bags import IngestConfig

        self.env = env
        self.writer = writer
        self.config = config or IngestConfig.for_env(env)
        u = env.unwrapped
        self.action_spec = u.action_spec
        self.dt_ns = int(round(float(u.control_dt) * 1e9))
        self.now_ns = int(start_ns)
        self.episode_index = -1

    @property
    def action_space(self):
        return self.env.action_space

    @property
    def unwrapped(self):
        return self.env.unwrapped

    def _write_obs(self, obs: dict) -> None:
        c, t = self.config, self.now_ns
        if c.image_size is not None and "image" in obs:
            self.writer.write(c.image_topic, rm.make_image(obs["image"], t), t)
        joints = np.asarray(obs["joints"], np.float64)
        names = c.joint_names
        if c.joint_fields == "position_velocity":
            pos, vel = joints[:len(names)], joints[len(names):]
        else:
            pos, vel = joints, np.zeros(0)
        self.writer.write(c.joint_topic, rm.make_joint_state(names, pos, vel, t), t)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        if self.episode_index >= 0:
            self.now_ns += self.dt_ns  # the reset takes one control period
        self.episode_index += 1
        obs, info = self.env.reset(seed=seed, options=options)
        self.writer.write(self.config.episode_topic, rm.make_int64(self.episode_index), self.now_ns)
        self._write_obs(obs)
        return obs, info

    def step(self, action):
        command = self.action_spec.to_robot(action)
        self.writer.write(self.config.command_topic, rm.make_commands(command), self.now_ns)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.now_ns += self.dt_ns
        self._write_obs(obs)
        self.writer.write(self.config.reward_topic, rm.make_float64(reward), self.now_ns)
        if terminated or truncated:
            self.writer.write(self.config.terminal_topic, rm.make_bool(terminated), self.now_ns)
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self.env.close()


def scripted_policy(env):
    """The env's scripted expert as `policy(obs, rng)`, or None if it has none."""
    import importlib
    import inspect

    u = env.unwrapped
    module = importlib.import_module(type(u).__module__)
    fn = getattr(module, "scripted_action", None)
    if fn is None:
        return None
    first = next(iter(inspect.signature(fn).parameters))
    if first == "env":
        return lambda obs, rng: np.asarray(fn(u), np.float32)
    return lambda obs, rng: np.asarray(fn(obs["joints"]), np.float32)
