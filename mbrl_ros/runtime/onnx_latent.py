"""`OnnxLatentModel`: the LatentModel the planners search in on the robot.

`step` runs the bundle's `step` graph (prior + reward/value/cont heads).
`imagine` runs the fused `imagine` graph, which unrolls the bundle's
`fused_horizon` steps in one call. Any other length runs as a loop of `step`
calls (`imagine_by_steps`: same numbers, one graph call per step); the first
such call logs one warning, so the slow path is never taken silently. The
controller refuses a CEM/MPPI horizon other than the fused one unless the
planner config allows it (mbrl_ros.runtime.control.planner_config_for), and
then reports the cost `measure_unfused` finds.

`plan_graphs` holds the bundle's optional whole-plan graphs (`plan_cem`, `plan_mppi` and their
`_int8` / `_fp16` variants, loaded and smoke-run by `load_plan_graphs`), which the planners
`cem_graph` / `mppi_graph` run instead of calling `imagine` once per iteration.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from mbrl_ros.runtime.latent import LatentState, imagine_by_steps
from mbrl_ros.runtime.sessions import OrtGraph, SessionConfig

log = logging.getLogger(__name__)


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


@dataclass(frozen=True)
class UnfusedCost:
    """What an imagine of `horizon` steps costs as a step loop, against one fused call."""

    horizon: int
    fused_horizon: int
    batch: int
    fused_s: float    # one call of the fused graph (fused_horizon steps)
    unfused_s: float  # `horizon` calls of the step graph

    def describe(self) -> str:
        return (f"horizon {self.horizon} != fused {self.fused_horizon}: {self.horizon} step calls per imagine "
                f"instead of 1 (measured {self.unfused_s * 1e3:.1f} ms vs {self.fused_s * 1e3:.1f} ms per imagine "
                f"at {self.batch} candidates)")


class OnnxLatentModel:
    """LatentModel over a bundle's `step` and `imagine` graphs (see mbrl_ros.runtime.latent)."""

    def __init__(self, step_graph: OrtGraph, imagine_graph: OrtGraph, action_dim: int, has_value: bool,
                 fused_horizon: int, plan_graphs: Optional[dict] = None):
        self.step_graph = step_graph
        self.imagine_graph = imagine_graph
        self.action_dim = int(action_dim)
        self.has_value = bool(has_value)
        self.fused_horizon = int(fused_horizon)  # the only length `imagine` scores in one graph call
        self.unfused_calls = 0  # imagine() calls that ran as a step loop
        # Set once the slow path has been reported (by the first unfused call, or by a caller
        # that measured and logged its cost itself), so it is logged once per model.
        self.unfused_reported = False
        # Whole-plan graphs (name -> PlanGraph), which planners cem_graph/mppi_graph run when present.
        self.plan_graphs: dict[str, PlanGraph] = dict(plan_graphs or {})

    def _check_actions(self, actions: np.ndarray, ndim: int) -> np.ndarray:
        actions = _f32(actions)
        if actions.ndim != ndim or actions.shape[-1] != self.action_dim:
            want = "[N, A]" if ndim == 2 else "[N, H, A]"
            raise ValueError(f"actions must be {want} with A={self.action_dim}, got shape {actions.shape}")
        return actions

    def step(self, state: LatentState, action: np.ndarray) -> tuple[LatentState, np.ndarray, np.ndarray]:
        """One imagined step: (next state, reward [N], value [N]); value is zeros when has_value is False."""
        next_state, reward, value, _ = self.step_with_cont(state, action)
        return next_state, reward, value

    def step_with_cont(self, state: LatentState, action: np.ndarray):
        """`step` plus the predicted continuation probability [N] (1 - P(episode ends))."""
        action = self._check_actions(action, 2)
        if action.shape[0] != state.batch:
            raise ValueError(f"state batch {state.batch} does not match {action.shape[0]} actions")
        h, z, reward, value, cont = self.step_graph.run({"h": _f32(state.h), "z": _f32(state.z), "action": action})
        return LatentState(h, z), reward, value, cont

    def imagine(self, state: LatentState, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rewards [N, H] and values [N, H] of N action sequences [N, H, A] from `state`.

        One fused graph call when H is the bundle's fused horizon, else H step-graph calls.
        """
        actions = self._check_actions(actions, 3)
        n, horizon, _ = actions.shape
        state = state.broadcast(n)
        if horizon == self.fused_horizon:
            return self._imagine_fused(state, actions)
        self.unfused_calls += 1
        if not self.unfused_reported:
            self.unfused_reported = True
            log.warning("imagine of %d steps: the bundle's fused imagine graph covers exactly %d, so this runs "
                        "as %d step-graph calls instead of 1 (logged once per model)",
                        horizon, self.fused_horizon, horizon)
        return imagine_by_steps(self, state, actions)

    def _imagine_fused(self, state: LatentState, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rewards, values = self.imagine_graph.run({"h": _f32(state.h), "z": _f32(state.z), "actions": actions})
        return rewards, values

    def measure_unfused(self, state: LatentState, batch: int, horizon: int, repeats: int = 3) -> UnfusedCost:
        """Time one fused imagine against a `horizon`-step loop for `batch` sequences from `state`.

        Each path runs once to warm up, then the best of `repeats` runs counts (the least
        disturbed by other load). Zero actions: the cost does not depend on their values.
        """
        start = state.broadcast(batch)
        fused = np.zeros((batch, self.fused_horizon, self.action_dim), np.float32)
        loop = np.zeros((batch, horizon, self.action_dim), np.float32)

        def best_of(run) -> float:
            run()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
            return min(times)

        fused_s = best_of(lambda: self._imagine_fused(start, fused))
        unfused_s = best_of(lambda: imagine_by_steps(self, start, loop))
        return UnfusedCost(horizon=int(horizon), fused_horizon=self.fused_horizon, batch=int(batch),
                           fused_s=fused_s, unfused_s=unfused_s)


PLAN_PREFIX = "plan_"  # manifest graphs named plan_<planner>[_<precision>] are whole-plan graphs


@dataclass(frozen=True)
class PlanGraph:
    """A loaded whole-plan graph and the settings baked into it (the manifest entry's `plan`)."""

    graph: OrtGraph
    plan: dict  # planner, horizon, iterations, num_elites, (normalize_returns, update_std,) precision

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.graph.run(feeds)


def load_plan_graphs(path: Path, manifest, config: SessionConfig, max_file_bytes: int) -> dict[str, PlanGraph]:
    """Every plan_* graph the manifest lists, sha256-checked, in a session, named as the manifest's inputs
    and outputs say, and run once on neutral inputs (finite outputs); BundleError otherwise.
    A bundle without any (exported before they existed, or with --plan-graphs none) gives {}."""
    from mbrl_ros.runtime import manifest as mf

    out = {}
    for name, entry in manifest.raw["graphs"].items():
        if not name.startswith(PLAN_PREFIX):
            continue
        plan = entry.get("plan")
        if not isinstance(plan, dict) or plan.get("planner") not in ("cem", "mppi"):
            raise mf.BundleError(f"{path}: graph {name} has no valid `plan` settings")
        data = mf.read_verified(path, entry, max_file_bytes)
        try:
            graph = OrtGraph(data, f"{manifest.version}/{name}", config)
        except Exception as exc:  # noqa: BLE001 -- ORT raises several types for bad graphs
            raise mf.BundleError(f"{path / entry['file']}: ONNX Runtime cannot load it ({exc})") from exc
        for kind, got, recorded in (("inputs", graph.input_names, entry["inputs"]),
                                    ("outputs", graph.output_names, entry["outputs"])):
            if list(got) != [r["name"] for r in recorded]:
                raise mf.BundleError(f"graph {name}: {kind} {list(got)}, manifest says "
                                     f"{[r['name'] for r in recorded]}")
        out[name] = PlanGraph(graph, dict(plan))
        _smoke(out[name], manifest, name)
    return out


def _smoke(plan_graph: PlanGraph, manifest, name: str) -> None:
    from mbrl_ros.runtime.manifest import BundleError

    p, a = plan_graph.plan, manifest.action_spec.dim
    feeds = {"h": np.zeros((1, manifest.deter), np.float32), "z": np.zeros((1, manifest.stoch), np.float32),
             "mean": np.zeros((p["horizon"], a), np.float32), "std": np.full((p["horizon"], a), 0.5, np.float32),
             "noise": np.zeros((p["iterations"], max(1, p["num_elites"]), p["horizon"], a), np.float32),
             "low": -np.ones(a, np.float32), "high": np.ones(a, np.float32),
             "min_std": np.full(a, 0.05, np.float32)}
    for scalar, value in (("momentum", 0.1), ("discount", 0.99), ("value_weight", 1.0), ("temperature", 0.5)):
        if scalar in plan_graph.graph.input_names:
            feeds[scalar] = np.array(value, np.float32)
    try:
        outs = plan_graph.run(feeds)
    except Exception as exc:  # noqa: BLE001
        raise BundleError(f"smoke run: graph {name} failed ({type(exc).__name__}: {exc})") from exc
    if outs[0].shape != (p["horizon"], a) or not all(np.all(np.isfinite(o)) for o in outs):
        raise BundleError(f"smoke run: graph {name} gave a plan of shape {outs[0].shape} or non-finite outputs")


__all__ = ["OnnxLatentModel", "UnfusedCost", "imagine_by_steps", "PlanGraph", "load_plan_graphs"]
