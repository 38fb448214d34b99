"""`mbrl-ros launch sim|robot [name:=value ...]`: `ros2 launch` for pip installs.

Starts every node of the graph (mbrl_ros.bringup.graph) as its own process with the
same parameter files and overrides the launch files use, and supervises them as a
launch file with `required` / `respawn` nodes would (mbrl_ros.bringup.supervision):

- a required node (controller, sim) that exits stops the graph; the last stderr line
  names it, and the exit code is its own (128 + N when signal N killed it);
- any other node (logger, trainer) that exits is started again after an exponential
  backoff, each restart reported on stderr with the exit code; control never stops
  for it;
- background nodes (logger, trainer) start at their `niceness`, with their compute
  thread pools capped to their `threads` (mbrl_ros.nodes.cpu_share).

Ctrl-C (SIGINT) or SIGTERM is forwarded to every child; stragglers are terminated,
then killed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mbrl_ros.bringup.graph import GRAPHS, NodeSpec, check_startable
from mbrl_ros.bringup.supervision import (RESPAWN, Backoff, RespawnPolicy, describe_exit, graph_exit_code,
                                          start_settings)
from mbrl_ros.nodes.cpu_share import renice


def register(parser):
    parser.add_argument("graph", choices=sorted(GRAPHS), help="which node graph")
    parser.add_argument("arguments", nargs="*", metavar="name:=value", help="launch arguments (see --list)")
    parser.add_argument("--list", action="store_true", help="print the graph's launch arguments and exit")
    parser.add_argument("--dry-run", action="store_true", help="print the node commands and exit")


def parse_launch_arguments(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if ":=" not in item:
            raise SystemExit(f"mbrl-ros launch: expected name:=value, got '{item}'")
        name, value = item.split(":=", 1)
        out[name] = value
    return out


def node_command(node: NodeSpec) -> list[str]:
    return [sys.executable, "-m", node.module, *node.ros_args()]


def run(args) -> int:
    arguments, build = GRAPHS[args.graph]
    if args.list:
        for name, arg in arguments.items():
            print(f"  {name}:={arg.default!r:<28} {arg.description}")
        return 0
    try:
        nodes = build(parse_launch_arguments(args.arguments))
        if not args.dry_run:
            check_startable(nodes)
    except ValueError as exc:  # a bad argument or a graph that must not start (no robot limits): one line
        print(f"mbrl-ros launch {args.graph}: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        for node in nodes:
            print(" ".join(node_command(node)))
        return 0
    return run_nodes(nodes)


class Supervised:
    """One node of a running graph: its current process, and its restarts."""

    def __init__(self, spec: NodeSpec, policy: RespawnPolicy):
        self.spec = spec
        self.settings = start_settings(spec)
        self.backoff = Backoff(policy)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restart_at: float | None = None  # monotonic time of a pending restart

    def start(self) -> subprocess.Popen:
        env = {**os.environ, **(self.settings.env or {})}
        # Own process group so a terminal Ctrl-C reaches us once, and we stop children in order.
        self.proc = subprocess.Popen(node_command(self.spec), start_new_session=True, env=env)
        if self.settings.niceness > 0:
            # Popen returns as the child execs: it has one thread, and the ones it creates inherit this value.
            renice(self.settings.niceness, self.proc.pid)
        self.started_at = time.monotonic()
        self.restart_at = None
        return self.proc


def run_nodes(nodes: list[NodeSpec], stop_grace_s: float = 10.0, policy: RespawnPolicy = RESPAWN) -> int:
    supervised = [Supervised(node, policy) for node in nodes]
    stopping = False

    def request_stop(signum, _frame):
        nonlocal stopping
        stopping = True

    old_int = signal.signal(signal.SIGINT, request_stop)
    old_term = signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    try:
        for node in supervised:
            proc = node.start()
            role = "required" if node.spec.required else "respawned"
            print(f"[launch] started {node.spec.name} (pid {proc.pid}, {role})", flush=True)
        while not stopping:
            exit_code = supervise_once(supervised)
            if exit_code:
                break
            time.sleep(0.1)
    finally:
        stop_all({n.spec.name: n.proc for n in supervised if n.proc is not None}, stop_grace_s)
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    return exit_code


def supervise_once(supervised: list[Supervised]) -> int:
    """Reap exited nodes, respawn those due; a non-zero return stops the graph with that code."""
    now = time.monotonic()
    for node in supervised:
        name = node.spec.name
        if node.restart_at is not None:
            if now >= node.restart_at:
                proc = node.start()
                print(f"[launch] restarted {name} (pid {proc.pid}, restart {node.backoff.total})",
                      file=sys.stderr, flush=True)
            continue
        code = node.proc.poll()
        if code is None:
            continue
        if node.spec.required:
            print(f"[launch] required node {name} (pid {node.proc.pid}) exited with {describe_exit(code)}; "
                  f"stopping the graph", file=sys.stderr, flush=True)
            return graph_exit_code(code)
        delay = node.backoff.next_delay(uptime_s=now - node.started_at)
        node.restart_at = now + delay
        print(f"[launch] {name} (pid {node.proc.pid}) exited with {describe_exit(code)}; restarting it in "
              f"{delay:.1f} s (restart {node.backoff.total})", file=sys.stderr, flush=True)
    return 0


def stop_all(procs: dict[str, subprocess.Popen], grace_s: float) -> None:
    """SIGINT every child (rclpy shuts down cleanly on it), then SIGTERM, then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        alive = [p for p in procs.values() if p.poll() is None]
        if not alive:
            return
        for proc in alive:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        for proc in alive:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
