"""`BeliefFilter`: the robot's latent state (h, z), updated from each observation.

Each control tick: `update(obs, last_action)` validates the observation against
the bundle's ObsSpec (bad input -> ValueError naming the problem, state untouched),
runs the bundle's fused encoder + posterior graph, and keeps the result as
`state` (a batch-1 LatentState the planners start from).

On a model swap, `use_model(new_bundle)` re-runs the recent observations of this
episode through the new model, so the new model starts from its own belief
rather than from another network's latent (which it cannot interpret).

The filter runs over any `FilterModel`: the ONNX `ModelBundle` on the robot,
and `mbrl_ros.world_model.latent_adapter.TorchFilterModel` for the torch model
(tests, export parity, side-by-side benchmarks), so both are filtered by this
one implementation.
"""
from __future__ import annotations

from collections import deque
from typing import Optional, Protocol, runtime_checkable

import numpy as np

from mbrl_ros.runtime.latent import LatentState
from mbrl_ros.spec import ObsSpec


@runtime_checkable
class FilterModel(Protocol):
    """What the belief filter needs from a model (ModelBundle provides it from its ONNX graphs)."""

    obs_spec: ObsSpec
    action_dim: int
    version: str  # names the model in error messages

    def initial_state(self, batch: int = 1) -> LatentState:
        """The start-of-episode state, `batch` times (fresh arrays)."""

    def filter_step(self, state: LatentState, obs: dict, action: np.ndarray) -> LatentState:
        """Posterior update for a batch (obs arrays and action [N, A] with a leading batch axis;
        actions clamped to [-1, 1] inside). No validation: the filter validates first."""


class BeliefFilter:
    """Posterior filtering for one robot with one model (a ModelBundle at run time) at a time.

    history: how many recent (observation, action) pairs to keep for re-filtering
        on a model swap (0 = a swap restarts from the new model's initial state).
    """

    def __init__(self, bundle: FilterModel, history: int = 64):
        if not isinstance(bundle, FilterModel):
            raise TypeError(f"{type(bundle).__name__} is not a filter model (obs_spec, action_dim, version, "
                            f"initial_state, filter_step)")
        if history < 0:
            raise ValueError(f"history must be >= 0, got {history}")
        self._bundle = bundle
        self._history: deque = deque(maxlen=history)
        self.reset()

    @property
    def bundle(self) -> FilterModel:
        """The model filtered with (the ModelBundle the planner plans on, at run time)."""
        return self._bundle

    @property
    def state(self) -> LatentState:
        """The current belief, batch 1. Arrays are not shared with the filter's next update."""
        return self._state

    @property
    def steps(self) -> int:
        """Observations filtered since the last reset."""
        return self._steps

    def reset(self) -> None:
        """Start of an episode: back to the model's initial state, history cleared."""
        self._state = self._bundle.initial_state(1)
        self._history.clear()
        self._steps = 0

    def _prepare(self, obs: dict, action: Optional[np.ndarray]) -> tuple[dict, np.ndarray]:
        spec = self._bundle.obs_spec
        if not isinstance(obs, dict):
            raise ValueError(f"observation must be a dict with 'joints' (and 'image'), got {type(obs).__name__}")
        spec.validate(obs)
        batch = {"joints": np.asarray(obs["joints"], np.float32)[None]}
        if spec.has_image:
            batch["image"] = np.asarray(obs["image"])[None]
        dim = self._bundle.action_dim
        if action is None:  # first observation of an episode: no action led to it
            act = np.zeros((1, dim), np.float32)
        else:
            act = np.asarray(action, np.float32).reshape(-1)
            if act.shape != (dim,):
                raise ValueError(f"action: expected shape ({dim},), got {np.shape(action)}")
            if not np.all(np.isfinite(act)):
                raise ValueError("action: contains NaN or inf")
            act = act[None]
        return batch, act

    def update(self, obs: dict, action: Optional[np.ndarray] = None) -> LatentState:
        """Fold in one observation and the action applied just before it (None at episode start).

        Raises ValueError (state untouched) if the observation or action does not fit the model.
        """
        batch, act = self._prepare(obs, action)
        self._state = self._bundle.filter_step(self._state, batch, act)
        self._history.append((batch, act))
        self._steps += 1
        return self._state

    def use_model(self, bundle: FilterModel) -> None:
        """Switch to `bundle`, re-filtering the kept history through it.

        The new bundle must take the same observations (the model store checks that
        before it publishes a bundle to the control loop).
        """
        if bundle is self._bundle:
            return
        old, new = self._bundle, bundle
        if (new.obs_spec.joint_dim, new.obs_spec.image_shape, new.action_dim) != (
                old.obs_spec.joint_dim, old.obs_spec.image_shape, old.action_dim):
            raise ValueError(f"model {bundle.version} takes different observations/actions than "
                             f"{self._bundle.version}; reset instead")
        state = bundle.initial_state(1)
        for batch, act in self._history:
            state = bundle.filter_step(state, batch, act)
        self._bundle, self._state = bundle, state
