"""What every benchmark prints first: the command, the machine and the load it ran under.

Benchmarks import it as `from common import ...` (benchmarks/ is put on sys.path).
"""
from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path


def isolate_ros() -> None:
    """A DDS domain of this run's own on localhost, so parallel runs don't hear each other, and
    headless MuJoCo rendering. Call before rclpy is imported; variables already set win."""
    import random

    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("MUJOCO_GL", "egl")


def machine() -> str:
    """CPU model, core count and current load average (figures on a busy machine are noisy)."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"{cpu}, {os.cpu_count()} cores ({usable} usable), {platform.system()} {platform.release()}, "
            f"load average {load}, Python {platform.python_version()}")


def command() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])


def percentiles(samples, qs=(50, 99)) -> dict[str, float]:
    import numpy as np  # lazily: some benchmarks set BLAS thread counts before numpy loads

    arr = np.asarray(samples, dtype=np.float64)
    return {f"p{q}": float(np.percentile(arr, q)) if arr.size else float("nan") for q in qs}


def p50_p99(samples) -> tuple[float, float]:
    """(p50, p99) of `samples`, in their own unit."""
    p = percentiles(samples)
    return p["p50"], p["p99"]


def print_header(title: str, config: dict) -> None:
    print(f"# {title}")
    print(f"command: {command()}")
    print(f"machine: {machine()}")
    print("config:  " + ", ".join(f"{k}={v}" for k, v in config.items()))


def timings(fn, n: int, warmup: int = 5):
    """Wall-clock seconds of `n` calls of fn() after `warmup` untimed ones, as a numpy array."""
    import numpy as np

    for _ in range(warmup):
        fn()
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


class TimedModel:
    """A planner's LatentModel with the time spent inside its step/imagine calls added up.

    Everything else (action_dim, has_value, ...) passes through, so a planner cannot tell
    it from the model it wraps; the rest of a tick is the planner's own numpy work.
    """

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _timed(self, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0

    def step(self, state, action):
        return self._timed(self.inner.step, state, action)

    def imagine(self, state, actions):
        return self._timed(self.inner.imagine, state, actions)
