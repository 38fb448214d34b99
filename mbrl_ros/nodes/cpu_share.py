"""Background nodes (logger, trainer) yield the CPU to control.

On a small robot computer the controller, the sim (or the drivers), the recorder and
the trainer share a few cores. The controller must meet its control period; the
others can wait. So a background node runs at a raised nice value and with capped
compute thread pools, both set by two parameters declared here once and included in
each background node's PARAMETERS table:

- `niceness`: the nice value the whole process runs at (every thread, including the
  DDS threads created before the parameter was read; Linux keeps one nice value per
  thread, and new threads inherit their creator's). It is absolute and only ever
  raises the priority number, so applying it twice (the launcher starts the process
  at it, the node applies it again) changes nothing, and no privilege is needed.
- `threads`: torch's intra-op threads and the OpenMP / MKL / OpenBLAS pools, through
  their environment variables (read when those libraries load: the launchers also
  put them in the child's environment, so they hold from the first import).

Standard library only (no rclpy): mbrl_ros.bringup reads the same tables to start
the processes niced.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from mbrl_ros.params import Param

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cpu_share_parameters(niceness: int, threads: int) -> tuple[Param, Param]:
    """The `niceness` and `threads` parameters of a background node, with its defaults."""
    return (
        Param("niceness", "integer", niceness, "nice value of the whole process (0: normal priority, 19: lowest); "
              "a background node must never starve control. Only ever raised, never lowered", range=(0, 19)),
        Param("threads", "integer", threads, "CPU threads of its compute pools (torch intra-op, OpenMP, MKL, "
              "OpenBLAS)", range=(1, 1024)),
    )


def thread_env(threads: int) -> dict[str, str]:
    """Environment that caps the OpenMP / MKL / OpenBLAS pools of a process to `threads`."""
    return {name: str(int(threads)) for name in THREAD_ENV_VARS}


def renice(niceness: int, pid: int = 0) -> int:
    """Raise the nice value of every thread of process `pid` (0: this one) to at least `niceness`.

    Returns the nice value of the process's main thread afterwards. Threads that end while
    we walk them, and a value we may not set, are skipped: lowering priority is best effort
    and must never stop a node."""
    pid = pid or os.getpid()
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:  # no procfs (not Linux): the process as a whole
        tids = [pid]
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except ProcessLookupError:
        return niceness


def yield_cpu(niceness: int, threads: int) -> dict[str, str]:
    """Apply a background node's `niceness` and `threads` to this process; returns what now holds
    (for the node's diagnostics)."""
    nice = renice(int(niceness))
    os.environ.update(thread_env(threads))  # libraries loaded from now on, and any child process
    if "torch" in sys.modules:  # loaded already: its pool no longer reads the environment
        sys.modules["torch"].set_num_threads(int(threads))
    return {"niceness": str(nice), "threads": str(int(threads))}


def thread_nice_values(pid: int) -> dict[int, int]:
    """{thread id: nice value} of every thread of a process (tests, diagnostics)."""
    out = {}
    for entry in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(entry.name)] = os.getpriority(os.PRIO_PROCESS, int(entry.name))
        except ProcessLookupError:
            pass
    return out
