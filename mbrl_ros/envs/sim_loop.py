"""The simulated robot's schedule, without ROS: physics, camera, joint states, clock,
reward and episode boundaries at their own rates on one monotonic sim clock.

The sim node is a thin adapter: it feeds commands in and publishes what each
`advance()` reports. Tested directly in tests/test_sim_loop.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from mbrl_ros.runtime.safety import CommandGate


@dataclass
class SimRates:
    joint_state_hz: float = 100.0
    camera_hz: float = 30.0
    clock_hz: float = 100.0

    def __post_init__(self):
        for name in ("joint_state_hz", "camera_hz", "clock_hz"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass
class SimEvents:
    """What became due during one `advance()`; the node publishes exactly these."""

    time: float  # monotonic sim time (s) of the state now
    joints: Optional[np.ndarray] = None  # positions then velocities
    image: Optional[np.ndarray] = None  # uint8[H,W,3], rendered at `time`
    clock: bool = False
    reward: Optional[float] = None  # reward of the control interval that just ended
    episode_end: Optional[bool] = None  # True = terminated, False = time limit / reset
    episode_start: Optional[int] = None  # index of the episode that starts now
    command: Optional[np.ndarray] = field(default=None)  # robot-unit command applied


class SimLoop:
    """Steps a MujocoRobotEnv (mbrl_ros.envs.base) one schedule event at a time.

    Sim time never goes backwards: at each reset the episode's duration plus one
    control period is added to an offset, so /clock stays monotonic across episodes
    and a reset takes time, as on a robot. Without that period the last state of an
    episode and the first of the next would share one stamp, and the ingester (which
    cuts at `episode start - dt/2`) would give the old episode's end to the new one.
    """

    def __init__(self, env, rates: SimRates, gate: CommandGate, seed: Optional[int] = None,
                 render_camera: bool = True):
        u = env.unwrapped
        for piece in ("apply_command", "physics_step", "joint_vector", "render_camera", "finish_control_step"):
            if not hasattr(u, piece):
                raise ValueError(f"{type(u).__name__} has no '{piece}': the sim node runs the package's "
                                 "MuJoCo robots (mbrl_ros.envs.ROBOT_IDS), not the gymnasium adapters")
        self.env, self.rates, self.gate = u, rates, gate
        self.render_camera = render_camera
        self.physics_dt = float(u.physics_dt)
        self.control_dt = float(u.control_dt)
        self._seed = seed
        self.episode = -1
        self._offset = 0.0
        self._reset_requested = False
        self._pending_start: Optional[int] = None
        self._start_episode()
        self.steps_per_control = max(1, int(round(self.control_dt / self.physics_dt)))

    # ------------------------------------------------------------------
    @property
    def time(self) -> float:
        return self._offset + self.env.sim_time

    def request_reset(self) -> None:
        """Ask for a new episode at the next advance() (thread-safe enough: a flag)."""
        self._reset_requested = True

    def _start_episode(self) -> None:
        if self.episode >= 0:
            self._offset += self.env.sim_time + self.control_dt  # the reset takes one control period
        self.episode += 1
        seed = None if self._seed is None else self._seed + self.episode
        self.env.reset(seed=seed)
        self.gate.reset()
        self._physics_steps = 0
        self._control_steps = 0
        t = self.time
        self._next_joint = t
        self._next_camera = t
        self._next_clock = t
        self._pending_start = self.episode

    def _due_steps(self, next_time: float) -> int:
        return max(1, math.ceil((next_time - self.time) / self.physics_dt - 1e-9))

    def advance(self) -> SimEvents:
        """Run physics up to the next scheduled event and report everything due then."""
        if self._reset_requested:
            self._reset_requested = False
            events = SimEvents(time=self.time, episode_end=False)
            self._start_episode()
            events.episode_start, self._pending_start = self._pending_start, None
            events.time = self.time
            events.joints, events.clock = self.env.joint_vector(), True
            if self.render_camera:
                events.image = self.env.render_camera()
            return events

        events = SimEvents(time=self.time)
        if self._pending_start is not None:  # the first state of an episode is published as is
            events.episode_start, self._pending_start = self._pending_start, None
        else:
            next_control_step = (self._control_steps + 1) * self.steps_per_control
            n = min(self._due_steps(self._next_joint), self._due_steps(self._next_camera),
                    self._due_steps(self._next_clock), next_control_step - self._physics_steps)
            n = max(1, n)
            command = self.gate.current(self.time)
            self.env.apply_command(command)
            events.command = command
            self.env.physics_step(n)
            self._physics_steps += n
            events.time = self.time
            if self._physics_steps >= next_control_step:
                # The env's own bookkeeping, so node episodes equal env.step() episodes.
                self._control_steps += 1
                reward, terminated, truncated = self.env.finish_control_step()
                events.reward = float(reward)
                if terminated or truncated:
                    events.episode_end = bool(terminated)

        t = events.time + 1e-9
        if t >= self._next_joint:
            events.joints = self.env.joint_vector()
            self._next_joint += 1.0 / self.rates.joint_state_hz
        if t >= self._next_clock:
            events.clock = True
            self._next_clock += 1.0 / self.rates.clock_hz
        if self.render_camera and t >= self._next_camera:
            events.image = self.env.render_camera()
            self._next_camera += 1.0 / self.rates.camera_hz
        if events.episode_end is not None:
            self._start_episode()  # the new episode's first state goes out on the next advance()
        return events
