"""Score the final policy of every finished run of a config on the reported evaluation episodes
and on held-out episodes that nothing ever used, method by method.

    .venv/bin/python scripts/held_out_episodes.py --config config/agent/reacher_protocol.yaml \
        [--results results/reacher_protocol] [--episodes 20] [--seed-base 1200000000] [--methods mbrl,sac]

Why: a config chosen on the evaluation episodes (the pre-protocol trials, `eval_episodes:
reported`) can score better on them than on others. If every method, ours and the untuned
baselines alike, loses about the same on the held-out episodes, those episodes are simply
harder; if ours loses more, the choice fitted the reported episodes. Only the final policies are
kept in a run folder (ours: `models/CURRENT`, the bundle of the last evaluation; SB3:
`model.zip` and `vecnormalize.pkl`), so this checks final returns, not the crossing points.
The run folders' training state stays on the machine that ran them (evals.csv and run.json are
committed, and for a snapshotted run resume/, which `mbrl-ros agent run` restores first), so this
runs where the runs were made or after a restore.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HELD_OUT_SEED_BASE = 1_200_000_000  # neither the reported (10^9 + i) nor the tuning (1.5 x 10^9 + i) episodes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, type=Path, help="the runs' config/agent/<task>.yaml")
    p.add_argument("--results", type=Path, default=None, help="results/<task> (default: from the config's task name)")
    p.add_argument("--episodes", type=int, default=20, help="held-out episodes per run")
    p.add_argument("--seed-base", type=int, default=HELD_OUT_SEED_BASE, help="held-out episodes' reset seeds: N + i")
    p.add_argument("--methods", default=None, help="comma-separated methods to score (default: every method)")
    return p.parse_args(argv)


def final_policy(config, method: str, folder: Path, seed: int):
    """(env, greedy policy) of a finished run folder, as its evaluations drove it."""
    from mbrl_ros.agent.common import BundleStore, evaluation_policy, make_env

    if method == "mbrl":
        from mbrl_ros.runtime.bundle import load_bundle

        env = make_env(config)
        bundle = load_bundle(folder / "models" / (folder / "models" / "CURRENT").read_text().strip())
        return env, evaluation_policy(BundleStore(bundle), config, seed, env.unwrapped.action_spec)
    from mbrl_ros.agent.baselines import saved_greedy_policy, wrap_for_sb3

    section = config.section(method)
    env = wrap_for_sb3(make_env(config), section.policy_obs)
    return env, saved_greedy_policy(method, folder, env, section.normalize)[0]


def main(argv=None) -> int:
    args = parse_args(argv)
    from mbrl_ros.agent.common import evaluate
    from mbrl_ros.agent.config import AgentConfig
    from mbrl_ros.agent.protocol import status as protocol_status
    from mbrl_ros.agent.runlog import read_evals

    config = AgentConfig.load(args.config)
    results = args.results or ROOT / "results" / config.name
    print(f"config {args.config}; reported episodes {config.eval.seed_base} + 0..{config.eval.episodes - 1}; "
          f"held-out episodes {args.seed_base} + 0..{args.episodes - 1}")
    print("| method | seed | last evaluation (evals.csv) | reported episodes, replayed | held-out episodes | held-out - reported |")
    print("|---|---|---|---|---|---|")
    per_method: dict[str, list[tuple[float, float]]] = {}
    for folder in sorted(results.glob("*/seed*")):
        meta = json.loads((folder / "run.json").read_text())
        if meta.get("status") != "done" or protocol_status(meta) == "tuning":
            continue  # unfinished, or a tuning run (evaluated on the tuning episodes, never reported)
        method, seed = meta["method"], int(meta["seed"])
        if args.methods and method not in args.methods.split(","):
            continue
        env, policy = final_policy(config, method, folder, seed)
        reported = float(np.mean(evaluate(env, policy, config.eval.episodes, progress=False,
                                          seed_base=config.eval.seed_base)))
        held_out = float(np.mean(evaluate(env, policy, args.episodes, progress=False, seed_base=args.seed_base)))
        last = read_evals(folder / "evals.csv")[-1]["return_mean"]
        print(f"| {method} | {seed} | {last:.2f} | {reported:.2f} | {held_out:.2f} | {held_out - reported:+.2f} |",
              flush=True)
        per_method.setdefault(method, []).append((reported, held_out))
    print("\n| method | seeds | reported episodes | held-out episodes | held-out - reported |\n|---|---|---|---|---|")
    for method, pairs in per_method.items():
        rep, held = np.array(pairs).T
        print(f"| {method} | {len(pairs)} | {rep.mean():.2f} ± {rep.std():.2f} | {held.mean():.2f} ± {held.std():.2f} "
              f"| {(held - rep).mean():+.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
