"""The DeepMind Control comparison (issue 31): our learning curves against the published scores.

    python -m mbrl_ros.agent.dmc_report --results results --out docs
      -> docs/img/dmc_<task>.png   our evaluation return vs frames (each seed, and the mean over seeds
                                   with its 95 % bootstrap band) with the published 100k scores as marks
                                   and their 500k scores as dotted lines (docs/dmc_reference.json)
      -> docs/dmc_results.md       per task: ours at 100k frames (mean, 95 % bootstrap CI over seeds,
                                   seeds), the published scores, wall-clock seconds per 1000 frames
      -> docs/dmc_results.json     the same numbers, machine readable
      -> docs/img/dmc_tuning_<task>.png  every tuning run of the task (any config variant
                                   dmc_<task>*, seeds >= 100, their own evaluation episodes), one
                                   line each, for the experiments log (never the results page)

Reads results/dmc_<task>/<method>/seed<S>/evals.csv (mbrl_ros.agent.runlog; `frames` = agent steps
x action repeat, the unit of the published scores) and run.json where present (tuning runs are
skipped: they are never reported). A task without runs gets the published points only.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import numpy as np

from mbrl_ros.agent import protocol
from mbrl_ros.agent.runlog import read_evals

TASKS = ("cartpole_swingup", "reacher_easy", "cheetah_run", "walker_walk")
REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "dmc_reference.json"
AT_FRAMES = 100_000
BOOTSTRAP_SAMPLES = 10_000
MARKERS = {"DreamerV3": "*", "DrQ-v2": "s", "CURL": "^", "SAC (pixels)": "v"}


def load_reference(path: Path = REFERENCE) -> dict:
    ref = json.loads(Path(path).read_text())
    missing = [t for t in TASKS if t not in ref.get("scores", {})]
    if missing or "source" not in ref:
        raise ValueError(f"{path}: needs 'source' and scores for {', '.join(TASKS)} (missing: {missing})")
    return ref


def bootstrap_ci(values, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over `values` (one per seed); (v, v) for one seed."""
    x = np.asarray(values, np.float64)
    if x.size == 0:
        raise ValueError("bootstrap_ci: no values")
    rng = np.random.default_rng(seed)  # fixed: the report regenerates the same table
    means = x[rng.integers(0, x.size, (samples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _run_meta(folder: Path) -> dict:
    """A run folder's run.json, {} where it has none."""
    path = folder / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _reported_runs(results: Path, task: str, method: str):
    """(seed, folder, run.json or {}) of each run of `method` on dmc_<task> that is not a tuning run."""
    for folder in sorted((Path(results) / f"dmc_{task}" / method).glob("seed*")):
        meta = _run_meta(folder)
        if protocol.status(meta) != "tuning":
            yield int(folder.name[len("seed"):]), folder, meta


def load_runs(results: Path, task: str, method: str = "mbrl") -> dict[int, list[dict]]:
    """seed -> evals.csv rows of the reported runs of `method` on dmc_<task>."""
    runs = {}
    for seed, folder, _ in _reported_runs(results, task, method):
        rows = read_evals(folder / "evals.csv")
        if rows:
            runs[seed] = rows
    return runs


PHASES = ("train", "act", "env", "eval", "export", "save")


def load_phases(results: Path, task: str, method: str = "mbrl") -> dict[int, dict]:
    """seed -> {"frames": frames timed, phase: seconds per 1000 frames, ..., "other", "total"} of the
    reported runs whose run.json has "wall_by_phase" (runlog.RunLog.timed; a run's stretches from
    before the timing existed are not in it). Runs without it are left out."""
    out = {}
    for seed, _, meta in _reported_runs(results, task, method):
        phases = meta.get("wall_by_phase")
        if not phases or not phases.get("env_steps"):
            continue
        frames = int(phases["env_steps"]) * int(meta.get("frame_skip", 1))
        per = {k: float(v) * 1000.0 / frames for k, v in phases["seconds"].items()}
        total = float(phases["wall_s"]) * 1000.0 / frames
        out[seed] = {"frames": frames, **per, "other": total - sum(per.values()), "total": total}
    return out


def phase_section(phases: dict[str, dict[int, dict]]) -> str:
    """Markdown section: where each run's wall clock went, seconds per 1000 frames (empty if no run
    timed it)."""
    rows = [(task, seed, p) for task, by_seed in phases.items() for seed, p in sorted(by_seed.items())]
    if not rows:
        return ""
    lines = ["| run | frames timed | " + " | ".join(PHASES) + " | other | total |",
             "|" + "---|" * (4 + len(PHASES))]
    for task, seed, p in rows:
        cells = " | ".join(f"{p.get(k, 0.0):.0f}" for k in (*PHASES, "other", "total"))
        lines.append(f"| {task} seed {seed} | {p['frames']} | {cells} |")
    return ("\n## Where the wall clock goes\n\n"
            "Seconds per 1000 frames by phase, over the `agent run` invocations that timed them (run.json "
            "\"wall_by_phase\"; a run's stretches from before the timing existed are not in it): "
            "train = gradient steps, act = the controller's tick (belief filter + plan), env = the suite's step and render, eval = the evaluation episodes, "
            "export = ONNX export + parity check + model swap, save = checkpoint, other = the rest "
            "(episode cache writes, bookkeeping). A snapshot restore's replay is outside these (run.json "
            "\"restores\").\n\n" + "\n".join(lines) + "\n")


def load_tuning_runs(results: Path, task: str, method: str = "mbrl") -> dict[str, list[dict]]:
    """'<variant> s<seed>' -> evals.csv rows of every tuning run of `task`: the base config's
    (dmc_<task>) and its variants' (dmc_<task>_<variant>), marked tuning in run.json."""
    runs = {}
    for task_dir in sorted(Path(results).glob(f"dmc_{task}*")):
        variant = task_dir.name[len(f"dmc_{task}"):].lstrip("_")
        if variant and not task_dir.name.startswith(f"dmc_{task}_"):
            continue  # another task whose name starts the same way
        for folder in sorted((task_dir / method).glob("seed*")):
            if protocol.status(_run_meta(folder)) != "tuning":
                continue
            rows = read_evals(folder / "evals.csv")
            if rows:
                runs[f"{variant or 'base config'} s{folder.name[len('seed'):]}"] = rows
    return runs


def plot_tuning(task: str, runs: dict[str, list[dict]], reference: dict, path: Path) -> None:
    """One line per tuning run (mean of its evaluation episodes), the published 100k points as marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for label, rows in runs.items():
        ax.plot([r["frames"] for r in rows], [r["return_mean"] for r in rows], marker=".", label=label)
    for name, scores in reference["scores"][task].items():
        ax.plot([reference["frames"][0]], [scores[0]], linestyle="none", marker=MARKERS.get(name, "o"), color="k",
                alpha=0.5, label=f"{name} at 100k (published)")
    ax.set_xlim(0, AT_FRAMES * 1.05)
    ax.set_ylim(0, 1000)
    ax.set_xlabel("environment frames (agent steps x action repeat)")
    ax.set_ylabel("evaluation return, tuning episodes")
    ax.set_title(f"DMC {task}: tuning runs (never reported)")
    ax.legend(fontsize=6, loc="upper left", ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curve(runs: dict[int, list[dict]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(frames, mean, ci_low, ci_high) at the frame counts every seed has reached."""
    common = sorted(set.intersection(*(set(r["frames"] for r in rows) for rows in runs.values())))
    mean, lo, hi = [], [], []
    for f in common:
        vals = [next(r["return_mean"] for r in rows if r["frames"] == f) for rows in runs.values()]
        mean.append(float(np.mean(vals)))
        a, b = bootstrap_ci(vals)
        lo.append(a), hi.append(b)
    return np.array(common), np.array(mean), np.array(lo), np.array(hi)


def summarise(task: str, runs: dict[int, list[dict]], reference: dict) -> dict:
    """One task's row: ours at AT_FRAMES (or the last frame count all seeds reached), the published
    scores, and wall-clock seconds per 1000 frames (mean over seeds, evaluations included)."""
    row = {"task": task, "published": reference["scores"][task], "seeds": sorted(runs)}
    if not runs:
        return row
    frames, mean, lo, hi = curve(runs)
    at = AT_FRAMES if AT_FRAMES in frames else int(frames[frames <= AT_FRAMES].max(initial=frames.min()))
    i = int(np.where(frames == at)[0][0])
    per_seed = {s: next(r["return_mean"] for r in rows if r["frames"] == at) for s, rows in runs.items()}
    walls = [rows[-1]["wall_s"] * 1000.0 / rows[-1]["frames"] for rows in runs.values() if rows[-1]["frames"] > 0]
    # seeds short of AT_FRAMES are runs in progress (stopped to continue on the next machine): the
    # row is quoted at the last frame count every seed reached and says which seeds are behind
    in_progress = {s: rows[-1]["frames"] for s, rows in runs.items() if rows[-1]["frames"] < AT_FRAMES}
    row.update(frames=at, mean=float(mean[i]), ci=[float(lo[i]), float(hi[i])], per_seed=per_seed,
               in_progress=in_progress, wall_s_per_1000_frames=float(np.mean(walls)) if walls else None)
    return row


def plot_task(task: str, runs: dict[int, list[dict]], reference: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.0, 3.8))
    for n, (seed, rows) in enumerate(sorted(runs.items())):  # each seed thin, so a lone run is not read as a mean
        ax.plot([r["frames"] for r in rows], [r["return_mean"] for r in rows], color="tab:blue", lw=0.6,
                alpha=0.5, marker=".", ms=3, label="ours, one line per seed" if n == 0 else None)
    if len(runs) > 1:
        frames, mean, lo, hi = curve(runs)
        ax.plot(frames, mean, color="tab:blue", label=f"ours (mbrl), mean of {len(runs)} seeds")
        ax.fill_between(frames, lo, hi, color="tab:blue", alpha=0.2, label="95 % bootstrap CI")
    # our curve ends at 100k frames: the axis does too (a 500k axis squeezes it into a fifth of the
    # width); each method's 100k score is a mark, its 500k score a dotted line of the same colour
    # (DreamerV3's 500k line is the moonshot target at 100k frames)
    colours = {"DreamerV3": "tab:orange", "DrQ-v2": "tab:green", "CURL": "tab:purple", "SAC (pixels)": "tab:red"}
    for i, (name, (at_100k, at_500k)) in enumerate(reference["scores"][task].items()):
        c = colours.get(name, "k")  # marks side by side: DreamerV3 and DrQ-v2 are 5 apart on cartpole
        ax.plot([AT_FRAMES + 1500 * i], [at_100k], linestyle="none", marker=MARKERS.get(name, "o"), color=c, ms=8,
                label=f"{name}: 100k (mark), 500k (dotted), published")
        ax.axhline(at_500k, color=c, linestyle=":", lw=1)
    ax.set_xlim(0, AT_FRAMES * 1.08)
    ax.set_ylim(0, 1000)
    ax.axvline(AT_FRAMES, color="grey", lw=0.5)
    ax.set_xlabel("environment frames (agent steps x action repeat)")
    ax.set_ylabel("evaluation return (1000 frames)")
    ax.set_title(f"DMC {task} from pixels")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the curves fill the axes
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(rows: list[dict], reference: dict) -> str:
    methods = list(reference["scores"][TASKS[0]])
    head = ("| task | ours at 100k frames: mean [95 % CI] (seeds) | " + " | ".join(methods)
            + " | wall s / 1000 frames |")
    lines = [head, "|" + "---|" * (3 + len(methods))]
    for r in rows:
        if "mean" in r:
            short = "" if r["frames"] == AT_FRAMES else f" (at {r['frames']} frames)"
            ci = f" [{r['ci'][0]:.0f}, {r['ci'][1]:.0f}]" if len(r["seeds"]) > 1 else ""  # one seed has no interval
            ours = f"{r['mean']:.0f}{ci} ({len(r['seeds'])}){short}"
            wall = f"{r['wall_s_per_1000_frames']:.0f}" if r["wall_s_per_1000_frames"] is not None else "-"
        else:
            ours, wall = "no runs", "-"
        pub = " | ".join(f"{s[0]} ({s[1]})" for s in (r["published"][m] for m in methods))
        lines.append(f"| {r['task']} | {ours} | {pub} | {wall} |")
    behind = [f"{r['task']} seed {s} at {f} frames" for r in rows for s, f in sorted(r.get("in_progress", {}).items())]
    if behind:
        lines += ["", "Runs in progress (not yet at 100k frames; each row above is quoted at the last frame count all "
                  "of its seeds reached): " + "; ".join(behind) + "."]
    return "\n".join(lines)


def write_report(results: Path, out: Path, reference_path: Path = REFERENCE, method: str = "mbrl") -> list[dict]:
    reference = load_reference(reference_path)
    rows, phases = [], {}
    for task in TASKS:
        runs = load_runs(results, task, method)
        phases[task] = load_phases(results, task, method)
        rows.append(summarise(task, runs, reference))
        if phases[task]:
            rows[-1]["wall_s_per_1000_frames_by_phase"] = phases[task]
        plot_task(task, runs, reference, Path(out) / "img" / f"dmc_{task}.png")
        tuning = load_tuning_runs(results, task, method)
        if tuning:
            plot_tuning(task, tuning, reference, Path(out) / "img" / f"dmc_tuning_{task}.png")
    text = ("# DeepMind Control from pixels: ours against the published scores\n\n"
            "Generated by `python -m mbrl_ros.agent.dmc_report` (mbrl_ros/agent/dmc_report.py); do not edit.\n"
            f"Published: 100k (500k) frames, {reference['source']}\n\n"
            f"{table(rows, reference)}\n\n"
            "95 % CI: percentile bootstrap of the mean over seeds (10 000 resamples, fixed seed). Wall clock:\n"
            "a run's total seconds from its start to its last evaluation (training, acting, evaluations), per\n"
            "1000 frames of that evaluation, mean over seeds. The phase table below spans each run's timed\n"
            "stretch up to where it stopped, past its last evaluation while a run is in progress, so the\n"
            "two totals can differ by a few percent.\n\n"
            + "\n".join(f"![{t}](img/dmc_{t}.png)" for t in TASKS) + "\n" + phase_section(phases))
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "dmc_results.md").write_text(text)
    (Path(out) / "dmc_results.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mbrl_ros.agent.dmc_report", description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--reference", type=Path, default=REFERENCE)
    p.add_argument("--method", default="mbrl")
    args = p.parse_args(argv)
    try:
        rows = write_report(args.results, args.out, args.reference, args.method)
    except (ValueError, FileNotFoundError, json.JSONDecodeError) as exc:
        raise SystemExit(f"dmc_report: {exc}") from None
    print(table(rows, load_reference(args.reference)))
    tuning = sorted(p.name for p in (args.out / "img").glob("dmc_tuning_*.png"))
    print(f"wrote {args.out / 'dmc_results.md'} and {len(TASKS)} plots in {args.out / 'img'}"
          + (f", tuning runs in {', '.join(tuning)}" if tuning else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
