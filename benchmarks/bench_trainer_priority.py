"""Controller first: demo episodes with the online trainer running vs not, in one process.

    .venv/bin/python benchmarks/bench_trainer_priority.py                 # 10 + 10 episodes (~5 min)
    .venv/bin/python benchmarks/bench_trainer_priority.py --episodes 4    # a short run
    .venv/bin/python benchmarks/bench_trainer_priority.py --contrast      # + trainer and logger at nice 0

Runs the demo's graph (`mbrl-ros demo`: sim + controller + logger [+ trainer], real processes
over real DDS, real time) once with `train:=false` (the baseline) and once with `train:=true`,
and reports side by side, per run: the controller's tick p50/p99 (its own /diagnostics, the
last 500 ticks, read at every episode's end), the p50/p99 gap between commands as received,
and the episode returns; the trainer-on figures also as a ratio of the baseline. With the
trainer on, only episodes during which it took gradient steps count (it starts once the logger
has closed its first segment). `--contrast` adds a third run with the trainer and logger at
nice 0 (their `niceness` parameters), to show what the priority buys.

Target (issue 29): tick p99 under the control period (50 ms at 20 Hz) with the trainer on.
Figures from a busy machine are noisy: the header prints its load average.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import isolate_ros, machine, p50_p99, print_header  # noqa: E402

isolate_ros()

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from mbrl_ros.bringup.demo import run_graph  # noqa: E402
from mbrl_ros.bringup.graph import sim_graph  # noqa: E402
from mbrl_ros.paths import config_dir  # noqa: E402


def params_with_niceness(out: Path, niceness: int) -> Path:
    """config/ros/sim.yaml with the logger's and trainer's `niceness` set."""
    sections = yaml.safe_load((config_dir() / "ros" / "sim.yaml").read_text())
    for name in ("logger", "trainer"):
        sections[name]["ros__parameters"]["niceness"] = niceness
    out.write_text(yaml.safe_dump(sections))
    return out


def run(label: str, given: dict, episodes: int, timeout_s: float, needs_training: bool) -> dict:
    nodes = sim_graph(given)
    period = 1.0 / 20.0

    def counted(monitor) -> list[int]:
        """Indices of the episodes that count: all, or (trainer on) those it trained during."""
        if not needs_training:
            return list(range(len(monitor.returns)))
        steps = [0] + monitor.trainer_steps
        return [i for i in range(len(monitor.returns)) if steps[i + 1] > steps[i] > 0]

    print(f"[bench] {label}: {', '.join(n.name for n in nodes)}", flush=True)
    t0 = time.monotonic()
    code, monitor = run_graph(nodes, timeout_s=timeout_s, record_commands=True,
                              until=lambda m: len(counted(m)) >= episodes)
    idx = counted(monitor)
    ticks = [monitor.ticks[i] for i in idx]
    p50s = [float(t.get("tick_p50_ms", "nan")) for t in ticks]
    p99s = [float(t.get("tick_p99_ms", "nan")) for t in ticks]
    gaps = []
    for i in idx:
        start = monitor.episode_ends[i - 1] if i > 0 else monitor.episode_ends[i] - 10.0
        t = np.array([x for x in monitor.command_times if start <= x <= monitor.episode_ends[i]])
        gaps.extend(np.diff(t).tolist())
    gap_p50, gap_p99 = p50_p99(np.array(gaps) * 1e3) if gaps else (float("nan"), float("nan"))
    returns = [monitor.returns[i] for i in idx]
    models = sorted({t.get("model_version", "?") for t in ticks})
    result = {"label": label, "episodes": len(idx), "code": code, "wall_s": time.monotonic() - t0,
              "tick_p50_ms": float(np.nanmedian(p50s)) if p50s else float("nan"),
              "tick_p99_ms": float(np.nanmax(p99s)) if p99s else float("nan"),
              "tick_p99_median_ms": float(np.nanmedian(p99s)) if p99s else float("nan"),
              "gap_p50_ms": gap_p50, "gap_p99_ms": gap_p99, "returns": returns,
              "train_steps": [monitor.trainer_steps[i] for i in idx], "models": models,
              "period_ms": period * 1e3}
    print(f"[bench] {label}: {len(idx)} episodes counted of {len(monitor.returns)}, exit {code}, "
          f"{result['wall_s']:.0f} s", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=10, help="episodes counted per run (issue 29: >= 10)")
    parser.add_argument("--contrast", action="store_true", help="also run the trainer and logger at nice 0")
    parser.add_argument("--timeout", type=float, default=0.0, help="wall seconds per run (0: 40 s per episode)")
    args = parser.parse_args()
    timeout = args.timeout or 40.0 * args.episodes + 120.0
    print_header("controller tick and returns, online trainer on vs off (mbrl-ros demo graph)",
                 {"episodes": args.episodes, "control": "20 Hz (50 ms)", "contrast": args.contrast})
    tmp = Path(tempfile.mkdtemp(prefix="bench_trainer_priority_"))
    runs = [run("trainer off", {"train": "false", "data_dir": str(tmp / "off")}, args.episodes, timeout, False),
            run("trainer on", {"train": "true", "data_dir": str(tmp / "on")}, args.episodes, timeout, True)]
    if args.contrast:
        runs.append(run("trainer on, nice 0", {"train": "true", "data_dir": str(tmp / "nice0"),
                                               "params_file": str(params_with_niceness(tmp / "nice0.yaml", 0))},
                        args.episodes, timeout, True))
    base = runs[0]
    print()
    print(f"machine: {machine()}")
    print("| run | episodes | tick p50 (ms) | tick p99 worst (ms) | p99 vs off | command gap p50 / p99 (ms) "
          "| mean return | returns |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        ratio = r["tick_p99_ms"] / base["tick_p99_ms"] if base["tick_p99_ms"] > 0 else float("nan")
        mean = np.mean(r["returns"]) if r["returns"] else float("nan")
        print(f"| {r['label']} | {r['episodes']} | {r['tick_p50_ms']:.1f} | {r['tick_p99_ms']:.1f} "
              f"(median {r['tick_p99_median_ms']:.1f}) | {ratio:.2f}x | {r['gap_p50_ms']:.1f} / {r['gap_p99_ms']:.1f} "
              f"| {mean:.1f} | {', '.join(f'{x:.0f}' for x in r['returns'])} |")
    on = runs[1]
    print(f"\ntrainer on: tick p99 {on['tick_p99_ms']:.1f} ms vs the {on['period_ms']:.0f} ms period: "
          f"{'under' if on['tick_p99_ms'] < on['period_ms'] else 'OVER'}; train steps at episode ends "
          f"{on['train_steps']}; models {on['models']}")
    ok = all(r["code"] == 0 and r["episodes"] >= args.episodes for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
