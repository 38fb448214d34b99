"""A run folder: `evals.csv` (the learning curve) + `run.json` (config, status, wall clock).

    results/<task>/<method>/seed<S>/
        evals.csv   env_steps, frames, return_mean, return_std, returns, wall_s
        run.json    task, method, seed, config, frame_skip, status ("running" | "stopped" | "done"), wall_s,
                    machine (the first session's), session_machines (one per session: the CPU and
                    versions it ran on, from which env step), protocol (role reported | tuning,
                    seeds, evaluation seeds: protocol.run_record), wall_by_phase (where the wall clock
                    went: seconds per phase, summed over the sessions that timed them; see `RunLog.timed`)

Both are rewritten atomically after every evaluation, so a killed run leaves a
folder that `RunLog` reopens: the finished evaluations are kept and the run
continues from the method's own checkpoint (see mbrl_loop / baselines).

Only the two small files are committed to the repository; the training state
(checkpoint, replay data) is not, except a model-based run's compact `resume/` snapshot
(agent/snapshot.py), which `MBRLAgent` restores before anything here reads the folder. A
folder whose evaluations survived but whose training state did not cannot be continued: `check_continuable` refuses it
rather than start from zero and append a second learning curve onto the first,
and `supersede_run_folder` moves everything it held aside so a fresh run loses nothing.
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import numpy as np

from mbrl_ros.fileio import atomic_write_bytes

FIELDS = ("env_steps", "frames", "return_mean", "return_std", "returns", "wall_s")


def machine() -> dict:
    """What the run ran on (docs/results.md quotes it), with the versions that decide its numbers."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {"cpu": platform.processor() or platform.machine(), "cpu_model": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "load_1min_at_start": round(load, 2), "versions": versions()}


def cpu_model() -> str:
    """The CPU's model name and family/model numbers, with AVX-512 if present: float kernels (oneDNN,
    ONNX Runtime) pick code paths by CPU, so the same seed gives bit-identical runs only on the same kind."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    fields = {}
    for line in info.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
        if not line.strip():
            break
    flags = fields.get("flags", "").split()
    simd = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "no avx2"
    return (f"{fields.get('model name', platform.machine())} (family {fields.get('cpu family', '?')} model "
            f"{fields.get('model', '?')}, {simd})")


def versions() -> dict:
    """Installed versions of the libraries that decide a run's numbers (requirements/constraints.txt)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("mujoco", "dm-control", "onnxruntime", "numpy", "torch", "gymnasium", "stable-baselines3"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def read_evals(path: Path) -> list[dict]:
    """Rows of an evals.csv as dicts with numbers (returns as a list of floats)."""
    if not Path(path).exists():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.append({"env_steps": int(row["env_steps"]), "frames": int(row["frames"]),
                         "return_mean": float(row["return_mean"]), "return_std": float(row["return_std"]),
                         "returns": [float(x) for x in row["returns"].split(";") if x],
                         "wall_s": float(row["wall_s"])})
    return rows


SUPERSEDED_PREFIX = "superseded-"


class RunNotContinuable(RuntimeError):
    """A run folder holds evaluations past step 0 but not the training state they came from."""


def supersede_run_folder(folder: Path) -> Optional[Path]:
    """Move everything `folder` holds into `<folder>/superseded-<UTC time>/` (returned), to start afresh.

    Earlier superseded folders stay where they are; an empty or absent folder is left as it is.
    """
    folder = Path(folder)
    entries = [p for p in folder.iterdir() if not p.name.startswith(SUPERSEDED_PREFIX)] if folder.is_dir() else []
    if not entries:
        return None
    stamp = SUPERSEDED_PREFIX + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = folder / stamp
    n = 1
    while aside.exists():  # two restarts within one second: keep both, don't fail the second
        n += 1
        aside = folder / f"{stamp}-{n}"
    aside.mkdir()
    for entry in entries:
        shutil.move(str(entry), str(aside / entry.name))
    return aside


def check_continuable(folder: Path, training_state: list[Path]) -> None:
    """Refuse a folder with evaluations past step 0 whose `training_state` files are not all there."""
    folder = Path(folder)
    trained = [r["env_steps"] for r in read_evals(folder / "evals.csv") if r["env_steps"] > 0]
    missing = [Path(p).name for p in training_state if not Path(p).exists()]
    if trained and missing:
        raise RunNotContinuable(
            f"{folder} holds evaluations up to {max(trained)} env steps but not the training state they "
            f"came from (missing: {', '.join(missing)}), so the run cannot be continued; starting it "
            f"from zero here would mix two learning curves in one evals.csv. Run it again with --restart "
            f"to move what the folder holds into {folder}/{SUPERSEDED_PREFIX}<time>/ and start afresh.")


class RunLog:
    """Learning-curve rows and run metadata of one (task, method, seed) run."""

    def __init__(self, folder: Path, meta: dict):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.evals_path = self.folder / "evals.csv"
        self.meta_path = self.folder / "run.json"
        self.rows = read_evals(self.evals_path)
        old = json.loads(self.meta_path.read_text()) if self.meta_path.exists() else {}
        meta = self._protocol_across_sessions(meta, old)
        # Wall clock accumulates over resumed sessions; the first session's machine is kept, and so
        # is how far the run got, until this session records more. The config is this session's.
        kept = ("wall_s", "sessions", "machine", "export_refusals", "env_steps", "frames", "restores",
                "wall_by_phase")
        self.meta = {**meta, **{k: old[k] for k in kept if k in old}}
        self.meta.setdefault("wall_s", 0.0)
        self.meta["sessions"] = int(self.meta.get("sessions", 0)) + 1
        here = machine()
        self.meta.setdefault("machine", here)
        # A run continued across machines (snapshots) mixes float kernels: say which part ran where.
        self.meta["session_machines"] = [*old.get("session_machines", []), {
            "session": self.meta["sessions"], "from_env_steps": int(old.get("env_steps", 0)),
            "cpu_model": here["cpu_model"], "cores": here["cores"], "versions": here["versions"]}]
        self.meta["status"] = "running"
        self._session_start = time.perf_counter()
        self._wall_at_start = float(self.meta["wall_s"])
        phases = self.meta.get("wall_by_phase") or {}
        self._phase_s = {k: float(v) for k, v in (phases.get("seconds") or {}).items()}
        self._timed_at_start = float(phases.get("wall_s", 0.0))
        self._timed_steps = int(phases.get("env_steps", 0))
        self._write_meta()

    def _protocol_across_sessions(self, meta: dict, old: dict) -> dict:
        """A run keeps its role for life; a run begun before the protocol cannot claim it later."""
        new, before = meta.get("protocol"), old.get("protocol")
        if not new or not old:
            return meta
        if before and before.get("role") != new.get("role"):
            raise RunNotContinuable(f"{self.folder} holds a {before.get('role')} run; it cannot be continued as a "
                                    f"{new.get('role')} run (docs/protocol.md): use another folder or --restart")
        if not before and self.rows and new.get("role") == "reported":
            new = {**new, "claims": False,
                   "violations": [*new.get("violations", []), "continues a run begun before the protocol"]}
            return {**meta, "protocol": new}
        return meta

    @property
    def done_steps(self) -> set[int]:
        return {r["env_steps"] for r in self.rows}

    @property
    def last_step(self) -> int:
        return max(self.done_steps, default=-1)

    def pending(self, points: list[int], steps_done: int) -> list[int]:
        """The evaluation points still to come for a run that has taken `steps_done` env steps.

        A point the run has already passed without an evaluation (the schedule was made denser
        after those steps) is dropped with a note: evaluating the current model there would put
        a later model's return at an earlier step of the curve."""
        done = self.done_steps  # a set built from the rows: once, not per point
        todo = [p for p in points if p not in done]
        missed = [p for p in todo if p < steps_done]
        if missed:
            print(f"{self.folder}: not evaluated at {', '.join(map(str, missed))} env steps "
                  f"(the schedule has points the run passed before it had them; it is at {steps_done})",
                  flush=True)
        return [p for p in todo if p >= steps_done]

    def wall_s(self) -> float:
        """Wall-clock seconds of this run, summed over all its sessions."""
        return self._wall_at_start + time.perf_counter() - self._session_start

    @contextmanager
    def timed(self, phase: str):
        """Add the wall-clock time of the block to `phase` (run.json "wall_by_phase").

        Why: a run's cost per 1000 frames is its headline cost figure, and a change in it (another
        machine, a growing replay, a slower export) is only explained by where the time went. The
        phases are whatever the method names (mbrl_loop: train, save, export, act, env, eval);
        "wall_s" there is the wall clock of the sessions that timed them, so wall_s minus the
        phases is the untimed rest (bookkeeping, cache writes).
        """
        start = time.perf_counter()
        try:
            yield
        finally:
            self._phase_s[phase] = self._phase_s.get(phase, 0.0) + time.perf_counter() - start

    def count_steps(self, n: int = 1) -> None:
        """Env steps taken in timed sessions (steps redone after a stop count again, as wall_s does)."""
        self._timed_steps += int(n)

    def add_eval(self, env_steps: int, frames: int, returns: list[float]) -> dict:
        row = {"env_steps": int(env_steps), "frames": int(frames), "return_mean": float(np.mean(returns)),
               "return_std": float(np.std(returns)), "returns": [float(r) for r in returns],
               "wall_s": round(self.wall_s(), 2)}
        self.rows = [r for r in self.rows if r["env_steps"] != env_steps] + [row]
        self.rows.sort(key=lambda r: r["env_steps"])
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=FIELDS)
        writer.writeheader()
        for r in self.rows:
            writer.writerow({**r, "returns": ";".join(f"{x:.3f}" for x in r["returns"])})
        atomic_write_bytes(self.evals_path, buf.getvalue().encode())
        self._write_meta()
        return row

    def update(self, **fields) -> None:
        self.meta.update(fields)
        self._write_meta()

    def finish(self, **fields) -> None:
        self.update(status="done", **fields)

    def stop(self) -> None:
        """Stopped before its budget (Ctrl-C, SIGTERM): run.json says so rather than "running";
        the same command continues the run from its last saved state."""
        self.update(status="stopped")

    @contextmanager
    def stopped_on_interrupt(self):
        """Around a run's loop: Ctrl-C, or SIGTERM through agent_cli, records "stopped" and unwinds."""
        try:
            yield
        except KeyboardInterrupt:
            self.stop()
            raise

    def _write_meta(self, status: Optional[str] = None) -> None:
        self.meta["wall_s"] = round(self.wall_s(), 2)
        if self._phase_s:
            timed = self._timed_at_start + time.perf_counter() - self._session_start
            self.meta["wall_by_phase"] = {"wall_s": round(timed, 2), "env_steps": self._timed_steps,
                                          "seconds": {k: round(v, 2) for k, v in sorted(self._phase_s.items())}}
        write_run_meta(self.meta_path, self.meta)


def write_run_meta(path: Path, meta: dict) -> None:
    """run.json, atomically (a killed run leaves the previous one whole)."""
    atomic_write_bytes(path, json.dumps(meta, indent=1, default=str).encode())
