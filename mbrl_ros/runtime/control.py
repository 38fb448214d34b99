"""One control tick, without ROS: inputs -> belief -> plan -> safe command.

The controller node calls `ControlLoop.tick()` from its timer with the latest
observation it holds; everything that decides what reaches the actuators is
here, tested in tests/test_control.py. numpy + the runtime only (no torch).
"""
from __future__ import annotations

import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from mbrl_ros.runtime.belief import BeliefFilter
from mbrl_ros.runtime.planners import make_planner
from mbrl_ros.runtime.safety import RateLimiter, zero_command
from mbrl_ros.spec import ActionSpec

log = logging.getLogger(__name__)

STALE_ACTIONS = ("zero", "hold")


@dataclass
class ControlConfig:
    planner: str = "cem"
    planner_config: dict = field(default_factory=dict)
    control_rate_hz: float = 20.0
    input_timeout_s: float = 0.25  # older inputs are stale
    on_stale: str = "zero"  # zero | hold: what to command on stale/invalid inputs
    max_delta: float = 2.0  # largest change of the normalised action per tick (2 = unlimited)
    planning_budget_s: float = 0.0  # 0: 80% of the control period
    seed: Optional[int] = 0

    def __post_init__(self):
        if self.on_stale not in STALE_ACTIONS:
            raise ValueError(f"on_stale must be one of {STALE_ACTIONS}, got {self.on_stale!r}")
        if self.control_rate_hz <= 0 or self.input_timeout_s <= 0:
            raise ValueError("control_rate_hz and input_timeout_s must be > 0")

    @property
    def budget_s(self) -> float:
        return self.planning_budget_s if self.planning_budget_s > 0 else 0.8 / self.control_rate_hz


def planner_config_for(planner: str, config: dict, bundle) -> dict:
    """The configured planner fields; CEM/MPPI's horizon defaults to the bundle's fused-rollout
    horizon, the one length its `imagine` graph scores in a single call (MCTS keeps its own
    shallower default depth)."""
    config = dict(config)
    if planner in ("cem", "mppi"):
        config.setdefault("horizon", int(bundle.manifest.horizon))
    return config


@dataclass
class Observation:
    """The latest camera frame / joint vector the node holds, with their stamps (node clock, s)."""

    joints: Optional[np.ndarray] = None
    joints_stamp: float = float("-inf")
    image: Optional[np.ndarray] = None
    image_stamp: float = float("-inf")


@dataclass
class TickResult:
    command: np.ndarray  # robot units, inside the limits
    action: np.ndarray  # normalised [-1, 1]
    mode: str  # "plan" | "stale" | "invalid" | "planner_error" | "disabled" | "no_model"
    reason: str = ""
    latency_s: float = 0.0
    info: dict = field(default_factory=dict)


class ControlLoop:
    """Belief filter + planner + safety over a model store (mbrl_ros.runtime.ModelStore).

    `tick()` never raises for bad inputs or model trouble: it returns a safe
    command and says why in `mode`/`reason`.
    """

    def __init__(self, store, config: ControlConfig, action_spec: Optional[ActionSpec] = None):
        self.store = store
        self.config = config
        bundle = store.current
        if bundle is None:
            raise ValueError(f"model store {store.root}: no model to start with")
        self.action_spec = action_spec or bundle.action_spec
        if self.action_spec.dim != bundle.action_spec.dim:
            raise ValueError(f"robot has {self.action_spec.dim} actuators, model {bundle.version} has "
                             f"{bundle.action_spec.dim}")
        self.belief = BeliefFilter(bundle)
        self._planners: dict[int, Any] = {}
        self.limiter = RateLimiter(self.action_spec.dim, config.max_delta)
        self.enabled = True
        self.counts: Counter = Counter()
        self.latencies: deque = deque(maxlen=500)
        self.last_action = np.zeros(self.action_spec.dim, np.float32)  # normalised, as published
        self._applied_since_reset = False
        make_planner(config.planner, bundle.latent, self.planner_config(bundle), config.seed)  # fail early on bad config

    # ---------------------------------------------------------------- helpers
    def _planner_for(self, bundle):
        planner = self._planners.get(id(bundle))
        if planner is None:
            self._planners = {id(bundle): make_planner(self.config.planner, bundle.latent,
                                                       self.planner_config(bundle), self.config.seed)}
            planner = self._planners[id(bundle)]
        return planner

    def planner_config(self, bundle) -> dict:
        return planner_config_for(self.config.planner, self.config.planner_config, bundle)

    def _safe_action(self) -> np.ndarray:
        if self.config.on_stale == "hold":
            return self.last_action.copy()
        return self._zero()

    def reset(self) -> None:
        """Start of an episode: fresh belief and plan, no previous action."""
        self.belief.reset()
        for planner in self._planners.values():
            planner.reset()
        self.limiter.reset()
        self.last_action = np.zeros(self.action_spec.dim, np.float32)
        self._applied_since_reset = False

    def stats(self) -> dict[str, float]:
        lat = np.asarray(self.latencies) if self.latencies else np.zeros(1)
        return {"tick_p50_ms": float(np.percentile(lat, 50) * 1e3), "tick_p99_ms": float(np.percentile(lat, 99) * 1e3)}

    # ------------------------------------------------------------------- tick
    def tick(self, now: float, obs: Observation) -> TickResult:
        start = time.perf_counter()
        result = self._tick(now, obs, start)
        action = np.clip(self.limiter(result.action) if result.mode == "plan" else result.action, -1.0, 1.0)
        if result.mode == "plan":
            self.limiter.last = action.astype(np.float32)
        else:
            self.limiter.reset(action)
        result.action = action.astype(np.float32)
        result.command = self.action_spec.to_robot(result.action)
        self.last_action = result.action.copy()
        if result.mode == "plan":  # shift the warm start by the action that really goes out
            self._planner_for(self.belief.bundle).advance(result.action)
        result.latency_s = time.perf_counter() - start
        self.latencies.append(result.latency_s)
        if result.latency_s > 1.0 / self.config.control_rate_hz:
            self.counts["deadline_misses"] += 1
        self.counts[result.mode] += 1
        return result

    def _tick(self, now: float, obs: Observation, start: float) -> TickResult:
        if not self.enabled:
            return TickResult(np.zeros(0), self._zero(), "disabled", "controller disabled")
        bundle = self.store.current  # read once: this tick uses one model throughout
        if bundle is not self.belief.bundle:
            try:
                self.belief.use_model(bundle)
            except ValueError as exc:
                log.warning("model swap: %s; resetting the belief", exc)
                self.belief = BeliefFilter(bundle)
        spec = bundle.obs_spec
        stale = []
        if obs.joints is None or now - obs.joints_stamp > self.config.input_timeout_s:
            stale.append(f"joint states {self._age(now, obs.joints_stamp)}")
        if spec.has_image and (obs.image is None or now - obs.image_stamp > self.config.input_timeout_s):
            stale.append(f"camera {self._age(now, obs.image_stamp)}")
        if stale:
            return TickResult(np.zeros(0), self._safe_action(), "stale", "stale inputs: " + ", ".join(stale))
        model_obs = {"joints": obs.joints}
        if spec.has_image:
            model_obs["image"] = obs.image
        try:
            state = self.belief.update(model_obs, self.last_action if self._applied_since_reset else None)
        except ValueError as exc:
            return TickResult(np.zeros(0), self._safe_action(), "invalid", f"invalid observation: {exc}")
        planner = self._planner_for(bundle)
        deadline = start + self.config.budget_s
        try:
            plan = planner.plan(state, deadline=deadline)
        except Exception as exc:  # noqa: BLE001 - an overrun or model failure must not stop commands
            warm = getattr(planner, "_last_action", None)
            action = warm if warm is not None else self._safe_action()
            return TickResult(np.zeros(0), np.asarray(action, np.float32), "planner_error",
                              f"planner failed ({type(exc).__name__}: {exc}); using the warm-start action")
        self._applied_since_reset = True
        return TickResult(np.zeros(0), plan.action, "plan", "", info=dict(plan.info))

    def _zero(self) -> np.ndarray:
        """Zero effort as a normalised action."""
        return self.action_spec.from_robot(zero_command(self.action_spec))

    @staticmethod
    def _age(now: float, stamp: float) -> str:
        return "never received" if stamp == float("-inf") else f"{now - stamp:.3f} s old"


class PreferredStore:
    """Two model stores as one: the trainer's (`preferred`) once it has published, else the shipped one.

    Lets the controller start on the shipped default model and hot-swap to what
    the online trainer publishes, without copying bundles around.
    """

    def __init__(self, fallback, preferred=None):
        self.fallback, self.preferred = fallback, preferred
        self.root = fallback.root

    @property
    def current(self):
        bundle = self.preferred.current if self.preferred is not None else None
        return bundle if bundle is not None else self.fallback.current

    def start(self, interval: float = 1.0):
        for store in (self.fallback, self.preferred):
            if store is not None:
                store.start(interval)
        return self

    def stop(self) -> None:
        for store in (self.fallback, self.preferred):
            if store is not None:
                store.stop()

    def diagnostics(self) -> dict[str, str]:
        out = self.fallback.diagnostics()
        if self.preferred is not None:
            out.update({f"trained_{k}": v for k, v in self.preferred.diagnostics().items()})
        bundle = self.current
        out["model_version"] = bundle.version if bundle else "none"
        out["model_source"] = "trainer" if self.preferred is not None and self.preferred.current is not None \
            else "shipped"
        return out
