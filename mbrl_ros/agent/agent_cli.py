"""`mbrl-ros agent`: run the model-based agent or a baseline on a task; build the report.

    mbrl-ros agent run --config config/agent/inverted_pendulum.yaml --method mbrl --seed 0 \
        --out results/inverted_pendulum/mbrl/seed0
    mbrl-ros agent run --config config/agent/inverted_pendulum.yaml --method ppo_zoo --seed 100 --tuning
    mbrl-ros agent report --results results --out docs/
    mbrl-ros agent expert --config config/agent/reacher2d_camera.yaml   # reference line for the report

    mbrl-ros agent snapshot results/dmc_reacher_easy/mbrl/seed0   # keep a stopped run's state (resume/)

A run folder that already holds evaluations is continued, not restarted. On a fresh clone a
model-based run continues from its committed `resume/` snapshot (its episodes are replayed, see
agent/snapshot.py); one whose training state is gone and has no snapshot is refused; `--restart`
moves what it holds into <folder>/superseded-<time>/ and starts from zero.

The protocol (docs/protocol.md): reported runs use seeds 0-99 and are evaluated on episodes 10^9 + i;
`--tuning` runs use seeds 100-999 and episodes 1.5 x 10^9 + i. run.json records which (`protocol`),
and the report refuses to report a seed that was used for tuning.

Ctrl-C or SIGTERM stops a run where it stands: run.json says "stopped", the exit status is 128 +
the signal, and the same command continues it (then `agent snapshot` keeps it for another machine).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from mbrl_ros.agent.config import METHODS


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run (or continue) one method on one task and seed",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run.add_argument("--config", type=Path, required=True, help="config/agent/<task>.yaml")
    run.add_argument("--method", choices=METHODS, required=True)
    run.add_argument("--seed", type=int, default=0, help="0-99 for reported runs, 100-999 with --tuning")
    run.add_argument("--tuning", action="store_true",
                     help="a tuning run: seeds 100-999, evaluated on the tuning episodes, never reported")
    run.add_argument("--out", type=Path, default=None,
                     help="run folder (default results/<task>/<method>/seed<S>)")
    run.add_argument("--budget", type=int, default=None, help="stop at this many env steps instead of the config's budget; reports "
                     "still show the config's budget, so the run reads as stopped short of it")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--save-every-min", type=float, default=10.0,
                     help="SAC/PPO: also save the model (and SAC's replay buffer) this often between "
                          "evaluations, so an interrupted run resumes from there")
    run.add_argument("--restart", action="store_true",
                     help="start from zero; what the run folder holds is moved to <folder>/superseded-<time>/")
    rep = sub.add_parser("report", help="plots + tables from saved results (no re-running)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    rep.add_argument("--results", type=Path, default=Path("results"))
    rep.add_argument("--out", type=Path, default=Path("docs"))
    rep.add_argument("--headline", type=Path, default=Path("config/agent/report/headline.yaml"),
                     help="the headline comparisons to tabulate first (skipped when the file is absent)")
    snap = sub.add_parser("snapshot", help="keep a stopped model-based run's training state in <folder>/resume/ "
                          "(a few MB, committed with evals.csv); `agent run` on a fresh clone restores it",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    snap.add_argument("folder", type=Path, help="the run folder, e.g. results/dmc_reacher_easy/mbrl/seed0")
    exp = sub.add_parser("expert", help="score the env's scripted expert on the evaluation episodes "
                         "(results/<task>/expert.json; the report draws it beside the learners)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    exp.add_argument("--config", type=Path, required=True, help="config/agent/<task>.yaml")
    exp.add_argument("--results", type=Path, default=Path("results"))
    exp.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.action == "report":
        from mbrl_ros.agent.report import write_report

        try:
            path = write_report(args.results, args.out, args.headline if args.headline.is_file() else None)
        except ValueError as exc:  # protocol.ProtocolError (a run the protocol refuses), a bad headline file
            print(f"mbrl-ros agent report: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {path}")
        return 0

    if args.action == "snapshot":
        return take_snapshot(args.folder)
    from mbrl_ros.agent.config import AgentConfig
    from mbrl_ros.agent.protocol import check_seed, violations
    from mbrl_ros.agent.runlog import RunNotContinuable

    config = AgentConfig.load(args.config)
    if args.action == "expert":
        return score_expert(config, args)
    role = "tuning" if args.tuning else "reported"
    try:
        check_seed(args.seed, role)
        config.section(args.method)
    except ValueError as exc:  # ProtocolError is one
        print(f"mbrl-ros agent run: {exc}", file=sys.stderr)
        return 2
    config = config.with_role(role)
    if args.budget is not None:
        config = config.with_budget(args.method, args.budget)
    off = violations(config, args.method) if role == "reported" else []
    if off:
        print(f"mbrl-ros agent run: note: this run does not meet the protocol ({'; '.join(off)}); "
              "the report marks it off-protocol", file=sys.stderr)
    out = args.out or Path("results") / config.name / args.method / f"seed{args.seed}"
    signal.signal(signal.SIGTERM, _stop_on_signal)
    try:
        if args.method == "mbrl":
            from mbrl_ros.agent.mbrl_loop import run_mbrl

            log = run_mbrl(config, args.seed, out, progress=not args.no_progress, restart=args.restart)
        else:
            from mbrl_ros.agent.baselines import run_baseline

            log = run_baseline(config, args.method, args.seed, out, progress=not args.no_progress,
                               restart=args.restart, save_every_s=60 * args.save_every_min)
    except RunNotContinuable as exc:
        print(f"mbrl-ros agent run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        print(f"mbrl-ros agent run: stopped by {signal.Signals(signum).name}; {out} keeps its last saved state "
              "and the same command continues it", file=sys.stderr)
        return 128 + int(signum)
    last = log.rows[-1] if log.rows else None
    if last:
        print(f"{config.name} {args.method} seed{args.seed}: {last['env_steps']} env steps "
              f"({last['frames']} frames), eval return {last['return_mean']:.2f}, wall {log.wall_s():.0f} s -> {out}")
    return 0


class Stopped(KeyboardInterrupt):
    """SIGTERM, raised where the run stands so that it unwinds like Ctrl-C and records "stopped"."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_on_signal(signum, _frame) -> None:
    raise Stopped(signum)


def take_snapshot(folder: Path) -> int:
    from mbrl_ros.agent import snapshot

    try:
        manifest = snapshot.take(folder)
    except snapshot.SnapshotError as exc:
        print(f"mbrl-ros agent snapshot: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {snapshot.describe(manifest)}")
    return 0


def score_expert(config, args: argparse.Namespace) -> int:
    from mbrl_ros.agent.expert import NoExpert, run_expert

    try:
        path, record = run_expert(config, args.results, progress=not args.no_progress)
    except NoExpert as exc:
        print(f"mbrl-ros agent expert: {exc}", file=sys.stderr)
        return 2
    print(f"{config.name}: scripted expert {record['return_mean']:.1f} "
          f"({', '.join(f'{r:.1f}' for r in record['returns'])}) -> {path}")
    return 0
