"""How a node graph is supervised: which nodes are required, how the others come back, and
how background nodes are started so they never take the controller's CPU.

Read by both entry points: `mbrl-ros launch` (mbrl_ros.bringup.launcher) runs the policy
itself; the launch files (mbrl_ros.bringup.launch_description) hand the same decisions
to `ros2 launch` (`respawn`, `respawn_delay`, an OnProcessExit shutdown for required
nodes, `additional_env`, a `nice` prefix). Pure Python: no rclpy, no launch imports
(a node's parameter table is imported only to read a default).
"""
from __future__ import annotations

import importlib
import signal
from dataclasses import dataclass
from typing import Any

from mbrl_ros.bringup.graph import NodeSpec
from mbrl_ros.nodes.cpu_share import thread_env


@dataclass(frozen=True)
class RespawnPolicy:
    """Exponential backoff for respawned nodes.

    The n-th restart in a row waits initial_delay_s * factor**(n-1), at most max_delay_s.
    A run that lasted stable_after_s resets the count: a node that crashes once a day comes
    back after initial_delay_s every time; one that crashes at start-up is retried ever more
    slowly instead of loading the machine. No cap on the number of restarts: a robot that
    runs for weeks should keep recording once a full disk or a flaky driver recovers, and each
    restart is reported (stderr, with the exit code), so a crash loop is visible, not silent.
    """

    initial_delay_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 30.0
    stable_after_s: float = 60.0

    def delay(self, restarts_in_a_row: int) -> float:
        """Wait before restart number `restarts_in_a_row` (1 for the first)."""
        n = max(1, int(restarts_in_a_row))
        return min(self.max_delay_s, self.initial_delay_s * self.factor ** (n - 1))


RESPAWN = RespawnPolicy()


class Backoff:
    """The restart count of one respawned node, under a RespawnPolicy."""

    def __init__(self, policy: RespawnPolicy = RESPAWN):
        self.policy = policy
        self.in_a_row = 0
        self.total = 0

    def next_delay(self, uptime_s: float) -> float:
        """The node died after running `uptime_s`: how long to wait before starting it again."""
        self.in_a_row = 1 if uptime_s >= self.policy.stable_after_s else self.in_a_row + 1
        self.total += 1
        return self.policy.delay(self.in_a_row)


def describe_exit(code: int) -> str:
    """'code 3', or 'code -9 (SIGKILL)' for a process a signal ended."""
    if code < 0:
        try:
            return f"code {code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"code {code} (signal {-code})"
    return f"code {code}"


def graph_exit_code(code: int) -> int:
    """The launcher's exit code when a required node ended the graph: the node's own, as a shell
    reports it (128 + N for signal N), and never 0 (a required node ending unasked is a failure)."""
    if code < 0:
        return 128 - code
    return code or 1


def node_parameter(spec: NodeSpec, name: str) -> Any:
    """The value a node will run with: the graph's override, else its parameter file's, else
    the default of its parameter table (imported from the node's module)."""
    if name in spec.parameters:
        return spec.parameters[name]
    import yaml

    sections = yaml.safe_load(spec.params_file.read_text()) or {}
    from_file = (sections.get(spec.name) or {}).get("ros__parameters") or {}
    if name in from_file:
        return from_file[name]
    return importlib.import_module(spec.module).PARAMETERS[name].default


@dataclass(frozen=True)
class StartSettings:
    """How a node's process is started: its nice value and extra environment."""

    niceness: int = 0
    env: dict | None = None

    @property
    def prefix(self) -> str:
        """A launch `prefix` that starts the process at this nice value ('' for none)."""
        return f"nice -n {self.niceness}" if self.niceness > 0 else ""


def start_settings(spec: NodeSpec) -> StartSettings:
    """Background nodes start at their `niceness`, with their compute pools capped to `threads`
    from the first import on (the node applies both again itself, for `ros2 run`)."""
    if not spec.background:
        return StartSettings()
    return StartSettings(niceness=int(node_parameter(spec, "niceness")),
                         env=thread_env(int(node_parameter(spec, "threads"))))


def launch_node_options(spec: NodeSpec, policy: RespawnPolicy = RESPAWN) -> dict:
    """The supervision keyword arguments of a launch_ros Node for `spec`.

    launch respawns after a fixed delay (no backoff): the policy's first delay. A required
    node gets no respawn; launch_description adds an OnProcessExit that shuts launch down."""
    settings = start_settings(spec)
    options: dict[str, Any] = {}
    if not spec.required:
        options.update(respawn=True, respawn_delay=policy.initial_delay_s)
    if settings.env:
        options["additional_env"] = dict(settings.env)
    if settings.prefix:
        options["prefix"] = settings.prefix
    return options
