"""How late control ticks run while the model store loads a bundle in its watcher thread.

    .venv/bin/python benchmarks/bench_swap_stall.py                  # the shipped reacher bundle
    .venv/bin/python benchmarks/bench_swap_stall.py --busy 0 --seconds 10

A thread wakes every control period (20 Hz) and records how late it woke, while a
second thread loads the bundle over and over (what `ModelStore`'s watcher does once
per new model: hash, build the ONNX Runtime sessions, smoke-run). `--busy` processes
spin at normal priority beside it, as the sim and logger do on a small machine. The
loader runs twice in this one process: at the ticking thread's priority (the baseline),
then niced by `--nice`. ONNX Runtime holds the GIL while it builds a session, so a
niced loader keeps the ticking thread waiting longer (a priority inversion): that is
why the watcher is not niced (mbrl_ros/runtime/model_store.py).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import percentiles, print_header  # noqa: E402


def _spin() -> None:
    while True:
        pass


def _lateness_ms(bundle_dir: Path, nice: int, seconds: float, period: float) -> tuple[list[float], int]:
    """Tick lateness (ms) of this thread while another thread, niced by `nice`, loads bundles."""
    from mbrl_ros.runtime.bundle import load_bundle

    stop, loads = threading.Event(), [0]

    def loader():
        if nice:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        while not stop.is_set():
            load_bundle(bundle_dir)
            loads[0] += 1

    thread = threading.Thread(target=loader, daemon=True)
    thread.start()
    late, start = [], time.perf_counter()
    due = start + period
    while time.perf_counter() - start < seconds:
        time.sleep(max(0.0, due - time.perf_counter()))
        late.append((time.perf_counter() - due) * 1e3)
        due += period
    stop.set()
    thread.join()
    return late, loads[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=ROOT / "models" / "reacher2d",
                        help="model store (its CURRENT bundle) or a bundle folder")
    parser.add_argument("--busy", type=int, default=2, help="busy processes at normal priority")
    parser.add_argument("--nice", type=int, default=10, help="the niced loader's nice value")
    parser.add_argument("--seconds", type=float, default=20.0, help="per configuration")
    parser.add_argument("--rate-hz", type=float, default=20.0)
    args = parser.parse_args()

    from mbrl_ros.runtime.store_layout import read_current

    current = read_current(args.store)  # None: --store is a bundle folder itself
    bundle_dir = args.store / current if current else args.store
    print_header("tick lateness while a bundle loads in a background thread",
                 {"bundle": bundle_dir, "busy": args.busy, "seconds": args.seconds, "rate_hz": args.rate_hz})
    busy = [mp.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for proc in busy:
        proc.start()
    try:
        rows = []
        for nice in (0, args.nice):
            late, loads = _lateness_ms(bundle_dir, nice, args.seconds, 1.0 / args.rate_hz)
            p = percentiles(late)
            rows.append((nice, p["p50"], p["p99"], max(late), loads))
    finally:
        for proc in busy:
            proc.terminate()
    print(f"{'loader nice':>11} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'loads':>6}")
    for nice, p50, p99, worst, loads in rows:
        print(f"{nice:>11} {p50:>7.1f} {p99:>7.1f} {worst:>7.1f} {loads:>6}")
    print(f"max lateness, niced / same priority: {rows[1][3] / max(rows[0][3], 1e-9):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
