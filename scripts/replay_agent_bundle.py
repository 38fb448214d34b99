"""Re-run the agent's evaluation episodes with one published bundle of a finished run, and show
where each episode ended (the joint state and action at the last step).

    .venv/bin/python scripts/replay_agent_bundle.py \
        --config config/agent/inverted_pendulum_realvalue_h5.yaml \
        --run results/inverted_pendulum_realvalue_h5/mbrl/seed4 [--version v000031-s000007822] \
        [--planner-config '{"num_samples": 512, "iterations": 5}'] [--episodes 3]

The agent keeps its last two bundles (`<run>/models/v*`); without --version every kept bundle
is replayed. Same policy as the agent's evaluation (`ControlPolicy`: the controller's
`ControlLoop`, no deadline, no exploration noise, the eval seeds), so a drop in a run's curve can be traced to one model update: e.g. on
InvertedPendulum-v5 the bundle before a drop held the pole, the next one drove the cart into
the end of its rail (docs/experiments/inverted_pendulum.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the run's config/agent/<task>.yaml")
    p.add_argument("--run", required=True, type=Path, help="run folder (results/<task>/mbrl/seed<S>)")
    p.add_argument("--version", action="append", help="bundle folder name under <run>/models (repeatable)")
    p.add_argument("--planner-config", default="{}", help="JSON overrides of the config's planner_config")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=None, help="planner seed (default: the agent's eval seed)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mbrl_ros.agent.common import BundleStore, ControlPolicy, control_loop, make_env, run_episode
    from mbrl_ros.agent.config import EVAL_SEED_BASE, AgentConfig
    from mbrl_ros.runtime.bundle import load_bundle

    config = AgentConfig.load(Path(args.config))
    run_seed = json.loads((args.run / "run.json").read_text())["seed"]
    planner_config = {**config.mbrl.planner_config, **json.loads(args.planner_config)}
    versions = args.version or sorted(p.name for p in (args.run / "models").glob("v*") if p.is_dir())
    if not versions:
        raise SystemExit(f"{args.run / 'models'}: no published bundle (v*) to replay")
    env = make_env(config)
    names = env.unwrapped.obs_spec.joint_names
    print(f"config {args.config}, run {args.run}, planner {config.mbrl.planner} {planner_config}")
    for version in versions:
        bundle = load_bundle(args.run / "models" / version)
        # the agent evaluates with seed + 1 (MBRLAgent._evaluate)
        loop = control_loop(BundleStore(bundle), config.mbrl.planner, planner_config,
                            run_seed + 1 if args.seed is None else args.seed, env.unwrapped.action_spec)
        policy = ControlPolicy(loop)
        print(f"\n{version}:")
        for i in range(args.episodes):
            trace = []  # the start state, then each step's
            total, steps = run_episode(env, policy, EVAL_SEED_BASE + i, trace=trace)
            action, _, terminated = trace[-1]
            joints = np.asarray([obs["joints"] for _, obs, _ in trace])
            last = ", ".join(f"{n} {v:+.3f}" for n, v in zip(names, joints[-1]))
            print(f"  episode {i}: return {total:.1f} in {steps} steps ({'terminated' if terminated else 'truncated'});"
                  f" last state: {last}; last action [{', '.join(f'{a:+.3f}' for a in action)}];"
                  f" max |{names[0]}| {np.abs(joints[:, 0]).max():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
