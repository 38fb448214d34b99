"""MPPI: temperature-weighted average of sampled action sequences.

Same sampler and warm start as CEM (`SequencePlanner`); instead of refitting to
a hard top-k, every sample (or the top `num_elites`, TD-MPC2 style) gets
weight exp((R - R_max) / (temperature * scale)) and the mean becomes the
weighted mean of the sequences.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from mbrl_ros.runtime.latent import LatentModel, LatentState
from mbrl_ros.runtime.planners.base import BoundSpec, PlanResult, check_positive_int, check_range, past
from mbrl_ros.runtime.planners.cem import SequencePlanner, validate_sampling_config


@dataclass
class MPPIConfig:
    """MPPI settings; the sampling fields mean the same as in CEMConfig.

    temperature: lambda; smaller = greedier weights. With normalize_returns the
        returns are divided by their std over the weighted set first, so
        temperature is unit-free (0.5: a one-std-worse sequence gets e^-2 the weight).
    num_elites: weight only the best k sequences (TD-MPC2); 0 = all (Nav2 style).
    update_std: refit the std to the weighted spread (TD-MPC2) instead of keeping
        the initial std for all iterations (classic MPPI).
    The returned action is the first step of the weighted mean after the last iteration.
    """

    horizon: int = 10
    num_samples: int = 128
    iterations: int = 2
    num_elites: int = 0
    temperature: float = 0.5
    normalize_returns: bool = True
    update_std: bool = True
    discount: float = 0.99
    init_std: float = 0.5
    min_std: float = 0.05
    momentum: float = 0.1
    noise_beta: float = 0.0
    use_value: bool = True
    action_low: BoundSpec = -1.0
    action_high: BoundSpec = 1.0
    time_budget_s: Optional[float] = None

    def __post_init__(self):
        validate_sampling_config(self)
        self.num_elites = check_positive_int("MPPIConfig", "num_elites", self.num_elites, minimum=0)
        if self.num_elites > self.num_samples:
            raise ValueError(f"MPPIConfig: num_elites ({self.num_elites}) must be <= num_samples ({self.num_samples})")
        self.temperature = check_range("MPPIConfig", "temperature", self.temperature, 0.0, np.inf,
                                       low_open=True, high_open=True)


def mppi_weights(returns: np.ndarray, temperature: float, normalize: bool) -> np.ndarray:
    """Softmax weights of finite returns (float64, sum 1); -inf returns get weight 0."""
    best = returns.max()
    scale = temperature
    if normalize:
        finite = returns[np.isfinite(returns)]
        scale *= max(float(finite.std()), 1e-8)
    w = np.exp((returns - best) / scale)
    return w / w.sum()


class MPPIPlanner(SequencePlanner):
    """Model-predictive path integral control over the latent model; see MPPIConfig."""

    name = "mppi"

    def __init__(self, model: LatentModel, config: Optional[MPPIConfig] = None, seed: Optional[int] = None):
        super().__init__(model, config or MPPIConfig(), seed)

    def _plan(self, state: LatentState, deadline: Optional[float]) -> PlanResult:
        cfg, sampler = self.config, self.sampler
        iterations = transitions = 0
        deadline_hit = False
        predicted = float("nan")
        best_return = -np.inf
        for _ in range(cfg.iterations):
            if past(deadline):
                deadline_hit = True
                break
            candidates = np.concatenate([sampler.mean[None], sampler.sample(cfg.num_samples - 1)], axis=0)
            returns = self._score(state, candidates)
            iterations += 1
            transitions += candidates.shape[0] * cfg.horizon
            if cfg.num_elites:
                keep = np.argsort(-returns, kind="stable")[: cfg.num_elites]
                candidates, returns = candidates[keep], returns[keep]
            finite = np.isfinite(returns)
            if not finite.any():
                continue
            candidates, returns = candidates[finite], returns[finite]
            best_return = max(best_return, float(returns.max()))
            w = mppi_weights(returns, cfg.temperature, cfg.normalize_returns)
            mean = np.einsum("n,nha->ha", w, candidates)
            if cfg.update_std:
                std = np.sqrt(np.einsum("n,nha->ha", w, (candidates - mean) ** 2))
            else:
                std = sampler.init_std
            sampler.update(mean.astype(np.float32), std.astype(np.float32), cfg.momentum)
            predicted = float(w @ returns)

        if not np.isfinite(predicted):
            return self._no_result(iterations, transitions, deadline_hit)
        return PlanResult(self.bounds.clip(sampler.mean[0]).copy(),
                          dict(iterations=iterations, transitions=transitions, predicted_return=predicted,
                               deadline_hit=deadline_hit, fallback=None, best_return=best_return))
