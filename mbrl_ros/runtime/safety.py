"""Command checks shared by the sim node (incoming commands) and the controller (outgoing).

Pure numpy: no rclpy, so the rules are unit-tested without ROS.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from mbrl_ros.spec import ActionSpec


# How far a bundle's action limits may differ from the robot's and still count as the same (float
# round trips through JSON, YAML and MJCF text); anything more is a different robot.
LIMIT_TOLERANCE = 1e-9


def robot_limits(names: Sequence[str], low: Sequence[float], high: Sequence[float],
                 source: str = "robot limits") -> ActionSpec:
    """The robot's command limits (robot units, one entry per actuator, in command order) as an
    ActionSpec. ValueError with a one-line reason when they are missing or do not fit together."""
    names, low, high = list(names), [float(x) for x in low], [float(x) for x in high]
    if not names or not low or not high:
        raise ValueError(f"{source}: joint names, command minimum and maximum are all required "
                         f"(got {len(names)} names, {len(low)} minima, {len(high)} maxima)")
    if not len(names) == len(low) == len(high):
        raise ValueError(f"{source}: {len(names)} joint names but {len(low)} minima and {len(high)} maxima")
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"{source}: joint names must be distinct and non-empty, got {names}")
    if not all(np.isfinite(low)) or not all(np.isfinite(high)):
        raise ValueError(f"{source}: limits must be finite, got {low} / {high}")
    bad = [n for n, lo, hi in zip(names, low, high) if not lo < hi]
    if bad:
        raise ValueError(f"{source}: minimum must be below maximum for {bad} (got {low} / {high})")
    return ActionSpec(dim=len(names), low=tuple(low), high=tuple(high), names=tuple(names))


def action_spec_mismatch(robot: ActionSpec, bundle: ActionSpec) -> Optional[str]:
    """Why a model bundle's action spec does not fit the robot (None when it does).

    The bundle maps its normalised [-1, 1] actions onto the limits it was trained with; the robot
    scales them with its own. Any difference in actuators or limits means the model's actions
    mean something else here, so it is a mismatch (never "widened" or "narrowed" to fit).
    """
    if bundle.dim != robot.dim:
        return f"action dim {bundle.dim}, robot has {robot.dim} actuators"
    if tuple(bundle.names) != tuple(robot.names):
        return f"actuators {list(bundle.names)}, robot has {list(robot.names)}"
    for what, theirs, ours in (("minimum", bundle.low, robot.low), ("maximum", bundle.high, robot.high)):
        if not np.allclose(theirs, ours, rtol=LIMIT_TOLERANCE, atol=LIMIT_TOLERANCE):
            return f"command {what} {list(theirs)}, robot's is {list(ours)}"
    return None


def clamp_to(spec: ActionSpec, command: np.ndarray) -> np.ndarray:
    """A robot-unit command clamped into the limits (the last step before it leaves the controller)."""
    return np.clip(np.asarray(command, np.float64), np.asarray(spec.low), np.asarray(spec.high))


def zero_command(spec: ActionSpec) -> np.ndarray:
    """Zero effort in robot units, clamped into the limits (0 may lie outside an asymmetric range)."""
    return np.clip(np.zeros(spec.dim), spec.low, spec.high)


class CommandRejected(ValueError):
    """A command that must not reach the actuators; `reason` is a short counter key."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def check_command(values: Sequence[float], spec: ActionSpec) -> tuple[np.ndarray, bool]:
    """Validate a robot-unit command against the spec.

    Returns (command clamped into [low, high], whether clamping changed it).
    Raises CommandRejected for the wrong length or non-finite entries: those
    are never "fixed", because there is no safe guess of what was meant.
    """
    cmd = np.asarray(values, dtype=np.float64).reshape(-1)
    if cmd.shape[0] != spec.dim:
        raise CommandRejected("wrong_length", f"command has {cmd.shape[0]} values, robot has {spec.dim} actuators")
    if not np.all(np.isfinite(cmd)):
        raise CommandRejected("not_finite", f"command contains NaN/inf: {cmd.tolist()}")
    low, high = np.asarray(spec.low), np.asarray(spec.high)
    clamped = np.clip(cmd, low, high)
    return clamped, bool(np.any(clamped != cmd))


@dataclass
class CommandGate:
    """Holds the last valid command and zeroes it when commands stop coming.

    `submit` at each received command, `current(now)` whenever the actuators need
    a value. Times are seconds on one clock (the node's).

    It also records how old the applied command was: `pop_max_age()` returns the
    largest age since the last call. Measured where the command is used, this is
    the robot's view of the control rate, whatever delayed the commands (planner,
    transport, or a busy machine), and no observer's own delays enter it.
    """

    spec: ActionSpec
    timeout_s: float = 0.5
    counts: Counter = field(default_factory=Counter)
    _command: Optional[np.ndarray] = None
    _stamp: float = float("-inf")
    timed_out: bool = False
    _max_age: float = 0.0

    def zero(self) -> np.ndarray:
        return zero_command(self.spec)

    def submit(self, values: Sequence[float], now: float) -> Optional[str]:
        """Accept a command. Returns a warning text when it was clamped or rejected, else None."""
        try:
            cmd, clamped = check_command(values, self.spec)
        except CommandRejected as exc:
            self.counts[exc.reason] += 1
            return f"rejected command ({exc}); holding the last valid one"
        self._command, self._stamp = cmd, now
        self.counts["accepted"] += 1
        if clamped:
            self.counts["clamped"] += 1
            return f"command outside limits, clamped to {np.round(cmd, 4).tolist()}"
        return None

    def current(self, now: float) -> np.ndarray:
        """The command to apply now: the last valid one, or zero when it is older than timeout_s."""
        if self._command is not None:  # a held command, applied or timed out: its age counts
            self._max_age = max(self._max_age, now - self._stamp)
        # The watchdog watches the command stream, not the episode: `_stamp` outlives reset(), so
        # commands that stop just before an episode boundary still time out after it.
        stale = self._stamp > float("-inf") and now - self._stamp > self.timeout_s
        if stale and not self.timed_out:
            self.counts["timeouts"] += 1
        self.timed_out = stale
        if self._command is None or stale:
            return self.zero()
        return self._command

    def pop_max_age(self) -> float:
        """The largest age of a command held at `current()` since the last call (0 if none was held)."""
        age, self._max_age = self._max_age, 0.0
        return age

    def reset(self) -> None:
        """A new episode: the held command is dropped (zero until the next one arrives).

        The time of the last valid command is kept, so a controller that stopped sending still
        reads as timed out across the episode boundary.
        """
        self._command = None


class RateLimiter:
    """Limits how far a normalised action may move per tick (|a_t - a_{t-1}| <= max_delta)."""

    def __init__(self, dim: int, max_delta: float):
        if max_delta <= 0:
            raise ValueError(f"max_delta must be > 0, got {max_delta}")
        self.max_delta = max_delta
        self.last = np.zeros(dim, np.float32)

    def __call__(self, action: np.ndarray) -> np.ndarray:
        action = np.asarray(action, np.float32)
        delta = action - self.last
        # An action within reach passes unchanged: last + (action - last) can round away from it.
        out = np.where(np.abs(delta) > self.max_delta, self.last + np.clip(delta, -self.max_delta, self.max_delta),
                       action)
        self.last = out.astype(np.float32)
        return self.last.copy()

    def reset(self, action: Optional[np.ndarray] = None) -> None:
        self.last = np.zeros_like(self.last) if action is None else np.asarray(action, np.float32).copy()
