"""Pieces every latent planner shares: result type, config parsing, action
bounds, deadlines, scoring of imagined returns and the plan/advance/reset cycle.

Conventions (all planners):
- Actions are in the model's normalised space ([-1, 1] by default), float32.
- `deadline` is an ABSOLUTE `time.perf_counter()` value in seconds. A config's
  `time_budget_s` is a RELATIVE budget used when no deadline is passed. The
  planners check the clock between iterations / batched rounds, so one round
  that started before the deadline is allowed to finish (overshoot <= one round).
- Returns are `sum_t discount^t r_t + discount^H * value(s_H)`; non-finite
  returns (a model producing NaN/inf) count as -inf so that candidate never wins.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from mbrl_ros.runtime.latent import LatentModel, LatentState

BoundSpec = Union[float, Sequence[float]]


@dataclass
class PlanResult:
    """What `plan()` returns.

    action: float32[A], inside the planner's action bounds.
    info: dict with at least
        planner (str), iterations (int: CEM/MPPI iterations or MCTS rounds done),
        transitions (int: latent transitions the model evaluated),
        predicted_return (float: the planner's estimate for the returned plan;
            nan when it has none), deadline_hit (bool: stopped early because of
            the deadline), fallback (None, or a string saying why the safe action
            was returned), plan_time_s (float).
    """

    action: np.ndarray
    info: dict = field(default_factory=dict)


def config_from(cls, config: Any):
    """Build config dataclass `cls` from None (defaults), an instance, or a dict.

    Unknown keys raise ValueError naming them, so a typo in a YAML file does not
    silently fall back to a default.
    """
    if config is None:
        return cls()
    if isinstance(config, cls):
        return config
    if not isinstance(config, Mapping):
        raise TypeError(f"{cls.__name__}: config must be a dict, a {cls.__name__} or None, got {type(config).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {unknown}; known keys: {sorted(known)}")
    return cls(**dict(config))


def check_positive_int(owner: str, name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_range(owner: str, name: str, value, low: float, high: float, low_open=False, high_open=False) -> float:
    value = float(value)
    ok = np.isfinite(value)
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (value < high if high_open else value <= high)
    if not ok:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        raise ValueError(f"{owner}: {name} must be in {lb}{low}, {high}{hb}, got {value!r}")
    return value


class ActionBounds:
    """Per-dimension box [low, high] for actions; scalars broadcast to all dims."""

    def __init__(self, low: BoundSpec, high: BoundSpec, action_dim: int):
        self.low = self._expand("action_low", low, action_dim)
        self.high = self._expand("action_high", high, action_dim)
        if np.any(self.low >= self.high):
            bad = np.flatnonzero(self.low >= self.high).tolist()
            raise ValueError(f"action bounds need low < high in every dimension; fails in dims {bad}: "
                             f"low={self.low.tolist()} high={self.high.tolist()}")
        self.half_range = (0.5 * (self.high - self.low)).astype(np.float32)
        # The "do nothing" action: zero where the box allows it, else the nearest edge.
        self.safe = np.clip(np.zeros_like(self.low), self.low, self.high).astype(np.float32)

    @staticmethod
    def _expand(name: str, value: BoundSpec, action_dim: int) -> np.ndarray:
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(action_dim, float(arr))
        if arr.shape != (action_dim,):
            raise ValueError(f"{name} must be a number or {action_dim} numbers (one per action dim), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {arr.tolist()}")
        return arr.astype(np.float32)

    def clip(self, actions: np.ndarray) -> np.ndarray:
        return np.clip(actions, self.low, self.high)


def resolve_deadline(deadline: Optional[float], time_budget_s: Optional[float], start: float) -> Optional[float]:
    """The absolute perf_counter() deadline: the explicit one, else start + budget, else None."""
    if deadline is not None:
        deadline = float(deadline)
        if np.isnan(deadline):
            raise ValueError("deadline is NaN; pass an absolute time.perf_counter() value or None")
        return deadline
    if time_budget_s is not None:
        return start + float(time_budget_s)
    return None


def past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.perf_counter() >= deadline


def discount_weights(discount: float, horizon: int) -> np.ndarray:
    """[discount^0 .. discount^(H-1)] as float64, for the reward sum."""
    return discount ** np.arange(horizon, dtype=np.float64)


def sequence_returns(rewards: np.ndarray, values: np.ndarray, discount: float, bootstrap: bool) -> np.ndarray:
    """Discounted return of each imagined sequence, float64 [N]; non-finite -> -inf.

    rewards/values are [N, H] as `LatentModel.imagine` returns them; the value
    after the last step bootstraps the tail when `bootstrap` is set.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    horizon = rewards.shape[1]
    returns = rewards @ discount_weights(discount, horizon)
    if bootstrap:
        returns = returns + discount ** horizon * np.asarray(values, dtype=np.float64)[:, -1]
    returns[~np.isfinite(returns)] = -np.inf
    return returns


class Planner(ABC):
    """Base of CEM / MPPI / MCTS: the plan -> (advance) -> plan cycle.

    Warm start: after `plan()` the planner expects the caller to apply an action
    and call `advance(applied_action)` (the action the robot really got, which a
    safety layer may have changed). If the caller does not, the next `plan()`
    assumes the returned action was applied and advances by itself, so the warm
    start is shifted exactly once per control step either way. Set
    `auto_advance = False` to make repeated plan() calls without advance()
    refine the plan for the same step instead (MCTS: the tree keeps growing).
    """

    name = "planner"

    def __init__(self, model: LatentModel, config, seed: Optional[int] = None):
        for attr in ("action_dim", "has_value", "step", "imagine"):
            if not hasattr(model, attr):
                raise TypeError(f"{type(model).__name__} is not a LatentModel: missing `{attr}`")
        self.model = model
        self.config = config
        self.action_dim = check_positive_int(type(self).__name__, "model.action_dim", model.action_dim)
        self.bounds = ActionBounds(config.action_low, config.action_high, self.action_dim)
        self.rng = np.random.default_rng(seed)
        self._last_action: Optional[np.ndarray] = None
        self._awaiting_advance = False
        self.auto_advance = True

    # -- public API ---------------------------------------------------------

    def plan(self, state: LatentState, deadline: Optional[float] = None) -> PlanResult:
        """Best first action from `state` (batch 1).

        deadline: absolute `time.perf_counter()` time to stop searching (None:
        use config.time_budget_s, or run the full configured search).
        Raises ValueError for a state that is not batch 1 or holds NaN/inf.
        """
        start = time.perf_counter()
        self._check_state(state)
        if self._awaiting_advance and self.auto_advance:
            self.advance(self._last_action)
        result = self._plan(state, resolve_deadline(deadline, self.config.time_budget_s, start))
        result.action = np.asarray(result.action, dtype=np.float32)
        result.info["planner"] = self.name
        result.info["plan_time_s"] = time.perf_counter() - start
        self._last_action = result.action.copy()
        self._awaiting_advance = True
        return result

    @property
    def warm_action(self) -> Optional[np.ndarray]:
        """The action the last plan() returned, which the warm start was built around (a copy);
        None before the first plan() of an episode. A controller whose plan() fails falls back on it."""
        return None if self._last_action is None else self._last_action.copy()

    def advance(self, applied_action: Optional[np.ndarray] = None) -> None:
        """One control step passed with `applied_action` (normalised units, [A]).

        Shifts the warm start by one step (MCTS: re-roots the tree on the child
        whose action matches `applied_action`). None means "the action the last
        plan() returned". Calling it is optional but must happen at most once per step.
        """
        self._awaiting_advance = False
        if applied_action is None:
            applied_action = self._last_action
        if applied_action is not None:
            applied_action = np.asarray(applied_action, dtype=np.float32).reshape(-1)
            if applied_action.shape != (self.action_dim,):
                raise ValueError(f"applied_action must have {self.action_dim} entries, got shape {applied_action.shape}")
            if not np.all(np.isfinite(applied_action)):
                raise ValueError(f"applied_action contains NaN/inf: {applied_action.tolist()}")
        self._advance(applied_action)

    def reset(self) -> None:
        """Start of an episode: forget the warm start / tree."""
        self._last_action = None
        self._awaiting_advance = False
        self._reset()

    # -- for subclasses -------------------------------------------------------

    @abstractmethod
    def _plan(self, state: LatentState, deadline: Optional[float]) -> PlanResult: ...

    @abstractmethod
    def _advance(self, applied_action: Optional[np.ndarray]) -> None: ...

    @abstractmethod
    def _reset(self) -> None: ...

    def _safe_result(self, reason: str, **info) -> PlanResult:
        """The fallback when the model gives nothing usable (e.g. all returns NaN)."""
        base = dict(iterations=0, transitions=0, predicted_return=float("nan"), deadline_hit=False)
        base.update(info)
        base["fallback"] = reason
        return PlanResult(self.bounds.safe.copy(), base)

    def _check_state(self, state: LatentState) -> None:
        if not isinstance(state, LatentState):
            raise TypeError(f"state must be a LatentState, got {type(state).__name__}")
        if state.batch != 1:
            raise ValueError(f"plan() wants a batch-1 LatentState, got batch {state.batch}")
        for name in ("h", "z"):
            if not np.all(np.isfinite(getattr(state, name))):
                raise ValueError(f"state.{name} contains NaN or inf; refusing to plan from it")
