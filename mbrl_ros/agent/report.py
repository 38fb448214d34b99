"""Learning-curve plots and threshold tables from saved run folders (no re-running).

    write_report(Path("results"), Path("docs"), Path("config/agent/report/headline.yaml"))
      -> docs/img/agent_<task>.png        return vs env steps, mean over seeds, min-max band
      -> docs/results_tables.md           the headline comparisons (first and sustained crossing, 95 %
                                          bootstrap intervals over seeds, ratios), then per task and
                                          method: steps to threshold, ratios, final return, wall
      -> docs/results_summary.json        the same numbers, machine readable

The protocol (docs/protocol.md, mbrl_ros/agent/protocol.py): tuning runs are never reported (they are
counted, and their seeds are burnt for their method on their env); a run that claims the protocol but
breaks it, or whose seed was used for tuning, stops the report with a one-line error; runs recorded
before the protocol are reported and marked "pre-protocol".

Reads results/<task>/<method>/seed<S>/{evals.csv, run.json} (mbrl_ros.agent.runlog), and
results/<task>/expert.json where `mbrl-ros agent expert` wrote one (drawn as a reference line).
Unfinished runs are included with the evaluations they have (their status says so), once they
have been evaluated past env step 0.

A variant of a task (another config of ours on the same env, threshold and evaluation
episodes, e.g. inverted_pendulum_value next to inverted_pendulum) has no baseline runs of
its own: it is compared with the SAC/PPO runs of the task it shares those with, and the
tables and plots say whose runs they are.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from mbrl_ros.agent import protocol
from mbrl_ros.agent.config import METHODS
from mbrl_ros.agent.expert import expert_for, load_experts
from mbrl_ros.agent.runlog import read_evals

LEVELS = (0.25, 0.5, 1.0)  # fractions of the threshold for the "first reached" table
COLORS = {"mbrl": "tab:blue", "sac": "tab:orange", "ppo": "tab:green", "sac_utd": "tab:red",
          "ppo_zoo": "tab:olive", "sac_drq": "tab:purple"}
LABELS = {"mbrl": "ours (world model + CEM, ONNX runtime)", "sac": "SAC (SB3)", "ppo": "PPO (SB3)",
          "sac_utd": "SAC, several updates per step (SB3)", "ppo_zoo": "PPO, rl-zoo tuned (SB3)",
          "sac_drq": "SAC + random shift, DrQ-style (SB3)"}
BOOTSTRAP_RESAMPLES = 10_000


def _all_runs(results: Path) -> list[dict]:
    """Every run folder's run.json + 'evals' rows + 'folder', tuning runs and unstarted ones included."""
    out = []
    for meta_path in sorted(Path(results).glob("*/*/seed*/run.json")):
        meta = json.loads(meta_path.read_text())
        out.append({**meta, "evals": read_evals(meta_path.parent / "evals.csv"), "folder": str(meta_path.parent)})
    return out


def load_runs(results: Path) -> dict[str, dict[str, list[dict]]]:
    """{task: {method: [run, ...]}} of the runs to report, run = run.json contents + 'evals' rows +
    'folder' + 'protocol_note'. Tuning runs are left out; a run the protocol refuses raises ProtocolError."""
    every = _all_runs(results)
    burnt = protocol.tuning_seeds(every)
    runs: dict[str, dict[str, list[dict]]] = {}
    for run in every:
        if protocol.status(run) == "tuning":
            continue
        note = protocol.check_reportable(run, burnt)
        evals = run["evals"]
        # A run evaluated only at env step 0 has not trained yet: its one point is the untrained
        # policy's, and counting it would pull the final-return mean and the steps-run figures
        # towards a seed that has not started.
        if not evals or int(evals[-1]["env_steps"]) == 0:
            continue
        run["protocol_note"] = note
        run["tuning_seed"] = int(run["seed"]) in burnt.get((run.get("env_id", ""), run["method"]), {})
        run["episodes_seen_in_tuning"] = protocol.chosen_on_reported_episodes(run)
        runs.setdefault(run["task"], {}).setdefault(run["method"], []).append(run)
    return runs


def count_tuning_runs(results: Path) -> dict[str, dict]:
    """{config: {'env_id', 'runs'}} of the tuning runs (they are counted, never reported)."""
    out: dict[str, dict] = {}
    for run in _all_runs(results):
        if protocol.status(run) == "tuning":
            entry = out.setdefault(run["task"], {"env_id": run.get("env_id", ""), "runs": 0})
            entry["runs"] += 1
    return out


def _tuning_note(task: str, env_id: str, tuning_runs: dict[str, dict]) -> list[str]:
    """The line under a config's table: its own tuning runs, and those of the other configs on its env
    (a variant's trials inform the base config too, so a reader of one table sees them all)."""
    own = tuning_runs.get(task, {}).get("runs", 0)
    others = sorted((name, entry["runs"]) for name, entry in tuning_runs.items()
                    if name != task and entry["env_id"] == env_id)
    if not own and not others:
        return []
    text = f"Tuning runs of this config (not reported, their seeds never are): {own}"
    if others:
        text += "; of other configs on the same env: " + ", ".join(f"{name} {n}" for name, n in others)
    return ["", text + "."]


BASELINES = tuple(m for m in METHODS if m != "mbrl")


def _comparable(run: dict) -> tuple:
    """What must match for two tasks' runs to be compared: env, threshold, episodes per evaluation,
    and whether the runs follow docs/protocol.md (a re-run under it never lends its baselines to a
    pre-protocol config, nor borrows theirs).

    (Evaluation episodes use the same fixed seeds everywhere; the spacing of evaluations only
    sets how finely "steps to threshold" is resolved, and differs between runs of one task too.)
    """
    evaluation = (run.get("config") or {}).get("eval") or {}
    return run["env_id"], float(run["threshold"]), evaluation.get("episodes"), "protocol" in run


def share_baselines(runs: dict[str, dict[str, list[dict]]]) -> dict[str, dict[str, str]]:
    """Give each task without SAC/PPO runs those of a comparable task; {task: {method: donor task}}."""
    shared: dict[str, dict[str, str]] = {}
    for task, methods in runs.items():
        key = _comparable(next(iter(methods.values()))[0])
        for method in BASELINES:
            if method in methods:
                continue
            # (runs are only handed out after this loop, so every donor's runs are its own)
            donors = [t for t, m in runs.items() if t != task and method in m and _comparable(m[method][0]) == key]
            if donors:
                shared.setdefault(task, {})[method] = donors[0]
    for task, methods in shared.items():
        for method, donor in methods.items():
            runs[task][method] = runs[donor][method]
    return shared


def _method_label(method: str, donor: Optional[str]) -> str:
    return method if donor is None else f"{method} (runs of {donor})"


def steps_to_threshold(evals: list[dict], threshold: float) -> Optional[int]:
    """Env steps at the first evaluation whose mean return reaches the threshold (None: never)."""
    for row in evals:
        if row["return_mean"] >= threshold:
            return int(row["env_steps"])
    return None


def sustained_steps(evals: list[dict], threshold: float) -> Optional[int]:
    """Env steps at the first evaluation from which every later evaluation's mean return stays at or
    above the threshold, within the steps run (None: the last evaluation is below it)."""
    found = None
    for row in evals:
        if row["return_mean"] >= threshold:
            found = int(row["env_steps"]) if found is None else found
        else:
            found = None
    return found


def bootstrap_ci(samples: list[list[float]], statistic: str = "mean") -> Optional[list[float]]:
    """95 % percentile-bootstrap interval over seeds (scipy.stats.bootstrap, each sample resampled
    on its own) of the mean of one sample, or of mean(samples[0]) / mean(samples[1]) ("ratio").
    None with fewer than 2 seeds in a sample. Seeded, so a regenerated table is the same."""
    data = [np.asarray(s, dtype=float) for s in samples]
    if any(len(d) < 2 for d in data):
        return None
    if statistic == "mean":
        def stat(x, axis=-1):
            return np.mean(x, axis=axis)
    else:
        def stat(x, y, axis=-1):
            return np.mean(x, axis=axis) / np.mean(y, axis=axis)
    if all(np.all(d == d[0]) for d in data):  # no spread: the interval is the point
        value = float(stat(*[d[None] for d in data], axis=-1)[0])
        return [value, value]
    try:
        from scipy.stats import bootstrap
    except ImportError as exc:
        raise ImportError("the report's intervals need scipy (requirements/dev.txt; ./mbrl.sh setup installs it)") from exc
    res = bootstrap(tuple(data), stat, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95,
                    method="percentile", vectorized=True, paired=False, rng=np.random.default_rng(0))
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def _crossing(per_seed: list[Optional[int]], budgets: list[int]) -> dict:
    """Mean over seeds of a crossing metric, a seed that never crossed counted at the steps it ran (so
    the mean is then a lower bound), with its bootstrap interval."""
    values = [s if s is not None else b for s, b in zip(per_seed, budgets)]
    return {"per_seed": per_seed, "reached": sum(s is not None for s in per_seed),
            "mean": float(np.mean(values)), "lower_bound": any(s is None for s in per_seed),
            "ci95": bootstrap_ci([values]), "values": values}


def _config_budget(run: dict) -> int:
    """The budget the run's config file gives it; runs logged before `config_budget` was recorded
    carry only the budget they were run to."""
    return int(run.get("config_budget") or run.get("budget") or 0)


def summarize_method(runs: list[dict], threshold: float, start: float = 0.0) -> dict:
    reached = [steps_to_threshold(r["evals"], threshold) for r in runs]
    budgets = [int(r["evals"][-1]["env_steps"]) for r in runs]  # steps actually run (unfinished runs: fewer)
    hit = [s for s in reached if s is not None]
    finals = [r["evals"][-1]["return_mean"] for r in runs]
    first = _crossing(reached, budgets)
    sustained = _crossing([sustained_steps(r["evals"], threshold) for r in runs], budgets)
    return {
        "seeds": [int(r["seed"]) for r in runs],
        "first": first,
        "sustained": sustained,
        "protocol": [protocol.status(r) for r in runs],
        "protocol_notes": sorted({r.get("protocol_note") for r in runs if r.get("protocol_note")}),
        "tuning_seeds": [int(r["seed"]) for r in runs if r.get("tuning_seed")],  # pre-protocol runs only
        "episodes_seen_in_tuning": sum(bool(r.get("episodes_seen_in_tuning")) for r in runs),
        "eval_episodes": sorted({len(row["returns"]) for r in runs for row in r["evals"]}),
        # Finished: ran its config's budget (a run told to stop earlier with --budget is not).
        "done": [r.get("status") == "done" and steps >= _config_budget(r) for r, steps in zip(runs, budgets)],
        "steps_to_threshold": reached,
        "reached": len(hit),
        # Mean over all seeds; a seed that never reached counts with its budget (a lower bound).
        "steps_to_threshold_mean": float(np.mean([s if s is not None else b for s, b in zip(reached, budgets)])),
        "lower_bound": len(hit) < len(runs),
        "budget": max(budgets),
        "steps_run": budgets,  # per seed: unfinished seeds can stop at different steps
        "planned_budget": max(_config_budget(r) for r in runs),
        "frame_skip": int(runs[0].get("frame_skip", 1)),
        "final_return_mean": float(np.mean(finals)),
        "final_return_std": float(np.std(finals)),
        **_at_last_common_step(runs),
        "wall_s_mean": float(np.mean([r["evals"][-1]["wall_s"] for r in runs])),
        # Earlier milestones: env steps to first reach each fraction of the threshold, per seed.
        "levels": {f"{lv:g}": [steps_to_threshold(r["evals"], start + lv * (threshold - start)) for r in runs]
                   for lv in LEVELS},
    }


def _at_last_common_step(runs: list[dict]) -> dict:
    """The mean return where every seed has an evaluation, the last such step: seeds stopped
    apart have last evaluations at different steps, and their mean alone mixes those steps."""
    steps, vals, _ = common_points_and_tails(runs)
    if not len(steps):
        return {}
    return {"common_step": int(steps[-1]), "common_return_mean": float(np.mean(vals[-1])),
            "common_return_std": float(np.std(vals[-1]))}


def summarize(runs: dict[str, dict[str, list[dict]]], shared: Optional[dict[str, dict[str, str]]] = None,
              experts: Optional[list[dict]] = None) -> dict:
    shared = shared or {}
    out = {}
    for task, methods in runs.items():
        first = next(iter(methods.values()))[0]
        threshold = float(first["threshold"])
        # Milestones lie between the random policy's return (our step-0 evaluation) and the threshold.
        start = [r["evals"][0]["return_mean"] for r in methods.get("mbrl", []) if r["evals"][0]["env_steps"] == 0]
        start_return = float(np.mean(start)) if start else 0.0
        table = compare(methods, threshold, start_return)
        for m, row in table.items():
            if m in shared.get(task, {}):
                row["runs_of"] = shared[task][m]
        out[task] = {"threshold": threshold, "env_id": first["env_id"], "random_return": start_return,
                     "methods": table}
        env_id, _, episodes, _ = _comparable(first)
        expert = expert_for(experts or [], env_id, (first.get("config") or {}).get("env_kwargs") or {}, episodes)
        if expert:
            out[task]["expert"] = {k: expert[k] for k in ("expert", "return_mean", "returns", "task", "command")}
    return out


def compare(methods: dict[str, list[dict]], threshold: float, start: float = 0.0) -> dict:
    """{method: summarize_method row} with each baseline's ratio to ours, by both metrics, and the
    ratios' bootstrap intervals (given only where every seed of ours crossed)."""
    table = {m: summarize_method(methods[m], threshold, start) for m in METHODS if m in methods}
    ours = table.get("mbrl")
    for m, row in table.items():
        if not ours or m == "mbrl":
            continue
        for metric in ("first", "sustained"):
            o, b = ours[metric], row[metric]
            if o["reached"] == len(ours["seeds"]) and o["mean"] > 0:
                b["ratio_vs_ours"] = b["mean"] / o["mean"]
                b["ratio_ci95"] = bootstrap_ci([b["values"], o["values"]], "ratio")
        if "ratio_vs_ours" in row["first"]:
            row["ratio_vs_ours"] = row["first"]["ratio_vs_ours"]
    return table


def headline(runs: dict[str, dict[str, list[dict]]], spec: list[dict]) -> list[dict]:
    """The headline comparisons: per spec row ({label, config, threshold?}) the config's runs and the
    baselines it is compared with, at the row's threshold (the config's own when not given)."""
    out = []
    if not {item["config"] for item in spec} & set(runs):
        return []  # another results folder (none of the headline configs): no headline table
    for item in spec:
        task = item["config"]
        if task not in runs:  # kept as a row that says so, not dropped
            out.append({"label": item["label"], "config": task, "threshold": item.get("threshold"),
                        "section": item.get("section"), "methods": {}})
            continue
        methods = runs[task]
        first = next(iter(methods.values()))[0]
        threshold = float(item.get("threshold", first["threshold"]))
        out.append({"label": item["label"], "config": task, "threshold": threshold, "env_id": first["env_id"],
                    "section": item.get("section"), "methods": compare(methods, threshold)})
    return out


def common_points_and_tails(runs: list[dict]) -> tuple[np.ndarray, list[list[float]], list[tuple]]:
    """The eval points every seed has reached with the returns there, and each seed's curve past them.

    Seeds share the eval schedule, so the mean and band are drawn where all of them have a figure;
    a seed run further (an unfinished run stopped later than the others) would otherwise vanish
    from the plot, so its own curve from the last common point on is returned as a tail.
    """
    by_step: dict[int, list[float]] = {}
    for run in runs:
        for row in run["evals"]:
            by_step.setdefault(row["env_steps"], []).append(row["return_mean"])
    steps = np.array(sorted(s for s, v in by_step.items() if len(v) == len(runs)))
    vals = [by_step[s] for s in steps]
    last = steps[-1] if len(steps) else -1
    tails = []
    for run in runs:
        tail = [(row["env_steps"], row["return_mean"]) for row in run["evals"] if row["env_steps"] >= last]
        if len(tail) > 1:
            tails.append((np.array([s for s, _ in tail]), np.array([r for _, r in tail])))
    return steps, vals, tails


def plot_task(task: str, methods: dict[str, list[dict]], threshold: float, path: Path,
              shared: Optional[dict[str, str]] = None, expert: Optional[dict] = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method in METHODS:
        if method not in methods:
            continue
        steps, vals, tails = common_points_and_tails(methods[method])
        n = len(methods[method])
        mean = np.array([np.mean(v) for v in vals])
        x = np.maximum(steps, 1)  # step 0 on a log axis
        label = _method_label(f"{LABELS[method]}, {n} seed{'s' * (n > 1)}", (shared or {}).get(method))
        ax.plot(x, mean, color=COLORS[method], label=label)
        ax.fill_between(x, [min(v) for v in vals], [max(v) for v in vals], color=COLORS[method], alpha=0.2)
        for i, (tail_steps, tail_returns) in enumerate(tails):
            ax.plot(np.maximum(tail_steps, 1), tail_returns, color=COLORS[method], ls=":", lw=1.2,
                    label=f"{LABELS[method]}: single seeds run further" if i == 0 else None)
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    if expert:
        ax.axhline(expert["return_mean"], color="0.45", ls="-.", lw=1,
                   label=f"scripted expert ({expert['return_mean']:.1f})")
    ax.set_xscale("log")
    ax.set_xlabel("env steps (agent actions), log scale; step 0 drawn at 1")
    ax.set_ylabel("eval return (mean of eval episodes)")
    ax.set_title(f"{task}: mean over seeds, band = min..max")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _steps_run_text(row: dict) -> str:
    """The env steps the seeds ran: one figure, or the range when unfinished seeds stopped apart
    (the furthest seed alone would overstate what the other seeds saw)."""
    run = row["steps_run"]
    return f"{min(run)}" if min(run) == max(run) else f"{min(run)}-{max(run)}"


def _fmt_steps(row: dict) -> str:
    if row["reached"] == 0:
        return f"not reached (in {_steps_run_text(row)})"
    text = f"{row['steps_to_threshold_mean']:.0f}"
    if row["lower_bound"]:
        text = f">= {text} ({row['reached']}/{len(row['seeds'])} reached)"
    return text


def _final_return_text(row: dict) -> str:
    """Mean ± std of each seed's last evaluation; when the seeds stopped apart, also the figure
    at the last step they all reached, so the two are not read as one step's."""
    text = f"{row['final_return_mean']:.1f} ± {row['final_return_std']:.1f}"
    run = row["steps_run"]
    if min(run) == max(run) or "common_step" not in row:
        return text
    return (f"{text} (last evals, at {_steps_run_text(row)}); all seeds at {row['common_step']}: "
            f"{row['common_return_mean']:.1f} ± {row['common_return_std']:.1f}")


def _ci_text(ci: Optional[list[float]], fmt: str = ".0f", suffix: str = "") -> str:
    return "" if ci is None else f" [{ci[0]:{fmt}}{suffix}, {ci[1]:{fmt}}{suffix}]"


def crossing_text(metric: dict) -> str:
    """'1786 [1571, 1929]' / '>= 18333 [...] (2/3)' / 'not reached': mean over seeds with its interval."""
    n = len(metric["per_seed"])
    if metric["reached"] == 0:
        run = metric["values"]  # the steps each seed ran
        steps = f"{min(run)}" if min(run) == max(run) else f"{min(run)}-{max(run)}"
        return f"not reached in {steps} (0/{n})"
    bound = ">= " if metric["lower_bound"] else ""
    count = f" ({metric['reached']}/{n})" if metric["lower_bound"] else ""
    return f"{bound}{metric['mean']:.0f}{_ci_text(metric['ci95'])}{count}"


def ratio_text(metric: dict, method: str) -> str:
    if method == "mbrl":
        return "1"
    ratio = metric.get("ratio_vs_ours")
    if ratio is None:
        return "n/a"
    bound = ">= " if metric["lower_bound"] else ""
    return f"{bound}{ratio:.1f}x{_ci_text(metric.get('ratio_ci95'), '.1f', 'x')}"


def protocol_text(row: dict, method: Optional[str] = None, headline_task: bool = False) -> str:
    """How the method's runs stand with the protocol (docs/protocol.md)."""
    counts: dict[str, int] = {}
    for state in row["protocol"]:
        counts[state] = counts.get(state, 0) + 1
    parts = [state if len(counts) == 1 else f"{n} {state}" for state, n in counts.items()]
    flags = []
    if headline_task and len(row["seeds"]) < protocol.MIN_REPORTED_SEEDS:
        n = len(row["seeds"])
        flags.append(f"{n} seed{'s' * (n != 1)} (protocol: >= {protocol.MIN_REPORTED_SEEDS})")
    if min(row["eval_episodes"], default=0) < protocol.MIN_EVAL_EPISODES:
        flags.append(f"{'/'.join(map(str, row['eval_episodes']))} episodes per evaluation "
                     f"(protocol: >= {protocol.MIN_EVAL_EPISODES})")
    tuned = row.get("tuning_seeds") or []
    if tuned:
        flags.append(f"seed{'s' * (len(tuned) > 1)} {', '.join(map(str, tuned))} also used for tuning")
    if row.get("episodes_seen_in_tuning"):
        flags.append("config chosen on trials evaluated on these evaluation episodes (pre-protocol)")
    if method == "mbrl" and "pre-protocol" in counts:
        # Every pre-protocol run of ours predates the one control path (the protocol tooling landed after it)
        flags.append("actions from the agent's own planner loop, before the one control path")
    if any(not done for done in row["done"]):
        flags.append(f"{len(row['done']) - sum(row['done'])} stopped short of the budget")
    return ", ".join(parts) + (f": {'; '.join(flags)}" if flags else "")


def headline_markdown(rows: list[dict]) -> list[str]:
    lines = ["## Headline comparisons", "",
             "From `config/agent/report/headline.yaml`. Env steps to the threshold, mean over seeds with a 95 % "
             "percentile-bootstrap interval over seeds (scipy.stats.bootstrap, 10000 resamples); a seed "
             "that never crossed counts at the steps it ran, and the mean is then a lower bound (>=). "
             "**First**: the first evaluation whose mean return reaches the threshold. **Sustained**: "
             "the first evaluation from which every later one stays at or above it (within the steps "
             "run). Ratios: baseline mean / ours, interval from resampling both methods' seeds; given "
             "only where every seed of ours crossed. Protocol: docs/protocol.md.", "",
             "| task (threshold) | method | seeds | first crossing | sustained crossing | first / ours "
             "| sustained / ours | protocol |",
             "|---|---|---|---|---|---|---|---|"]
    for item in rows:
        if not item["methods"]:
            lines.append(f"| {item['label']} | ours ({item['config']}): no runs in this results folder | | | | | | |")
        for method, row in item["methods"].items():
            label = _method_label(method, row.get("runs_of"))
            if method == "mbrl":
                label = f"ours ({item['config']})"
            lines.append(f"| {item['label']} ({item['threshold']:g}) | {label} | {len(row['seeds'])} | "
                         f"{crossing_text(row['first'])} | {crossing_text(row['sustained'])} | "
                         f"{ratio_text(row['first'], method)} | {ratio_text(row['sustained'], method)} | "
                         f"{protocol_text(row, method, headline_task=True)} |")
    return lines + [""]


def tables_markdown(summary: dict, headline_rows: Optional[list[dict]] = None,
                    tuning_runs: Optional[dict[str, dict]] = None) -> str:
    lines = ["<!-- generated by `mbrl-ros agent report`; do not edit by hand -->", ""]
    if headline_rows:
        lines += headline_markdown(headline_rows) + ["## Every config", ""]
    for task, info in summary.items():
        lines += [f"### {task} (`{info['env_id']}`, threshold {info['threshold']:g})", "",
                  "| method | seeds (finished) | env steps run / budget | frames/step | env steps to threshold "
                  "(per seed) | steps / ours | sustained crossing (per seed) | sustained / ours | "
                  "final eval return | wall-clock per run | protocol |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for method, row in info["methods"].items():
            per_seed = ", ".join("-" if s is None else str(s) for s in row["steps_to_threshold"])
            sustained = ", ".join("-" if s is None else str(s) for s in row["sustained"]["per_seed"])
            ratio = row.get("ratio_vs_ours")
            ratio_text_first = "1" if method == "mbrl" else (
                "n/a" if ratio is None else f"{'>= ' if row['lower_bound'] else ''}{ratio:.1f}x")
            lines.append(f"| {_method_label(method, row.get('runs_of'))} | {len(row['seeds'])} ({sum(row['done'])}) | "
                         f"{_steps_run_text(row)} / {row['planned_budget']} | {row['frame_skip']} | {_fmt_steps(row)} ({per_seed}) | {ratio_text_first} | "
                         f"{crossing_text(row['sustained'])} ({sustained}) | {ratio_text(row['sustained'], method)} | "
                         f"{_final_return_text(row)} | "
                         f"{row['wall_s_mean'] / 60:.1f} min | {protocol_text(row, method)} |")
        lines += _tuning_note(task, info["env_id"], tuning_runs or {})
        thr, r0 = info["threshold"], info["random_return"]
        lines += ["", f"Env steps to first get 25 / 50 / 100 % of the way from the random policy's return ({r0:.1f}) "
                  "to the threshold, per seed (- = not within the steps run):",
                  "", "| method | " + " | ".join(f"return >= {r0 + lv * (thr - r0):.1f}" for lv in LEVELS) + " |",
                  "|---|" + "---|" * len(LEVELS)]
        for method, row in info["methods"].items():
            cells = [", ".join("-" if s is None else str(s) for s in row["levels"][f"{lv:g}"]) for lv in LEVELS]
            lines.append(f"| {_method_label(method, row.get('runs_of'))} | " + " | ".join(cells) + " |")
        if "expert" in info:
            expert = info["expert"]
            lines += ["", f"The scripted expert ({expert['expert']}) scores {expert['return_mean']:.1f} on the same evaluation episodes "
                      f"({', '.join(f'{r:.1f}' for r in expert['returns'])}; `{expert['command']}`)."]
        lines += ["", f"![{task}](img/agent_{task}.png)", ""]
    if tuning_runs:
        lines += ["## Tuning runs (never reported)", "",
                  "Runs of `mbrl-ros agent run --tuning` (seeds 100-999, evaluated on their own episodes), per config: "
                  + ", ".join(f"{task} {entry['runs']}" for task, entry in sorted(tuning_runs.items())) + ".", ""]
    return "\n".join(lines)


def load_headline_spec(path: Path) -> list[dict]:
    """The rows of a headline file: [{label, config, threshold?}, ...]."""
    import yaml

    raw = yaml.safe_load(Path(path).read_text()) or {}
    rows = raw.get("rows") if isinstance(raw, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and {"label", "config"} <= set(r) for r in rows):
        raise ValueError(f"{path}: expected 'rows:' a list of {{label, config, threshold (optional)}}")
    return rows


def write_report(results: Path, out: Path, headline_spec: Optional[Path] = None) -> Path:
    """Plots, tables and summary JSON from `results` into `out`; returns the tables file."""
    runs = load_runs(results)
    if not runs:
        raise FileNotFoundError(f"no finished evaluations under {results} (expected <task>/<method>/seed<S>/)")
    shared = share_baselines(runs)
    summary = summarize(runs, shared, load_experts(results))
    rows = headline(runs, load_headline_spec(headline_spec)) if headline_spec else []
    for item in rows:  # label the shared baselines as in the per-config tables
        for method, donor in shared.get(item["config"], {}).items():
            item["methods"][method]["runs_of"] = donor
    out = Path(out)
    for task, methods in runs.items():
        plot_task(task, methods, summary[task]["threshold"], out / "img" / f"agent_{task}.png", shared.get(task),
                  summary[task].get("expert"))
    (out / "results_summary.json").write_text(json.dumps({**({"headline": rows} if rows else {}), **summary}, indent=1))
    tables = out / "results_tables.md"
    tables.write_text(tables_markdown(summary, rows, count_tuning_runs(results)))
    return tables
