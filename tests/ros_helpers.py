"""Helpers for tests over real DDS between real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (PyPI ROS 2 wheels or a ROS 2 install) is needed")

ROOT = Path(__file__).resolve().parent.parent


def node_process(module: str, *ros_args: str, params_file: Path | None = None, log_path: Path | None = None,
                 env: dict | None = None) -> subprocess.Popen:
    """Start `python -m module --ros-args ...` as a separate process (own process group)."""
    args = [sys.executable, "-m", module, "--ros-args"]
    if params_file:
        args += ["--params-file", str(params_file)]
    args += list(ros_args)
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    return subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **(env or {})})


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGINT like Ctrl-C, then kill; returns the exit code."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


@contextmanager
def ros_node(name: str = "mbrl_test"):
    """An rclpy context + node for the test process; torn down afterwards."""
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(name, context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.executor_for_test = executor
    try:
        yield node
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def spin_until(node, predicate, timeout: float, procs=()) -> bool:
    """Spin `node` until predicate() is true or timeout; fail fast if a watched process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        node.executor_for_test.spin_once(timeout_sec=0.05)
        if predicate():
            return True
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"process {proc.args[2]} exited with {proc.returncode}")
    return predicate()


def spin_for(node, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        node.executor_for_test.spin_once(timeout_sec=0.02)
