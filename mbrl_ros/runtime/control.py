"""One control tick, without ROS: inputs -> belief -> plan -> safe command.

The controller node calls `ControlLoop.tick()` from its timer with the latest
observation it holds; everything that decides what reaches the actuators is
here, tested in tests/test_control.py. numpy + the runtime only (no torch).
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Optional

import numpy as np

from mbrl_ros.params import Param, check_values, defaults, table
from mbrl_ros.runtime.belief import BeliefFilter
from mbrl_ros.runtime.planners import PLANNERS, make_planner
from mbrl_ros.runtime.planners.base import config_from
from mbrl_ros.runtime.reward_check import plan_refusal
from mbrl_ros.runtime.safety import RateLimiter, action_spec_mismatch, clamp_to, zero_command
from mbrl_ros.spec import ActionSpec

log = logging.getLogger(__name__)

STALE_ACTIONS = ("zero", "hold")

# The control parameters, declared once: ControlConfig's defaults and checks come from here, and the
# controller node (mbrl_ros/nodes/controller_node.py) declares them as ROS parameters beside its
# node-only ones. `live` ones take effect on a running controller (ControlLoop.reconfigure).
CONTROL_PARAMETERS = table(
    Param("planner", "string", "cem", "latent planner", choices=tuple(PLANNERS)),
    Param("planner_config", "string", "{}", "JSON object of planner config fields, e.g. "
          '{"num_samples": 256, "use_value": false}; CEM/MPPI\'s horizon defaults to the bundle\'s fused horizon'),
    Param("control_rate_hz", "double", 20.0, "planning / command rate (node clock: sim time under use_sim_time)",
          range=(0.1, 1000.0), unit="Hz", live=True),
    Param("input_timeout_s", "double", 0.25, "camera/joint inputs older than this are stale",
          range=(0.001, 60.0), unit="s", live=True),
    Param("on_stale", "string", "zero", "command on stale or invalid inputs: zero effort, or hold the last one",
          choices=STALE_ACTIONS, live=True),
    Param("max_delta", "double", 2.0, "largest change of the normalised [-1, 1] action per tick (2: unlimited)",
          range=(0.001, 2.0), live=True),
    Param("planning_budget_s", "double", 0.0, "planner deadline per tick; 0: 80% of the control period; "
          "inf: no deadline (the full configured search)", range=(0.0, math.inf), unit="s", live=True),
    Param("seed", "integer", 0, "planner random seed", range=(0, 2**31 - 1)),
)
_DEFAULTS = defaults(CONTROL_PARAMETERS)


@dataclass
class ControlConfig:
    """What the control loop runs with; fields, defaults and limits from CONTROL_PARAMETERS
    (planner_config as a dict here, JSON text as a ROS parameter)."""

    planner: str = _DEFAULTS["planner"]
    planner_config: dict = field(default_factory=lambda: json.loads(_DEFAULTS["planner_config"]))
    control_rate_hz: float = _DEFAULTS["control_rate_hz"]
    input_timeout_s: float = _DEFAULTS["input_timeout_s"]
    on_stale: str = _DEFAULTS["on_stale"]
    max_delta: float = _DEFAULTS["max_delta"]
    planning_budget_s: float = _DEFAULTS["planning_budget_s"]
    seed: Optional[int] = _DEFAULTS["seed"]  # None: unseeded (Python callers only)

    def __post_init__(self):
        if not isinstance(self.planner_config, dict):
            raise ValueError(f"planner_config must be a dict, got {self.planner_config!r}")
        for name, param in CONTROL_PARAMETERS.items():
            if name == "planner_config" or (name == "seed" and self.seed is None):
                continue  # planner_config: a dict here, JSON text as a parameter (checked above)
            setattr(self, name, param.check(getattr(self, name), strict=False))

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> "ControlConfig":
        """From ROS parameter values (planner_config as JSON text; other keys ignored).
        ValueError with a one-line reason when a value is bad."""
        values = {name: values[name] for name in CONTROL_PARAMETERS if name in values}
        check_values(CONTROL_PARAMETERS, values)
        if "planner_config" in values:
            try:
                values["planner_config"] = json.loads(values["planner_config"] or "{}")
            except json.JSONDecodeError as exc:
                raise ValueError(f"planner_config is not JSON: {exc}") from exc
        return cls(**values)

    def live_update(self, changes: Mapping[str, Any]) -> "ControlConfig":
        """A copy with the `changes` (live parameters only, checked); ValueError names the first bad one."""
        fixed = [name for name in changes if name not in CONTROL_PARAMETERS or not CONTROL_PARAMETERS[name].live]
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot change while running (read-only)")
        return replace(self, **changes)

    @property
    def budget_s(self) -> Optional[float]:
        """Seconds each tick may plan; None: no deadline, the planner runs its full configured search
        (agent runs and evaluations, whose figures must not depend on the machine's speed)."""
        if math.isinf(self.planning_budget_s):
            return None
        return self.planning_budget_s if self.planning_budget_s > 0 else 0.8 / self.control_rate_hz


ALLOW_UNFUSED = "allow_unfused"  # planner_config key read here, never passed on to the planner


def planner_config_for(planner: str, config: dict, bundle) -> dict:
    """The planner fields to run `bundle` with.

    CEM/MPPI's `horizon` defaults to the bundle's fused horizon, the one length its `imagine`
    graph scores in a single call. Another horizon would make every imagine a loop of
    `horizon` step-graph calls, so it is refused (ValueError) unless the config also sets
    `allow_unfused: true`; then the cost is measured on this bundle and logged in one warning.
    MCTS has its own tree `depth` and rolls leaves out step by step whatever the bundle.
    """
    config = dict(config)
    allow_unfused = config.pop(ALLOW_UNFUSED, False)
    if not isinstance(allow_unfused, bool):
        raise ValueError(f"planner_config {ALLOW_UNFUSED} must be true or false, got {allow_unfused!r}")
    key = str(planner).strip().lower()
    if key not in ("cem", "mppi", "cem_graph", "mppi_graph"):
        if allow_unfused:
            raise ValueError(f"planner_config {ALLOW_UNFUSED} applies to CEM/MPPI's horizon, not to {planner!r}")
        return config
    fused = int(bundle.manifest.fused_horizon)
    horizon = config.setdefault("horizon", fused)
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1 or horizon == fused:
        return config  # a bad horizon is the planner config's own error to report
    if not allow_unfused:
        raise ValueError(
            f"planner horizon {horizon} != fused horizon {fused} of bundle {bundle.version}: every imagine would "
            f"run as {horizon} step-graph calls instead of 1 fused call. Leave horizon out (plan over {fused}), "
            f"export a bundle with --fused-horizon {horizon}, or set {ALLOW_UNFUSED}: true to accept the step loop")
    batch = config_from(PLANNERS[key][1], config).num_samples  # a bad config fails here, before timing
    latent = bundle.latent
    if not getattr(latent, "unfused_reported", False):  # once per bundle, however often its planner is rebuilt
        measure = getattr(latent, "measure_unfused", None)  # ONNX models; a stand-in may lack it
        cost = (measure(bundle.initial_state(1), batch, horizon).describe() if measure is not None else
                f"horizon {horizon} != fused {fused}: {horizon} step calls per imagine instead of 1")
        latent.unfused_reported = True
        log.warning("%s planner on bundle %s with %s: %s", key.upper(), bundle.version, ALLOW_UNFUSED, cost)
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
    mode: str  # "plan" | "stale" | "invalid" | "planner_error" | "disabled" | "no_model" | "no_task" | "clock_stalled"
    reason: str = ""
    latency_s: float = 0.0
    info: dict = field(default_factory=dict)


class ControlLoop:
    """Belief filter + planner + safety over a model store (mbrl_ros.runtime.ModelStore).

    `tick()` never raises for bad inputs or model trouble: it returns a safe
    command and says why in `mode`/`reason`.

    The one path from observations to actions: the controller node, the agent
    (mbrl_ros.agent.common.ControlPolicy), evaluation scripts and benchmarks all
    act through it. When something after the loop changes the action before it
    goes out (the agent's exploration noise), `applied()` tells the loop, so the
    next belief update, the planner's warm start and the rate limiter all see
    what the robot really got.
    """

    def __init__(self, store, config: ControlConfig, action_spec: Optional[ActionSpec] = None):
        """action_spec: the ROBOT's command limits (actuator names, robot units). Every command is
        scaled and clamped with them, and a model whose action spec differs is never run
        (runtime.safety.action_spec_mismatch). With them the loop may start without a model: it then
        sends the safe command (on_stale) until the store has one. None: the store's current
        model's, fixed at construction (tools acting on one bundle; the controller node always
        passes the robot's own)."""
        self.store = store
        self.config = config
        bundle = store.current
        if action_spec is None:
            if bundle is None:
                raise ValueError(f"model store {store.root}: no model to start with and no robot limits")
            action_spec = bundle.action_spec
        self.action_spec = action_spec
        if bundle is not None:
            mismatch = action_spec_mismatch(self.action_spec, bundle.action_spec)
            if mismatch:
                raise ValueError(f"model {bundle.version} does not fit the robot: {mismatch}")
        self.belief: Optional[BeliefFilter] = BeliefFilter(bundle) if bundle is not None else None
        self.refused: dict[int, str] = {}  # id(bundle) -> why this loop will not run it
        self._planners: dict[int, Any] = {}
        self.limiter = RateLimiter(self.action_spec.dim, config.max_delta)
        self.enabled = True
        self.counts: Counter = Counter()
        self.latencies: deque = deque(maxlen=500)
        self.last_action = np.zeros(self.action_spec.dim, np.float32)  # normalised, as published
        self._applied_since_reset = False
        # (planner, action) of the last planning tick: the planner's warm start is shifted by the
        # action that went out at the start of the next tick, so `applied()` can still change it
        self._unadvanced: Optional[tuple[Any, np.ndarray]] = None
        if bundle is not None:  # fail early on a bad planner config
            make_planner(config.planner, bundle.latent, self.planner_config(bundle), config.seed)

    # ---------------------------------------------------------------- helpers
    def _planner_for(self, bundle):
        planner = self._planners.get(id(bundle))
        if planner is None:
            self._planners = {id(bundle): make_planner(self.config.planner, bundle.latent,
                                                       self.planner_config(bundle), self.config.seed)}
            planner = self._planners[id(bundle)]
        return planner

    @property
    def planner(self):
        """The planner of the model the belief follows (one per model; a swap starts a fresh one)."""
        return self._planner_for(self.belief.bundle)

    def planner_config(self, bundle) -> dict:
        return planner_config_for(self.config.planner, self.config.planner_config, bundle)

    def safe_command(self) -> np.ndarray:
        """The safe command (on_stale) in robot units, inside the limits: what goes out when control
        stops. zero: zero effort; hold: the last command again (a position-controlled arm stays put
        instead of jumping to the middle of its range)."""
        return clamp_to(self.action_spec, self.action_spec.to_robot(self._safe_action()))

    def _safe_action(self) -> np.ndarray:
        if self.config.on_stale == "hold":
            return self.last_action.copy()
        return self._zero()

    def reset(self) -> None:
        """Start of an episode: fresh belief and plan, no previous action."""
        if self.belief is not None:
            self.belief.reset()
        for planner in self._planners.values():
            planner.reset()
        self.limiter.reset()
        self.last_action = np.zeros(self.action_spec.dim, np.float32)
        self._applied_since_reset = False
        self._unadvanced = None

    def applied(self, action: np.ndarray) -> None:
        """The normalised action that really went out after the last tick, where something outside
        the loop changed the tick's action (e.g. exploration noise). The next tick's belief update,
        the planner's warm start and the rate limiter take it instead of the tick's action.

        Call it between two ticks, at most once. Raises ValueError for an action of the wrong
        shape, with NaN/inf, or outside [-1, 1] (nothing outside the limits is ever "applied").
        """
        action = np.asarray(action, np.float32).reshape(-1)
        if action.shape != (self.action_spec.dim,):
            raise ValueError(f"applied action: expected {self.action_spec.dim} values, got shape {action.shape}")
        if not np.all(np.isfinite(action)) or np.any(np.abs(action) > 1.0):
            raise ValueError(f"applied action must be finite and inside [-1, 1], got {action.tolist()}")
        self.last_action = action.copy()
        self.limiter.last = action.copy()
        if self._unadvanced is not None:
            self._unadvanced = (self._unadvanced[0], action.copy())

    def reconfigure(self, changes) -> ControlConfig:
        """Apply live parameter changes ({name: value}, ControlConfig.live_update) between two ticks;
        the next tick runs with them. ValueError, and nothing changed, when a value is refused."""
        config = self.config.live_update(changes)
        self.limiter.max_delta = config.max_delta
        self.config = config
        return config

    def stats(self) -> dict[str, float]:
        lat = np.asarray(self.latencies) if self.latencies else np.zeros(1)
        return {"tick_p50_ms": float(np.percentile(lat, 50) * 1e3), "tick_p99_ms": float(np.percentile(lat, 99) * 1e3)}

    # ------------------------------------------------------------------- tick
    def tick(self, now: float, obs: Observation) -> TickResult:
        start = time.perf_counter()
        if self._unadvanced is not None:  # one control step passed with this action
            planner, applied = self._unadvanced
            self._unadvanced = None
            planner.advance(applied)
        result = self._tick(now, obs, start)
        return self._finish(result, start)

    def safe_tick(self, mode: str, reason: str) -> TickResult:
        """A tick that sends the safe command (on_stale) without looking at inputs or the model: the
        controller node's wall-clock watchdog, when the control timer stopped with its clock."""
        self._unadvanced = None  # no control step of the planner's: its warm start stays
        return self._finish(TickResult(np.zeros(0), self._safe_action(), mode, reason), time.perf_counter())

    def _finish(self, result: TickResult, start: float) -> TickResult:
        """Rate limit (planned actions only), then scale to and clamp into the ROBOT's limits."""
        action = np.clip(self.limiter(result.action) if result.mode == "plan" else result.action, -1.0, 1.0)
        if result.mode == "plan":
            self.limiter.last = action.astype(np.float32)
        else:
            self.limiter.reset(action)
        result.action = action.astype(np.float32)
        # to_robot clips to [-1, 1] first; the clamp is the last word (no float rounding past a limit)
        result.command = clamp_to(self.action_spec, self.action_spec.to_robot(result.action))
        self.last_action = result.action.copy()
        if result.mode == "plan":  # the warm start shifts by the action that really goes out (next tick)
            self._unadvanced = (self._planner_for(self.belief.bundle), result.action.copy())
        result.latency_s = time.perf_counter() - start
        self.latencies.append(result.latency_s)
        if result.latency_s > 1.0 / self.config.control_rate_hz:
            self.counts["deadline_misses"] += 1
        self.counts[result.mode] += 1
        return result

    def _tick(self, now: float, obs: Observation, start: float) -> TickResult:
        if not self.enabled:
            return TickResult(np.zeros(0), self._safe_action(), "disabled", "controller disabled")
        bundle = self.store.current  # read once: this tick uses one model throughout
        if bundle is None:
            return TickResult(np.zeros(0), self._safe_action(), "no_model", "no model to run")
        if self.belief is None or bundle is not self.belief.bundle:
            refusal = self._refusal(bundle)
            if refusal:
                return TickResult(np.zeros(0), self._safe_action(), "no_model", refusal)
            if self.belief is None:
                self.belief = BeliefFilter(bundle)
            else:
                try:
                    self.belief.use_model(bundle)
                except ValueError as exc:
                    log.warning("model swap: %s; resetting the belief", exc)
                    self.belief = BeliefFilter(bundle)
        if (refusal := plan_refusal(bundle)) is not None:  # a model trained without a reward has no task
            return TickResult(np.zeros(0), self._safe_action(), "no_task", refusal)
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
        try:
            planner = self._planner_for(bundle)
        except ValueError as exc:  # a swapped-in model the planner config does not fit (e.g. its fused horizon)
            return TickResult(np.zeros(0), self._safe_action(), "planner_error",
                              f"no planner for model {bundle.version}: {exc}")
        budget = self.config.budget_s
        deadline = None if budget is None else start + budget
        try:
            plan = planner.plan(state, deadline=deadline)
        except Exception as exc:  # noqa: BLE001 - an overrun or model failure must not stop commands
            warm = planner.warm_action
            action = warm if warm is not None else self._safe_action()
            return TickResult(np.zeros(0), np.asarray(action, np.float32), "planner_error",
                              f"planner failed ({type(exc).__name__}: {exc}); using the warm-start action")
        self._applied_since_reset = True
        return TickResult(np.zeros(0), plan.action, "plan", "", info=dict(plan.info))

    def runs(self, bundle) -> bool:
        """Whether this loop would run `bundle` (a model, and one that fits the robot's limits)."""
        return bundle is not None and self._refusal(bundle) is None

    def _refusal(self, bundle) -> Optional[str]:
        """Why `bundle` must not run on this robot (None: it may). The model store refuses such a
        bundle on load already when it knows the robot's limits; this holds for any store."""
        key = id(bundle)
        if key not in self.refused:
            mismatch = action_spec_mismatch(self.action_spec, bundle.action_spec)
            if mismatch:
                log.error("model %s does not fit the robot (%s): not running it", bundle.version, mismatch)
            self.refused = {key: f"model {bundle.version} refused: {mismatch}" if mismatch else ""}
        return self.refused[key] or None

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

    def refusal(self):
        """The refusal (model_store.Refusal) of a version published now and not running, else None:
        the trainer's store first (its models replace the shipped one), then the shipped one."""
        for store in (self.preferred, self.fallback):
            if store is not None and store.refusing is not None:
                return store.refusing
        return None

    def diagnostics(self) -> dict[str, str]:
        out = self.fallback.diagnostics()
        if self.preferred is not None:
            out.update({f"trained_{k}": v for k, v in self.preferred.diagnostics().items()})
        bundle = self.current
        out["model_version"] = bundle.version if bundle else "none"
        out["model_source"] = "trainer" if self.preferred is not None and self.preferred.current is not None \
            else "shipped"
        return out
