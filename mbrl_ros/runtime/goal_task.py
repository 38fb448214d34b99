"""Goal images: "go where this picture shows", a task given to the controller at run time.

    goal = {"image": uint8[H, W, 3], "joints": float32[J]}   # a recorded frame (or a rendered one)
    store = GoalStore(ModelStore(root, required=True), goal)
    loop = ControlLoop(store, ControlConfig(planner="cem"))  # plans toward the goal

The goal frame is encoded once per model by the bundle's own filter graph (one posterior
step from the initial state, no action), and the reward of an imagined state is minus the
distance of its stochastic latent `z` to the goal's: the representation decides what
"looks like the goal". This needs no reward head, so it also gives a task to a bundle
trained without a reward (reward_check.plan_refusal lets a bundle with a `task` plan).
The same `step`/`imagine` latent-model interface serves CEM, MPPI and MCTS; `imagine`
runs as step-graph calls (the fused imagine graph scores with the reward head only).
numpy + the runtime only.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from mbrl_ros.runtime.latent import LatentState


class GoalLatentModel:
    """A latent model whose reward is -|z - z_goal| of the state each step arrives in; no value."""

    has_value = False
    unfused_reported = True  # every imagine is a step loop by design: nothing to warn about

    def __init__(self, base, goal: LatentState):
        if goal.batch != 1:
            raise ValueError(f"goal state must be batch 1, got {goal.batch}")
        self.base = base
        self.action_dim = base.action_dim
        self.goal_z = np.asarray(goal.z[0], np.float32)

    def reward(self, state: LatentState) -> np.ndarray:
        return -np.linalg.norm(state.z - self.goal_z, axis=-1).astype(np.float32)

    def step(self, state: LatentState, action: np.ndarray) -> tuple[LatentState, np.ndarray, np.ndarray]:
        nxt, _, _ = self.base.step(state, action)
        reward = self.reward(nxt)
        return nxt, reward, np.zeros_like(reward)

    def imagine(self, state: LatentState, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        actions = np.asarray(actions, np.float32)
        if actions.ndim != 3 or actions.shape[2] != self.action_dim:
            raise ValueError(f"actions must be [N, H, {self.action_dim}], got {actions.shape}")
        state = state.broadcast(actions.shape[0])
        rewards = np.zeros(actions.shape[:2], np.float32)
        for t in range(actions.shape[1]):
            state, rewards[:, t], _ = self.step(state, actions[:, t])
        return rewards, np.zeros_like(rewards)


def encode_goal(bundle, goal_obs: dict) -> LatentState:
    """The goal frame's latent state under `bundle` (ValueError naming a frame that does not fit)."""
    try:
        bundle.obs_spec.validate(goal_obs)
    except ValueError as exc:
        raise ValueError(f"goal frame does not fit model {bundle.version}: {exc}") from None
    batch = {"joints": np.asarray(goal_obs["joints"], np.float32)[None]}
    if bundle.obs_spec.has_image:
        batch["image"] = np.asarray(goal_obs["image"])[None]
    return bundle.filter_step(bundle.initial_state(1), batch, np.zeros((1, bundle.action_dim), np.float32))


class GoalBundle:
    """A bundle with a goal-image task: everything from `bundle`, but planners see GoalLatentModel."""

    def __init__(self, bundle, goal_obs: dict):
        self._bundle = bundle
        self.goal_state = encode_goal(bundle, goal_obs)
        self.latent = GoalLatentModel(bundle.latent, self.goal_state)
        self.task = "goal image"

    def __getattr__(self, name):  # manifest, version, obs_spec, filter_step, initial_state ...
        return getattr(self._bundle, name)


class GoalStore:
    """A model store whose current bundle carries the goal task (re-encoded when the model changes)."""

    def __init__(self, store, goal_obs: dict):
        self.store = store
        self.root = store.root
        self.goal_obs = goal_obs
        self._for: Optional[tuple[int, GoalBundle]] = None
        if store.current is not None:
            _ = self.current  # a goal frame that does not fit fails here, not at the first tick

    @property
    def current(self) -> Optional[GoalBundle]:
        bundle = self.store.current
        if bundle is None:
            return None
        if self._for is None or self._for[0] != id(bundle):
            self._for = (id(bundle), GoalBundle(bundle, self.goal_obs))
        return self._for[1]

    def __getattr__(self, name):  # start, stop, diagnostics ...
        return getattr(self.store, name)


def save_goal_frame(path, obs: dict) -> None:
    """Write a goal frame ({"image"?, "joints"}) as .npz, e.g. one step of a recorded episode:
    `save_goal_frame("goal.npz", {k: ep[k][t] for k in ("image", "joints") if k in ep})`."""
    arrays = {"joints": np.asarray(obs["joints"], np.float32)}
    if obs.get("image") is not None:
        arrays["image"] = np.asarray(obs["image"], np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_goal_frame(path) -> dict:
    """A goal frame from `save_goal_frame`'s .npz (ValueError naming the file if it is not one)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            frame = {k: data[k] for k in data.files if k in ("image", "joints")}
    except (OSError, ValueError) as exc:
        raise ValueError(f"goal frame {path}: cannot read it as .npz ({exc})") from None
    if "joints" not in frame:
        raise ValueError(f"goal frame {path}: no 'joints' array (write it with goal_task.save_goal_frame)")
    return frame
