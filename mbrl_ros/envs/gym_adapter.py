"""GymMujocoAdapter: gymnasium's own MuJoCo tasks with the mbrl_ros observation/action contract.

    obs    = {"image": uint8[H, W, 3] (camera), "joints": float32[task state vector]}
    action = float32[A] in [-1, 1], rescaled linearly to the task's action space
    extras = obs_spec, action_spec, joint_names, control_dt, physics_dt, frame_skip

Termination and truncation are the original task's (its TimeLimit included;
`episode_steps` overrides max_episode_steps). Images are rendered by one reused
mujoco.Renderer with multisampling and shadows off (cheap on software GL), so they
look slightly plainer than gymnasium's own `render()`.
"""
from __future__ import annotations

from typing import Optional, Union

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mbrl_ros.envs._mujoco import CameraEnvMixin, CameraRenderer, mujoco, parse_image_size
from mbrl_ros.envs.base import check_action
from mbrl_ros.spec import ActionSpec, ObsSpec


def _free_camera(lookat, distance, azimuth, elevation) -> "mujoco.MjvCamera":
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.lookat[:] = lookat
    cam.distance, cam.azimuth, cam.elevation = distance, azimuth, elevation
    return cam


# Per task: a camera (name, or a free camera factory) and names for the state vector entries.
TASKS = {
    "InvertedPendulum-v5": {
        "camera": lambda: _free_camera((0.0, 0.0, 0.0), 3.0, 90.0, -5.0),
        "state_names": ("slider.pos", "hinge.pos", "slider.vel", "hinge.vel"),
    },
    "Reacher-v5": {
        "camera": lambda: _free_camera((0.0, 0.0, 0.0), 0.75, 90.0, -90.0),
        "state_names": ("joint0.cos", "joint1.cos", "joint0.sin", "joint1.sin",
                        "target_x.pos", "target_y.pos", "joint0.vel", "joint1.vel",
                        "fingertip_minus_target.x", "fingertip_minus_target.y"),
    },
    "HalfCheetah-v5": {
        "camera": lambda: "track",
        "state_names": tuple(f"{j}.pos" for j in ("rootz", "rooty", "bthigh", "bshin", "bfoot",
                                                      "fthigh", "fshin", "ffoot"))
        + tuple(f"{j}.vel" for j in ("rootx", "rootz", "rooty", "bthigh", "bshin", "bfoot",
                                     "fthigh", "fshin", "ffoot")),
    },
}


class GymMujocoAdapter(CameraEnvMixin, gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        gym_id: str,
        image_size: Union[int, tuple[int, int]] = 64,
        render_image: bool = True,
        episode_steps: Optional[int] = None,
        render_mode: Optional[str] = None,
        camera=None,
        **gym_kwargs,
    ):
        super().__init__()
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.gym_id = gym_id
        self.render_mode = render_mode
        self.render_image = bool(render_image)
        self.image_size = parse_image_size(image_size)
        kwargs = dict(gym_kwargs)
        if episode_steps is not None:
            kwargs["max_episode_steps"] = int(episode_steps)
        self.env = gym.make(gym_id, disable_env_checker=True, **kwargs)
        u = self.env.unwrapped
        self.model, self.data = u.model, u.data
        m = self.model

        inner_obs = self.env.observation_space
        inner_act = self.env.action_space
        if not isinstance(inner_obs, spaces.Box) or not isinstance(inner_act, spaces.Box):
            raise TypeError(f"{gym_id}: needs Box observation and action spaces")
        state_dim = int(np.prod(inner_obs.shape))
        self._act_low = np.asarray(inner_act.low, dtype=np.float64)
        self._act_high = np.asarray(inner_act.high, dtype=np.float64)
        self._act_dtype = inner_act.dtype

        task = TASKS.get(gym_id, {})
        names = tuple(task.get("state_names", ()))
        if len(names) != state_dim:
            names = tuple(f"state[{i}]" for i in range(state_dim))
        self.joint_names: tuple[str, ...] = tuple(m.joint(i).name for i in range(m.njnt))
        self.actuator_names: tuple[str, ...] = tuple(
            m.actuator(i).name or m.joint(int(m.actuator_trnid[i, 0])).name or f"actuator{i}" for i in range(m.nu))
        self.frame_skip = int(u.frame_skip)
        self.physics_dt = float(m.opt.timestep)
        self.control_dt = float(u.dt)
        self.metadata = dict(self.metadata, render_fps=int(round(1.0 / self.control_dt)))

        h, w = self.image_size
        self.obs_spec = ObsSpec(joint_dim=state_dim, image_shape=(h, w, 3) if self.render_image else None,
                                joint_names=names)
        self.action_spec = ActionSpec(dim=int(inner_act.shape[0]), low=tuple(self._act_low),
                                      high=tuple(self._act_high), names=self.actuator_names)
        obs_spaces = {"joints": spaces.Box(-np.inf, np.inf, (state_dim,), np.float32)}
        if self.render_image:
            obs_spaces = {"image": spaces.Box(0, 255, (h, w, 3), np.uint8), **obs_spaces}
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Box(-1.0, 1.0, inner_act.shape, np.float32)

        if m.nlight == 0:  # e.g. InvertedPendulum: only the headlight, which is dim by default
            m.vis.headlight.ambient[:] = 0.4
            m.vis.headlight.diffuse[:] = 0.6
        if camera is None:
            camera = task.get("camera", lambda: -1)()
        self._camera = CameraRenderer(m, h, w, camera=camera)
        self._last_action = np.zeros(self.action_spec.dim, dtype=np.float32)

    @property
    def sim_time(self) -> float:
        return float(self.data.time)

    @property
    def last_action(self) -> np.ndarray:
        return self._last_action.copy()

    def to_task_action(self, action) -> np.ndarray:
        """[-1, 1] (clipped) -> the task's action space; ValueError for NaN/inf/wrong shape."""
        a = np.clip(check_action(action, self.action_spec.dim), -1.0, 1.0)
        self._last_action = a.astype(np.float32)
        return (self._act_low + (a + 1.0) * 0.5 * (self._act_high - self._act_low)).astype(self._act_dtype)

    def _obs(self, state) -> dict:
        obs = {"joints": np.asarray(state, dtype=np.float32).reshape(-1)}
        if self.render_image:
            obs["image"] = self.render_camera()
        return obs

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        state, info = self.env.reset(seed=seed, options=options)
        self._last_action = np.zeros(self.action_spec.dim, dtype=np.float32)
        return self._obs(state), info

    def step(self, action):
        state, reward, terminated, truncated, info = self.env.step(self.to_task_action(action))
        return self._obs(state), float(reward), bool(terminated), bool(truncated), info

    def close(self):
        super().close()  # the camera
        self.env.close()
