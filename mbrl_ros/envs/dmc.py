"""DeepMind Control Suite tasks (dm_control's own suite) with the mbrl_ros observation/action contract.

    env = mbrl_ros.envs.make("mbrl_ros/dmc-cartpole_swingup-v0")   # action repeat 2, 500 agent steps
    obs = {"image": uint8[64, 64, 3] (the suite's camera 0, rendered by dm_control),
           "joints": float32[J] (the task's own observation dict, flattened; names in obs_spec)}
    action = float32[A] in [-1, 1] = the suite's action (its bounds are [-1, 1] on these tasks)

Nothing of the task is re-implemented: `dm_control.suite.load(domain, task)` builds it, every
frame is the suite's `env.step(action)`, and the reward of one agent step is the sum of the suite's
rewards over its `action_repeat` frames. An episode is the suite's 1000 frames
(= 1000 / action_repeat agent steps). Seeds: `reset(seed=s)` gives the episode that
`suite.load(..., task_kwargs={"random": s}).reset()` gives; `reset()` without a seed continues the
task's random stream (the suite's own behaviour).

Action repeat: 2 on every task, as DreamerV3 (Hafner et al. 2023) and DrQ-v2 use for the
published 100k-frame scores (PlaNet used 8/4/4/2 for cartpole/reacher/cheetah/walker). frames =
agent steps x action_repeat; `frame_skip` is the action repeat, so the agent's `frames` column
counts suite frames (the unit of the published scores).

The pieces the ROS sim node drives (mbrl_ros.envs.sim_loop) are here too, with one suite frame
as the "physics step" (`physics_dt` = the suite's control timestep) and one agent step as the
control period. `joint_names` are the observation's entry names: the sim node publishes one
JointState entry per element (positions only), which is the layout the controller and bag
ingestion read back for a state vector that is not "<joint>.pos ... <joint>.vel".

Images: dm_control's own renderer (physics.render, shadows and all) so the pixels are the ones
the published agents saw; ~35-45 ms per 64x64 frame on this machine's software GL.
"""
from __future__ import annotations

from typing import Optional, Union

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mbrl_ros.envs._mujoco import mujoco, parse_image_size
from mbrl_ros.envs.base import check_action
from mbrl_ros.spec import ActionSpec, ObsSpec

# The four tasks of issue 31 (any other "<domain>_<task>" of the suite works through DMCEnv too).
DMC_TASKS = ("cartpole_swingup", "reacher_easy", "cheetah_run", "walker_walk")
DEFAULT_ACTION_REPEAT = 2  # DreamerV3 / DrQ-v2, every task
SUITE_EPISODE_FRAMES = 1000
# Camera the pixels come from: DreamerV3 uses 0 except for quadruped (2).
CAMERAS = {"quadruped": 2}


def dmc_id(task: str) -> str:
    return f"mbrl_ros/dmc-{task}-v0"


def _split(task: str) -> tuple[str, str]:
    """'cartpole_swingup' -> ('cartpole', 'swingup'); 'ball_in_cup_catch' -> ('ball_in_cup', 'catch')."""
    from dm_control import suite

    for domain, name in suite.ALL_TASKS:
        if f"{domain}_{name}" == task:
            return domain, name
    known = ", ".join(f"{d}_{t}" for d, t in suite.ALL_TASKS)
    raise ValueError(f"unknown DeepMind Control task {task!r}; known: {known}")


def _feature_names(physics, key: str, size: int) -> tuple[str, ...]:
    """Names of the entries of observation `key`, from the model where the suite's meaning is known."""
    m = physics.model
    joints = [m.id2name(i, "joint") for i in range(m.njnt)]
    bodies = [m.id2name(i, "body") for i in range(m.nbody)]
    if key == "velocity" and size == m.nv and m.nv == m.njnt:
        return tuple(f"{j}.vel" for j in joints)
    if key == "position":
        if size == m.njnt:                                   # reacher: qpos
            return tuple(f"{j}.pos" for j in joints)
        if size == m.njnt - 1:                               # cheetah: qpos without rootx
            return tuple(f"{j}.pos" for j in joints[1:])
        if joints[:1] == ["slider"] and size == 1 + 2 * (m.njnt - 1):  # cartpole: cart, (cos, sin) per pole
            return ("slider.pos",) + tuple(f"{j}.{f}" for j in joints[1:] for f in ("cos", "sin"))
    if key == "orientations" and size == 2 * (m.nbody - 1):  # walker: xx, xz of each body's frame
        return tuple(f"{b}.{f}" for b in bodies[1:] for f in ("xx", "xz"))
    if key == "to_target" and size == 2:
        return ("to_target.x", "to_target.y")
    if key == "height" and size == 1:
        return ("torso.height",)
    return (key,) if size == 1 else tuple(f"{key}[{i}]" for i in range(size))


class DMCEnv(gym.Env):
    """One DeepMind Control Suite task; see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task: str,
        action_repeat: int = DEFAULT_ACTION_REPEAT,
        image_size: Union[int, tuple[int, int]] = 64,
        render_image: bool = True,
        proprio: bool = True,
        episode_steps: Optional[int] = None,
        camera: Optional[int] = None,
        render_mode: Optional[str] = None,
    ):
        super().__init__()
        from dm_control import suite  # here, not at import: importing the envs must not need dm_control

        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.action_repeat = int(action_repeat)
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        if episode_steps is None:
            if SUITE_EPISODE_FRAMES % self.action_repeat:
                raise ValueError(f"action_repeat {self.action_repeat} does not divide the suite's "
                                 f"{SUITE_EPISODE_FRAMES}-frame episode; pass episode_steps")
            self.episode_steps = SUITE_EPISODE_FRAMES // self.action_repeat
            task_kwargs = {}  # the suite's own time limit, which ends with ours
        else:
            self.episode_steps = int(episode_steps)
            if self.episode_steps < 1:
                raise ValueError(f"episode_steps must be >= 1, got {episode_steps}")
            task_kwargs = {"time_limit": float("inf")}  # ours ends the episode
        self.task = task
        self.domain, self.task_name = _split(task)
        self.render_mode = render_mode
        self.render_image = bool(render_image)
        self.proprio = bool(proprio)
        if not self.render_image and not self.proprio:
            raise ValueError("render_image=False and proprio=False leave nothing to observe")
        self.image_size = parse_image_size(image_size)
        self.camera = int(CAMERAS.get(self.domain, 0) if camera is None else camera)

        self._env = suite.load(self.domain, self.task_name, task_kwargs={"random": None, **task_kwargs})
        self.physics = self._env.physics
        self.model, self.data = self.physics.model.ptr, self.physics.data.ptr  # mujoco.MjModel / MjData
        m = self.model

        spec = self._env.action_spec()
        self._act_low = np.asarray(spec.minimum, np.float64) * np.ones(spec.shape)
        self._act_high = np.asarray(spec.maximum, np.float64) * np.ones(spec.shape)
        self._unit_bounds = bool(np.all(self._act_low == -1.0) and np.all(self._act_high == 1.0))
        self.actuator_names: tuple[str, ...] = tuple(m.actuator(i).name for i in range(m.nu))
        self.mujoco_joint_names: tuple[str, ...] = tuple(m.joint(i).name for i in range(m.njnt))

        self._keys = tuple(self._env.observation_spec().keys()) if self.proprio else ()
        first = self._env.reset().observation
        names: tuple[str, ...] = ()
        for key in self._keys:
            names += _feature_names(self.physics, key, int(np.size(first[key])))
        # What goes into JointState, one entry per element (see the module docstring).
        self.joint_names = names

        self.frame_dt = float(self._env.control_timestep())
        self.physics_dt = self.frame_dt              # one "physics step" of the sim loop = one suite frame
        self.frame_skip = self.action_repeat         # frames per agent step (agent/common.frame_skip)
        self.control_dt = self.frame_dt * self.action_repeat
        self.metadata = dict(self.metadata, render_fps=int(round(1.0 / self.control_dt)))

        h, w = self.image_size
        self.obs_spec = ObsSpec(joint_dim=len(names), image_shape=(h, w, 3) if self.render_image else None,
                                joint_names=names)
        self.action_spec = ActionSpec(dim=int(spec.shape[0]), low=tuple(self._act_low), high=tuple(self._act_high),
                                      names=self.actuator_names)
        obs_spaces = {"joints": spaces.Box(-np.inf, np.inf, (len(names),), np.float32)}
        if self.render_image:
            obs_spaces = {"image": spaces.Box(0, 255, (h, w, 3), np.uint8), **obs_spaces}
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Box(-1.0, 1.0, (int(spec.shape[0]),), np.float32)

        self._ctrl = np.zeros(self.action_spec.dim)
        self._last_action = np.zeros(self.action_spec.dim, np.float32)
        self._timestep = None
        self._pending_reward = 0.0
        self._suite_over: Optional[float] = None  # the suite's discount at its episode end (0 = terminal)
        self._episode_step = 0
        self._time0 = 0.0

    # ------------------------------------------------------------------ pieces (sim node)
    @property
    def sim_time(self) -> float:
        """Seconds of simulated time since the episode's reset."""
        return float(self.physics.data.time) - self._time0

    @property
    def episode_step(self) -> int:
        return self._episode_step

    @property
    def last_action(self) -> np.ndarray:
        return self._last_action.copy()

    def apply_action(self, action) -> np.ndarray:
        """Hold `action` in [-1, 1] (clipped), scaled to the suite's bounds; returns it in suite units."""
        a = np.clip(check_action(action, self.action_spec.dim), -1.0, 1.0)
        # Bounds of [-1, 1] (every task here): the action goes to the suite bit for bit, not rescaled.
        self._ctrl = a if self._unit_bounds else self._act_low + (a + 1.0) * 0.5 * (self._act_high - self._act_low)
        self._last_action = a.astype(np.float32)
        return self._ctrl.copy()

    def apply_command(self, command) -> np.ndarray:
        """Hold a command in the suite's action units (clipped to its bounds); returns it."""
        c = np.clip(check_action(command, self.action_spec.dim, "command"), self._act_low, self._act_high)
        self._ctrl = c
        a = c if self._unit_bounds else 2.0 * (c - self._act_low) / (self._act_high - self._act_low) - 1.0
        self._last_action = a.astype(np.float32)
        return c.copy()

    def physics_step(self, n: int = 1) -> None:
        """`n` suite frames (`suite env.step`) with the held action; their rewards add up until
        `finish_control_step()`. Frames after the suite ended its episode are not run (the suite
        would start a new one)."""
        for _ in range(int(n)):
            if self._suite_over is not None:
                return
            ts = self._env.step(self._ctrl)
            self._timestep = ts
            self._pending_reward += float(ts.reward or 0.0)
            if ts.last():
                self._suite_over = float(ts.discount)

    def joint_vector(self) -> np.ndarray:
        """float32[J]: the task's observation entries (obs_spec.joint_names), or [] with proprio=False."""
        if not self._keys:
            return np.zeros(0, np.float32)
        obs = self._timestep.observation
        return np.concatenate([np.asarray(obs[k], np.float64).reshape(-1) for k in self._keys]).astype(np.float32)

    def render_camera(self) -> np.ndarray:
        """uint8[H, W, 3] from the suite's camera, rendered by dm_control."""
        h, w = self.image_size
        return np.ascontiguousarray(self.physics.render(height=h, width=w, camera_id=self.camera))

    def observe(self, image: Optional[bool] = None) -> dict:
        obs = {"joints": self.joint_vector()}
        if self.render_image if image is None else image:
            obs["image"] = self.render_camera()
        return obs

    def finish_control_step(self) -> tuple[float, bool, bool]:
        """Close one agent step: (summed suite reward of its frames, terminated, truncated)."""
        self._episode_step += 1
        reward, self._pending_reward = self._pending_reward, 0.0
        terminated = self._suite_over == 0.0
        truncated = not terminated and (self._episode_step >= self.episode_steps or self._suite_over is not None)
        return reward, terminated, truncated

    def info(self) -> dict:
        return self._info()

    def _info(self) -> dict:
        return {"sim_time": self.sim_time, "frames": self._episode_step * self.action_repeat}

    def get_state(self) -> np.ndarray:
        """Full integration state as float64[] (restored exactly by set_state)."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec), dtype=np.float64)
        mujoco.mj_getState(self.model, self.data, state, spec)
        return state

    def set_state(self, state) -> None:
        mujoco.mj_setState(self.model, self.data, np.asarray(state, np.float64), mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)

    # -------------------------------------------------------------- gymnasium
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        if seed is not None:
            # The suite draws every episode's initial state from task.random; a fresh stream per
            # seed is exactly what suite.load(..., task_kwargs={"random": seed}) starts with.
            self._env.task._random = np.random.RandomState(int(seed))
        self._timestep = self._env.reset()
        self._time0 = float(self.physics.data.time)
        self._pending_reward, self._suite_over, self._episode_step = 0.0, None, 0
        self._ctrl = np.zeros(self.action_spec.dim)
        self._last_action = np.zeros(self.action_spec.dim, np.float32)
        return self.observe(), self._info()

    def step(self, action):
        if self._timestep is None:
            raise RuntimeError("call reset() before step()")
        self.apply_action(action)
        self.physics_step(self.action_repeat)
        reward, terminated, truncated = self.finish_control_step()
        return self.observe(), reward, terminated, truncated, self._info()

    def render(self):
        return self.render_camera() if self.render_mode == "rgb_array" else None

    def close(self):
        super().close()
        self._env.close()
