"""`mbrl-ros launch sim|robot [name:=value ...]`: `ros2 launch` for pip installs.

Starts every node of the graph (mbrl_ros.bringup.graph) as its own process with the
same parameter files and overrides the launch files use. Ctrl-C (SIGINT) or
SIGTERM is forwarded to every child; stragglers are terminated, then killed.
If any node exits on its own, the others are stopped too (like a launch file
whose nodes are `required`), and the exit code says which one.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mbrl_ros.bringup.graph import GRAPHS, NodeSpec


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
    nodes = build(parse_launch_arguments(args.arguments))
    if args.dry_run:
        for node in nodes:
            print(" ".join(node_command(node)))
        return 0
    return run_nodes(nodes)


def run_nodes(nodes: list[NodeSpec], stop_grace_s: float = 10.0) -> int:
    procs: dict[str, subprocess.Popen] = {}
    stopping = False

    def request_stop(signum, _frame):
        nonlocal stopping
        stopping = True

    old_int = signal.signal(signal.SIGINT, request_stop)
    old_term = signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    try:
        for node in nodes:
            # Own process group so a terminal Ctrl-C reaches us once, and we stop children in order.
            procs[node.name] = subprocess.Popen(node_command(node), start_new_session=True, env=os.environ.copy())
            print(f"[launch] started {node.name} (pid {procs[node.name].pid})", flush=True)
        while not stopping:
            for name, proc in procs.items():
                code = proc.poll()
                if code is not None:
                    print(f"[launch] {name} exited with code {code}; stopping the graph", flush=True)
                    exit_code = code or 1
                    stopping = True
                    break
            time.sleep(0.2)
    finally:
        stop_all(procs, stop_grace_s)
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    return exit_code


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
