"""Planners in a model's latent space: CEM, MPPI, MCTS (numpy only).

    planner = make_planner("cem", model, {"horizon": 12}, seed=0)
    planner.reset()                      # episode start
    result = planner.plan(state)         # state: LatentState, batch 1
    robot.apply(result.action)           # float32[A] in the action bounds
    planner.advance(applied_action)      # optional: the action really applied

See docs/planners.md for the configs, defaults and figures.
"""
from __future__ import annotations

from typing import Any, Optional

from mbrl_ros.runtime.latent import LatentModel
from mbrl_ros.runtime.planners.base import PlanResult, Planner, config_from
from mbrl_ros.runtime.planners.cem import CEMConfig, CEMPlanner
from mbrl_ros.runtime.planners.mcts import MCTSConfig, MCTSPlanner
from mbrl_ros.runtime.planners.mppi import MPPIConfig, MPPIPlanner
from mbrl_ros.runtime.planners.plan_graph import CEMGraphConfig, CEMGraphPlanner, MPPIGraphConfig, MPPIGraphPlanner

PLANNERS = {"cem": (CEMPlanner, CEMConfig), "mppi": (MPPIPlanner, MPPIConfig),
            "mcts": (MCTSPlanner, MCTSConfig),
            # the same CEM/MPPI as one whole-plan graph call per tick (plan_graph.py; numpy when the bundle lacks it)
            "cem_graph": (CEMGraphPlanner, CEMGraphConfig), "mppi_graph": (MPPIGraphPlanner, MPPIGraphConfig)}


def make_planner(name: str, model: LatentModel, config: Any = None, seed: Optional[int] = None) -> Planner:
    """A planner by name ("cem", "mppi", "mcts", "cem_graph", "mppi_graph") for `model`.

    config: None (defaults), a dict of config fields (unknown keys raise
    ValueError), or the planner's config dataclass. seed: for the planner's RNG.
    """
    key = str(name).strip().lower()
    if key not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose one of {sorted(PLANNERS)}")
    planner_cls, config_cls = PLANNERS[key]
    return planner_cls(model, config_from(config_cls, config), seed=seed)


__all__ = ["make_planner", "PlanResult", "Planner", "CEMConfig", "CEMPlanner", "MPPIConfig", "MPPIPlanner", "MCTSConfig",
           "MCTSPlanner", "PLANNERS", "CEMGraphConfig", "CEMGraphPlanner", "MPPIGraphConfig", "MPPIGraphPlanner"]
