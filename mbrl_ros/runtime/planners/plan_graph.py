"""CEM and MPPI as one ONNX Runtime call per tick: the bundle's whole-plan graphs.

    make_planner("cem_graph", bundle.latent, {"precision": "int8"}, seed=0)

`CEMGraphPlanner` / `MPPIGraphPlanner` keep everything of the numpy planners
that lives between ticks (the warm-start sampler, its shift, reset, the RNG)
and hand one tick's search to the bundle's `plan_cem` / `plan_mppi` graph
(mbrl_ros/export/plan_graphs.py): the noise of every iteration is drawn here
with the numpy planner's own sampler, so for the same seed, config and model
the plan is the numpy planner's to float tolerance (tests/test_plan_graph.py).

The graph runs the whole search or nothing: no deadline check between
iterations (a tick whose deadline has already passed returns the warm start,
as the numpy planners do). When the model has no matching graph (a bundle
exported without it, a torch model, a config whose baked settings differ:
iterations, num_elites, horizon, MPPI's normalize_returns/update_std, iCEM's
kept elites) the planner logs one warning saying why and runs the numpy planner,
so every bundle keeps working; `graph_name` says which one is in use.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mbrl_ros.runtime.latent import LatentModel, LatentState
from mbrl_ros.runtime.planners.base import PlanResult, past
from mbrl_ros.runtime.planners.cem import CEMConfig, CEMPlanner
from mbrl_ros.runtime.planners.mppi import MPPIConfig, MPPIPlanner
from mbrl_ros.runtime.planners.sampling import powerlaw_noise

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8", "fp16")


def _check_precision(owner: str, precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"{owner}: precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision


@dataclass
class CEMGraphConfig(CEMConfig):
    """CEMConfig, plus precision: which variant of the bundle's plan graph runs ("fp32", or "int8"/"fp16"
    when the bundle was exported with it: `mbrl-ros export --plan-precisions int8`)."""

    precision: str = "fp32"

    def __post_init__(self):
        super().__post_init__()
        _check_precision("CEMGraphConfig", self.precision)


@dataclass
class MPPIGraphConfig(MPPIConfig):
    """MPPIConfig, plus precision (as CEMGraphConfig)."""

    precision: str = "fp32"

    def __post_init__(self):
        super().__post_init__()
        _check_precision("MPPIGraphConfig", self.precision)


def find_plan_graph(model: LatentModel, planner: str, config, baked: dict) -> tuple[Optional[object], str]:
    """(the model's plan graph for `planner` at config.precision, "") or (None, why there is none)."""
    graphs = getattr(model, "plan_graphs", None)
    if not graphs:
        return None, f"{type(model).__name__} has no whole-plan graphs (bundle exported without them?)"
    name = f"plan_{planner}" + ("" if config.precision == "fp32" else f"_{config.precision}")
    graph = graphs.get(name)
    if graph is None:
        return None, f"the bundle has no {name} graph (has {sorted(graphs)})"
    want = dict(baked, horizon=config.horizon)
    differ = {k: (v, graph.plan.get(k)) for k, v in want.items() if graph.plan.get(k) != v}
    if differ:
        desc = ", ".join(f"{k} {v} (graph: {g})" for k, (v, g) in differ.items())
        return None, f"graph {name} was exported for other settings: {desc}"
    return graph, ""


class _GraphPlanning:
    """What CEM and MPPI graph planners share; mixed in before the numpy planner class."""

    graph_planner = ""  # "cem" | "mppi"

    def _init_graph(self) -> None:
        self.graph, why = find_plan_graph(self.model, self.graph_planner, self.config, self._baked())
        self.graph_name = None
        if self.graph is None:
            log.warning("%s: %s; planning with the numpy %s planner instead", self.name, why,
                        self.graph_planner.upper())
        else:
            self.graph_name = f"plan_{self.graph_planner}" + (
                "" if self.config.precision == "fp32" else f"_{self.config.precision}")

    def _baked(self) -> dict:
        raise NotImplementedError

    def _feeds(self, state: LatentState) -> dict[str, np.ndarray]:
        cfg, sampler = self.config, self.sampler
        a = self.action_dim
        # The numpy planner's draws, in its order: one (N-1, H, A) block per iteration.
        noise = np.stack([powerlaw_noise(self.rng, sampler.noise_beta, (cfg.num_samples - 1, cfg.horizon, a))
                          for _ in range(cfg.iterations)])
        return {"h": np.ascontiguousarray(state.h, np.float32), "z": np.ascontiguousarray(state.z, np.float32),
                "mean": sampler.mean.copy(), "std": sampler.std.copy(), "noise": noise,
                "low": self.bounds.low, "high": self.bounds.high, "min_std": sampler.min_std,
                "momentum": np.array(cfg.momentum, np.float32), "discount": np.array(cfg.discount, np.float32),
                "value_weight": np.array(1.0 if self.bootstrap else 0.0, np.float32)}

    def _plan(self, state: LatentState, deadline: Optional[float]) -> PlanResult:
        """One graph call; the numpy planner's own _plan (next in the MRO) when the graph cannot run."""
        result = self._plan_graph(state, deadline, self._graph_inputs())
        if result is None:
            result = super()._plan(state, deadline)
            result.info["plan_graph"] = None
        return result

    def _graph_inputs(self) -> dict:
        """The planner-specific scalar inputs of its graph (MPPI: temperature)."""
        raise NotImplementedError

    def _plan_graph(self, state: LatentState, deadline: Optional[float], extra: dict) -> Optional[PlanResult]:
        """Run the graph for one tick; None when the numpy planner should run instead."""
        cfg = self.config
        if self.graph is None:
            return None
        if past(deadline):
            return self._no_result(0, 0, True)
        feeds = self._feeds(state)
        feeds.update(extra)
        mean, std, best, best_return, predicted = self.graph.run(feeds)
        transitions = cfg.num_samples * cfg.horizon * cfg.iterations
        best_return = float(best_return)
        if not np.isfinite(best_return) or not np.all(np.isfinite(mean)):
            return self._safe_result("all imagined returns were NaN/inf", iterations=cfg.iterations,
                                     transitions=transitions, deadline_hit=False, plan_graph=self.graph_name)
        self.sampler.mean[:] = mean
        self.sampler.std[:] = std
        if getattr(cfg, "action_selection", "mean") == "best":
            action, predicted = best[0], best_return
        else:
            action, predicted = self.sampler.mean[0], float(predicted)
        return PlanResult(self.bounds.clip(action).copy(),
                          dict(iterations=cfg.iterations, transitions=transitions, predicted_return=predicted,
                               deadline_hit=False, fallback=None, best_return=best_return,
                               plan_graph=self.graph_name))


class CEMGraphPlanner(_GraphPlanning, CEMPlanner):
    """CEM, one graph call per tick; see the module docstring and CEMGraphConfig."""

    name = "cem_graph"
    graph_planner = "cem"

    def __init__(self, model: LatentModel, config: Optional[CEMGraphConfig] = None, seed: Optional[int] = None):
        super().__init__(model, config or CEMGraphConfig(), seed)
        self._init_graph()

    def _baked(self) -> dict:
        cfg = self.config
        if int(round(cfg.keep_elites_frac * cfg.num_elites)):
            return {"iterations": cfg.iterations, "num_elites": cfg.num_elites,
                    "keep_elites_frac": cfg.keep_elites_frac}  # no graph keeps elites: never matches
        return {"iterations": cfg.iterations, "num_elites": cfg.num_elites}

    def _graph_inputs(self) -> dict:
        return {}


class MPPIGraphPlanner(_GraphPlanning, MPPIPlanner):
    """MPPI, one graph call per tick; see the module docstring and MPPIGraphConfig."""

    name = "mppi_graph"
    graph_planner = "mppi"

    def __init__(self, model: LatentModel, config: Optional[MPPIGraphConfig] = None, seed: Optional[int] = None):
        super().__init__(model, config or MPPIGraphConfig(), seed)
        self._init_graph()

    def _baked(self) -> dict:
        cfg = self.config
        return {"iterations": cfg.iterations, "num_elites": cfg.num_elites,
                "normalize_returns": bool(cfg.normalize_returns), "update_std": bool(cfg.update_std)}

    def _graph_inputs(self) -> dict:
        return {"temperature": np.array(self.config.temperature, np.float32)}
