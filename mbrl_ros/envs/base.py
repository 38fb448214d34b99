"""MujocoRobotEnv: an MJCF robot from sim/ as a gymnasium env, built from small pieces.

The pieces (used directly by the ROS sim node, which runs physics, camera and
joint publishing at different rates) are:

    reset(seed=...)          new episode (gymnasium API; also returns the first obs)
    apply_action(a)          a in [-1, 1]^A -> data.ctrl (robot units); held until changed
    apply_command(u)         robot units (e.g. /mbrl/commands) -> data.ctrl
    physics_step(n=1)        n physics steps of physics_dt each
    joint_vector()           float32[J]: joint positions then joint velocities
    render_camera()          uint8[H, W, 3] from the fixed camera (renders now)
    observe()                {"image", "joints"} ("image" only when render_image)
    task_reward()            reward of the current state and the last applied action
    task_terminated()        True when the task reached a terminal state
    finish_control_step()    end of a control period: (reward, terminated, truncated)
    get_state()/set_state()  full physics state (incl. the target), for replay/tests

`step(a)` is exactly: apply_action(a); physics_step(frame_skip);
(reward, terminated, truncated) = finish_control_step(); obs = observe().
"""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mbrl_ros.envs._mujoco import CameraEnvMixin, CameraRenderer, mujoco, parse_image_size
from mbrl_ros.paths import sim_dir
from mbrl_ros.spec import ActionSpec, ObsSpec


def check_action(action: Any, dim: int, what: str = "action") -> np.ndarray:
    """float64[dim] copy of `action`; ValueError for a wrong shape, NaN or inf."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (dim,):
        if a.size == dim:
            a = a.reshape(dim)
        else:
            raise ValueError(f"{what}: expected shape ({dim},), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or inf: {a.tolist()}")
    return a


class MujocoRobotEnv(CameraEnvMixin, gym.Env):
    """Base class: a MuJoCo model from sim/<xml_file> with one fixed camera.

    Subclasses set `xml_file`, `camera`, and implement `_init_episode(rng, options)`,
    `task_reward()` and optionally `task_terminated()` / `_info()`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    xml_file: str = ""
    camera: str = ""
    default_frame_skip: int = 25  # 25 x 2 ms physics = 50 ms per env step (20 Hz control)
    default_episode_steps: int = 200

    def __init__(
        self,
        image_size: Union[int, tuple[int, int]] = 64,
        frame_skip: Optional[int] = None,
        episode_steps: Optional[int] = None,
        render_image: bool = True,
        render_mode: Optional[str] = None,
    ):
        super().__init__()
        self.model = mujoco.MjModel.from_xml_path(str(sim_dir() / self.xml_file))
        self.data = mujoco.MjData(self.model)
        self.image_size = parse_image_size(image_size)
        self.frame_skip = int(frame_skip if frame_skip is not None else self.default_frame_skip)
        self.episode_steps = int(episode_steps if episode_steps is not None else self.default_episode_steps)
        if self.frame_skip < 1 or self.episode_steps < 1:
            raise ValueError("frame_skip and episode_steps must be >= 1")
        self.render_image = bool(render_image)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode

        m = self.model
        self.joint_names: tuple[str, ...] = tuple(m.joint(i).name for i in range(m.njnt))
        for i in range(m.njnt):
            if int(m.jnt_type[i]) not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
                raise ValueError(f"{self.xml_file}: only hinge/slide joints are supported")
        self._qpos_adr = np.array([m.jnt_qposadr[i] for i in range(m.njnt)], dtype=np.int64)
        self._dof_adr = np.array([m.jnt_dofadr[i] for i in range(m.njnt)], dtype=np.int64)
        self.actuator_names: tuple[str, ...] = tuple(m.actuator(i).name for i in range(m.nu))
        ctrlrange = np.array(m.actuator_ctrlrange, dtype=np.float64)
        self._ctrl_low, self._ctrl_high = ctrlrange[:, 0].copy(), ctrlrange[:, 1].copy()

        self.physics_dt = float(m.opt.timestep)
        self.control_dt = self.physics_dt * self.frame_skip
        self.metadata = dict(self.metadata, render_fps=int(round(1.0 / self.control_dt)))

        h, w = self.image_size
        self.obs_spec = ObsSpec(
            joint_dim=2 * m.njnt,
            image_shape=(h, w, 3) if self.render_image else None,
            joint_names=tuple(f"{n}.pos" for n in self.joint_names) + tuple(f"{n}.vel" for n in self.joint_names),
            angle_joints=tuple(i for i in range(m.njnt)
                               if m.jnt_type[i] == mujoco.mjtJoint.mjJNT_HINGE and not m.jnt_limited[i]),
        )
        self.action_spec = ActionSpec(
            dim=m.nu, low=tuple(self._ctrl_low), high=tuple(self._ctrl_high), names=self.actuator_names
        )
        obs_spaces = {"joints": spaces.Box(-np.inf, np.inf, (2 * m.njnt,), np.float32)}
        if self.render_image:
            obs_spaces = {"image": spaces.Box(0, 255, (h, w, 3), np.uint8), **obs_spaces}
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Box(-1.0, 1.0, (m.nu,), np.float32)

        self._camera = CameraRenderer(m, h, w, camera=self.camera)
        self._last_action = np.zeros(m.nu, dtype=np.float32)
        self._episode_step = 0

    # ------------------------------------------------------------------ pieces
    @property
    def sim_time(self) -> float:
        """Seconds of simulated time since the episode's reset."""
        return float(self.data.time)

    @property
    def episode_step(self) -> int:
        """Env steps taken in this episode (only `step()` counts)."""
        return self._episode_step

    @property
    def last_action(self) -> np.ndarray:
        """The last applied action in [-1, 1] (zeros after reset)."""
        return self._last_action.copy()

    def apply_action(self, action) -> np.ndarray:
        """Set the actuator controls from `action` in [-1, 1] (clipped); returns ctrl in robot units.

        Raises ValueError for a wrong shape, NaN or inf.
        """
        a = np.clip(check_action(action, self.model.nu), -1.0, 1.0)
        ctrl = self._ctrl_low + (a + 1.0) * 0.5 * (self._ctrl_high - self._ctrl_low)
        self.data.ctrl[:] = ctrl
        self._last_action = a.astype(np.float32)
        return ctrl

    def apply_command(self, command) -> np.ndarray:
        """Set the controls from a command in robot units (clipped to ctrlrange); returns the ctrl."""
        c = np.clip(check_action(command, self.model.nu, "command"), self._ctrl_low, self._ctrl_high)
        self.data.ctrl[:] = c
        self._last_action = (2.0 * (c - self._ctrl_low) / (self._ctrl_high - self._ctrl_low) - 1.0).astype(np.float32)
        return c

    def physics_step(self, n: int = 1) -> None:
        """Advance the physics by `n` steps of `physics_dt` with the current controls."""
        mujoco.mj_step(self.model, self.data, nstep=int(n))

    def joint_vector(self) -> np.ndarray:
        """float32[2 * njoints]: joint positions then joint velocities (MuJoCo joint order)."""
        return np.concatenate([self.data.qpos[self._qpos_adr], self.data.qvel[self._dof_adr]]).astype(np.float32)

    def observe(self, image: Optional[bool] = None) -> dict:
        """The observation dict; renders only when `image` (default: render_image) is true."""
        obs = {"joints": self.joint_vector()}
        if self.render_image if image is None else image:
            obs["image"] = self.render_camera()
        return obs

    def task_reward(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def task_terminated(self) -> bool:
        return False

    def finish_control_step(self) -> tuple[float, bool, bool]:
        """Close one control period (after `frame_skip` physics steps): counts it towards
        `episode_steps` and returns (reward, terminated, truncated) exactly as `step()` does."""
        self._episode_step += 1
        reward = float(self.task_reward())
        terminated = bool(self.task_terminated())
        truncated = self._episode_step >= self.episode_steps
        return reward, terminated, truncated

    def info(self) -> dict:
        """The `info` dict `step()` / `reset()` return, for the current state."""
        return self._info()

    def get_state(self) -> np.ndarray:
        """Full integration state (time, qpos, qvel, act, ctrl, applied forces, mocap pose = the
        target) as float64[]; `set_state` restores it exactly."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec), dtype=np.float64)
        mujoco.mj_getState(self.model, self.data, state, spec)
        return state

    def set_state(self, state) -> None:
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        mujoco.mj_setState(self.model, self.data, np.asarray(state, dtype=np.float64), spec)
        mujoco.mj_forward(self.model, self.data)

    # ------------------------------------------------------------- subclasses
    def _init_episode(self, rng: np.random.Generator, options: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    def _info(self) -> dict:
        return {}

    # -------------------------------------------------------------- gymnasium
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self._init_episode(self.np_random, dict(options or {}))
        mujoco.mj_forward(self.model, self.data)
        self._last_action = np.zeros(self.model.nu, dtype=np.float32)
        self._episode_step = 0
        return self.observe(), self._info()

    def step(self, action):
        self.apply_action(action)
        self.physics_step(self.frame_skip)
        reward, terminated, truncated = self.finish_control_step()
        return self.observe(), reward, terminated, truncated, self._info()


def wrap_angle(x):
    """Angle(s) wrapped to [-pi, pi)."""
    return (np.asarray(x) + math.pi) % (2 * math.pi) - math.pi
