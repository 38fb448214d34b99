"""Cross-entropy method over action sequences (with the iCEM options).

Each tick: start from the warm-start Gaussian (last tick's plan shifted one
step), then for a few iterations sample N sequences (plus the current mean and
elites kept from before), score them in ONE batched `model.imagine` call, refit
mean/std to the top-k elites with momentum. Anytime: the clock is checked
before every iteration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from mbrl_ros.runtime.latent import LatentModel, LatentState
from mbrl_ros.runtime.planners.base import (
    BoundSpec, PlanResult, Planner, check_positive_int, check_range, past, sequence_returns,
)
from mbrl_ros.runtime.planners.sampling import GaussianSequenceSampler


@dataclass
class CEMConfig:
    """CEM settings. Defaults aim at <= 20 ms/tick for a GRU-128 latent model on
    a 2-core CPU (see docs/planners.md for the measured figures).

    horizon: H, steps imagined per sequence. The controller sets it to the model bundle's
        fused horizon unless told otherwise (mbrl_ros.runtime.control.planner_config_for).
    num_samples: N, sequences scored per iteration (one model batch), counting the
        current mean and any kept elites.
    num_elites: k, top sequences the Gaussian is refitted to.
    iterations: refits per tick (fewer if the deadline passes).
    discount: per-step discount of rewards and of the terminal value.
    init_std, min_std: std of the sampling Gaussian at the start of each tick and
        its floor, as fractions of each action dimension's half range.
    momentum: share of the old mean/std kept at each refit (0 = jump to the elites).
    noise_beta: colour of the sampling noise along time: 0 white, ~2-3 iCEM's
        smooth "red" noise.
    keep_elites_frac: fraction of the elites carried into the next iteration and,
        shifted, into the next tick (iCEM; 0 disables).
    use_value: add discount^H * value(s_H) when the model has a value head.
    action_selection: "mean" (first action of the refitted mean: smooth, the
        default) or "best" (first action of the best sequence ever sampled this tick).
    action_low, action_high: action box, a number or one per dimension.
    time_budget_s: relative time budget per plan() when no deadline is passed.
    """

    horizon: int = 10
    num_samples: int = 128
    num_elites: int = 16
    iterations: int = 2
    discount: float = 0.99
    init_std: float = 0.5
    min_std: float = 0.05
    momentum: float = 0.1
    noise_beta: float = 0.0
    keep_elites_frac: float = 0.0
    use_value: bool = True
    action_selection: str = "mean"
    action_low: BoundSpec = -1.0
    action_high: BoundSpec = 1.0
    time_budget_s: Optional[float] = None

    def __post_init__(self):
        validate_sampling_config(self)
        self.num_elites = check_positive_int("CEMConfig", "num_elites", self.num_elites)
        if self.num_elites > self.num_samples:
            raise ValueError(f"CEMConfig: num_elites ({self.num_elites}) must be <= num_samples ({self.num_samples})")
        self.keep_elites_frac = check_range("CEMConfig", "keep_elites_frac", self.keep_elites_frac, 0.0, 1.0)
        if int(round(self.keep_elites_frac * self.num_elites)) >= self.num_samples:
            raise ValueError("CEMConfig: kept elites must leave room for fresh samples")
        if self.action_selection not in ("mean", "best"):
            raise ValueError(f"CEMConfig: action_selection must be 'mean' or 'best', got {self.action_selection!r}")


def validate_sampling_config(cfg) -> None:
    """Checks shared by CEMConfig and MPPIConfig (they have the same sampling fields)."""
    owner = type(cfg).__name__
    cfg.horizon = check_positive_int(owner, "horizon", cfg.horizon)
    # 2 = the current mean plus at least one fresh sample.
    cfg.num_samples = check_positive_int(owner, "num_samples", cfg.num_samples, minimum=2)
    cfg.iterations = check_positive_int(owner, "iterations", cfg.iterations)
    cfg.discount = check_range(owner, "discount", cfg.discount, 0.0, 1.0, low_open=True)
    cfg.init_std = check_range(owner, "init_std", cfg.init_std, 0.0, np.inf, low_open=True, high_open=True)
    cfg.min_std = check_range(owner, "min_std", cfg.min_std, 0.0, cfg.init_std)
    cfg.momentum = check_range(owner, "momentum", cfg.momentum, 0.0, 1.0, high_open=True)
    cfg.noise_beta = check_range(owner, "noise_beta", cfg.noise_beta, 0.0, 10.0)
    if cfg.time_budget_s is not None:
        cfg.time_budget_s = check_range(owner, "time_budget_s", cfg.time_budget_s, 0.0, np.inf, high_open=True)


class SequencePlanner(Planner):
    """Shared skeleton of CEM and MPPI: warm-started sampler + batched scoring."""

    def __init__(self, model: LatentModel, config, seed: Optional[int] = None):
        super().__init__(model, config, seed)
        self.sampler = GaussianSequenceSampler(config.horizon, self.bounds, config.init_std, config.min_std,
                                               config.noise_beta, self.rng)
        self.bootstrap = bool(config.use_value and model.has_value)

    def _score(self, state: LatentState, candidates: np.ndarray) -> np.ndarray:
        rewards, values = self.model.imagine(state, candidates)
        return sequence_returns(rewards, values, self.config.discount, self.bootstrap)

    def _advance(self, applied_action: Optional[np.ndarray]) -> None:
        self.sampler.shift()

    def _reset(self) -> None:
        self.sampler.reset()

    def _no_result(self, iterations: int, transitions: int, deadline_hit: bool) -> PlanResult:
        """No finite return was seen: warm start if we never got to try, else the safe action."""
        if iterations == 0:
            # Deadline passed before the first iteration: the shifted warm start is
            # last tick's plan, the best we have without computing anything.
            return PlanResult(self.bounds.clip(self.sampler.mean[0]).copy(),
                              dict(iterations=0, transitions=0, predicted_return=float("nan"),
                                   deadline_hit=deadline_hit, fallback=None))
        return self._safe_result("all imagined returns were NaN/inf", iterations=iterations,
                                 transitions=transitions, deadline_hit=deadline_hit)


class CEMPlanner(SequencePlanner):
    """Cross-entropy method; see CEMConfig. Returns the first action of the
    refitted mean (or of the best sampled sequence, per config)."""

    name = "cem"

    def __init__(self, model: LatentModel, config: Optional[CEMConfig] = None, seed: Optional[int] = None):
        super().__init__(model, config or CEMConfig(), seed)
        self._kept: Optional[np.ndarray] = None  # iCEM elites carried over [n, H, A]

    def _plan(self, state: LatentState, deadline: Optional[float]) -> PlanResult:
        cfg, sampler = self.config, self.sampler
        n_keep = int(round(cfg.keep_elites_frac * cfg.num_elites))
        best_return, best_sequence = -np.inf, None
        elite_return = float("nan")
        iterations = transitions = 0
        deadline_hit = False
        for _ in range(cfg.iterations):
            if past(deadline):
                deadline_hit = True
                break
            parts = [sampler.mean[None]]
            if self._kept is not None:
                parts.append(self._kept)
            n_fresh = cfg.num_samples - sum(len(p) for p in parts)
            parts.append(sampler.sample(n_fresh))
            candidates = np.concatenate(parts, axis=0)
            returns = self._score(state, candidates)
            iterations += 1
            transitions += candidates.shape[0] * cfg.horizon
            order = np.argsort(-returns, kind="stable")[: cfg.num_elites]
            order = order[np.isfinite(returns[order])]  # NaN candidates never become elites
            if len(order) == 0:
                continue
            if returns[order[0]] > best_return:
                best_return, best_sequence = float(returns[order[0]]), candidates[order[0]].copy()
            elites = candidates[order]
            elite_return = float(returns[order].mean())
            sampler.update(elites.mean(axis=0), elites.std(axis=0), cfg.momentum)
            self._kept = elites[:n_keep].copy() if n_keep else None

        if best_sequence is None:
            return self._no_result(iterations, transitions, deadline_hit)
        if cfg.action_selection == "best":
            action, predicted = best_sequence[0], best_return
        else:
            action, predicted = sampler.mean[0], elite_return
        return PlanResult(self.bounds.clip(action).copy(),
                          dict(iterations=iterations, transitions=transitions, predicted_return=predicted,
                               deadline_hit=deadline_hit, fallback=None, best_return=best_return))

    def _advance(self, applied_action: Optional[np.ndarray]) -> None:
        super()._advance(applied_action)
        if self._kept is not None:
            # Kept elites age with the warm start: drop the executed step, pad with the safe action.
            self._kept[:, :-1] = self._kept[:, 1:]
            self._kept[:, -1] = self.bounds.safe

    def _reset(self) -> None:
        super()._reset()
        self._kept = None
