#!/usr/bin/env python3
"""Closed-loop return of CEM, MPPI and MCTS (and random actions) on the same model and episodes.

    .venv/bin/python benchmarks/bench_planners.py --store models/reacher2d --episodes 10
    .venv/bin/python benchmarks/bench_planners.py --store /tmp/cartpole/run/models \
        --env mbrl_ros/CartpoleSwingup-v0 --episodes 10
    .venv/bin/python benchmarks/bench_planners.py --decision   # analytic decision tasks, no model file
    .venv/bin/python benchmarks/bench_planners.py --store models/reacher2d --latency 200   # tick cost only

Every planner acts through the controller's core (mbrl_ros.runtime.control.ControlLoop: belief
filter + planner over the ONNX bundle, as scripts/eval_controller.py and the agent's evaluations
do): no wall-clock deadline, the episodes of seeds EVAL_SEED_BASE + seed_offset + i. Each planner
gets the planner_config the sim graph gives the controller (config/ros/sim.yaml, e.g.
{"use_value": false}) plus its own defaults, so "same tick budget" means each planner's default
search; the per-tick latency (belief update + planning, ONNX Runtime, 1 thread) is printed beside
the return so the budgets can be compared. "gain" is a planner's mean return minus random's;
"vs CEM" is that gain as a fraction of CEM's (the issue-34 target: MCTS >= 90 %).

--decision runs the analytic decision tasks of tests/test_mcts.py (mbrl_ros.runtime.planners.
mcts_decision) in closed loop instead: there the model is exact and the question is which
planner takes the branch that pays.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import command, machine  # noqa: E402


def sim_planner_config() -> dict:
    """The controller's planner_config in config/ros/sim.yaml (what `mbrl-ros launch sim` runs)."""
    import yaml

    params = yaml.safe_load((ROOT / "config/ros/sim.yaml").read_text())["controller"]["ros__parameters"]
    return json.loads(params.get("planner_config", "{}") or "{}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", type=Path, help="model store (folder with CURRENT)")
    p.add_argument("--env", default="mbrl_ros/Reacher2D-v0")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed-offset", type=int, default=0,
                   help="episode seeds EVAL_SEED_BASE + offset + i (tune on another offset than you report)")
    p.add_argument("--planners", default="cem,mppi,mcts,random")
    p.add_argument("--planner-config", default=None,
                   help="JSON given to every planner (default: config/ros/sim.yaml's controller planner_config)")
    p.add_argument("--override", default="{}", help='JSON per planner, e.g. \'{"mcts": {"simulations": 64}}\'')
    p.add_argument("--planner-seed", type=int, default=0)
    p.add_argument("--decision", action="store_true", help="the analytic decision tasks instead of a model store")
    p.add_argument("--latency", type=int, default=0, metavar="TICKS",
                   help="instead of episodes: time TICKS plan() calls per planner on the store's model "
                        "(wall clock and CPU time; the CPU time is what the tick costs on an idle core)")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def run_store(args) -> list[dict]:
    from mbrl_ros import envs
    from mbrl_ros.agent.common import ControlPolicy, RandomPolicy, control_loop, run_episode
    from mbrl_ros.agent.config import EVAL_SEED_BASE
    from mbrl_ros.runtime.model_store import ModelStore

    models = ModelStore(args.store, required=True)
    bundle = models.current
    image_size = bundle.obs_spec.image_shape[:2] if bundle.obs_spec.has_image else 64
    env = envs.make(args.env, image_size=image_size, render_image=bundle.obs_spec.has_image)
    base = sim_planner_config() if args.planner_config is None else json.loads(args.planner_config)
    override = json.loads(args.override)
    seeds = [EVAL_SEED_BASE + args.seed_offset + i for i in range(args.episodes)]
    print(f"model: {bundle.version} ({args.store}); env {args.env}; seeds {seeds[0]}..{seeds[-1]}; "
          f"planner_config {json.dumps(base)}", flush=True)
    rows = []
    for name in args.planners.split(","):
        config = {**base, **override.get(name, {})}
        if name == "random":
            policy, config = RandomPolicy(env.action_space.shape[0]), {}
        else:
            policy = ControlPolicy(control_loop(models, name, config, args.planner_seed, env.unwrapped.action_spec))
        returns, final_cm, latencies, transitions = [], [], [], []
        start = time.perf_counter()
        for seed in seeds:
            infos = []
            if name == "random":
                ret, _ = run_episode(env, policy, seed, infos)
            else:
                ret, _ = run_episode_timed(env, policy, seed, infos, latencies, transitions)
            returns.append(ret)
            if infos and "distance" in infos[-1]:
                final_cm.append(100 * infos[-1]["distance"])
        row = {"planner": name, "config": config, "returns": [round(r, 2) for r in returns],
               "return_mean": float(np.mean(returns)), "seconds": time.perf_counter() - start}
        if final_cm:
            row["final_distance_cm"] = float(np.mean(final_cm))
        if latencies:
            row["tick_p50_ms"] = 1e3 * float(np.percentile(latencies, 50))
            row["tick_p99_ms"] = 1e3 * float(np.percentile(latencies, 99))
            row["transitions_per_tick"] = float(np.mean(transitions))
        rows.append(row)
        print(f"  {name}: {row['return_mean']:.1f} ({row['seconds']:.0f} s)", flush=True)
    return rows


def run_episode_timed(env, policy, seed, infos, latencies, transitions):
    """run_episode, also collecting each tick's latency and model transitions."""
    obs, _ = env.reset(seed=seed)
    policy.reset()
    total, steps = 0.0, 0
    while True:
        action = policy.act(obs)
        latencies.append(policy.last_result.latency_s)
        transitions.append(policy.last_result.info.get("transitions", 0))
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        steps += 1
        infos.append(info)
        if terminated or truncated:
            return total, steps


def run_latency(args) -> list[dict]:
    """Per-tick plan() time of each planner on the bundle's latent model (ONNX Runtime, 1 thread),
    each tick from the state the previous tick's action led to (warm starts, tree reuse), all
    planners in this process on the same states."""
    from mbrl_ros.runtime.control import planner_config_for
    from mbrl_ros.runtime.model_store import ModelStore
    from mbrl_ros.runtime.planners import make_planner

    bundle = ModelStore(args.store, required=True).current
    base = sim_planner_config() if args.planner_config is None else json.loads(args.planner_config)
    override = json.loads(args.override)
    rows = []
    for name in [n for n in args.planners.split(",") if n != "random"]:
        config = planner_config_for(name, {**base, **override.get(name, {})}, bundle)
        planner = make_planner(name, bundle.latent, config, seed=args.planner_seed)
        state = bundle.initial_state(1)
        wall, cpu, tree_cpu, transitions = [], [], [], []
        for tick in range(args.latency + 10):
            w0, c0 = time.perf_counter(), time.process_time()
            result = planner.plan(state)
            w1, c1 = time.perf_counter(), time.process_time()
            if tick >= 10:  # warm-up ticks: first calls, allocations
                wall.append(w1 - w0)
                cpu.append(c1 - c0)
                transitions.append(result.info["transitions"])
                if "tree_cpu_s" in result.info:
                    tree_cpu.append(result.info["tree_cpu_s"])
            state, _, _ = bundle.latent.step(state, result.action[None])
        row = {"planner": name, "config": config, "wall_p50_ms": 1e3 * np.percentile(wall, 50),
               "wall_p99_ms": 1e3 * np.percentile(wall, 99), "cpu_p50_ms": 1e3 * np.percentile(cpu, 50),
               "cpu_p99_ms": 1e3 * np.percentile(cpu, 99), "transitions_per_tick": float(np.mean(transitions))}
        if tree_cpu:
            row["tree_cpu_p50_ms"] = 1e3 * np.percentile(tree_cpu, 50)
            row["tree_cpu_p99_ms"] = 1e3 * np.percentile(tree_cpu, 99)
        rows.append(row)
    return rows


def run_decision(args) -> list[dict]:
    from mbrl_ros.runtime.planners.mcts_decision import DECISION_TASKS, run_decision_episode

    override = json.loads(args.override)
    base = {} if args.planner_config is None else json.loads(args.planner_config)
    rows = []
    for task_name, task in DECISION_TASKS.items():
        for name in args.planners.split(","):
            config = {**task.planner_config(name), **base, **override.get(name, {})}
            returns = [run_decision_episode(task, name, config, seed=args.seed_offset + i)
                       for i in range(args.episodes)]
            rows.append({"task": task_name, "planner": name, "config": config,
                         "returns": [round(r, 3) for r in returns],
                         "return_mean": float(np.mean(returns))})
    return rows


def print_table(rows: list[dict]) -> None:
    by_name = {r["planner"]: r for r in rows}
    random = by_name.get("random", {}).get("return_mean")
    cem_gain = None if random is None or "cem" not in by_name else by_name["cem"]["return_mean"] - random
    print("| planner | mean return | final distance | gain over random | gain vs CEM | tick p50 / p99 ms "
          "| transitions/tick |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        gain = "" if random is None else f"{r['return_mean'] - random:+.1f}"
        ratio = "" if not cem_gain or random is None else f"{100 * (r['return_mean'] - random) / cem_gain:.0f} %"
        dist = f"{r['final_distance_cm']:.1f} cm" if "final_distance_cm" in r else ""
        tick = f"{r['tick_p50_ms']:.1f} / {r['tick_p99_ms']:.1f}" if "tick_p50_ms" in r else ""
        trans = f"{r['transitions_per_tick']:.0f}" if "transitions_per_tick" in r else ""
        print(f"| {r['planner']} | {r['return_mean']:.1f} | {dist} | {gain} | {ratio} | {tick} | {trans} |")


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"command: {command()}")
    print(f"machine: {machine()}")
    if args.decision:
        rows = run_decision(args)
        print("| task | planner | mean return | returns |")
        print("|---|---|---|---|")
        for r in rows:
            print(f"| {r['task']} | {r['planner']} | {r['return_mean']:.3f} | {r['returns']} |")
    elif args.store is None:
        raise SystemExit("--store is required (or --decision)")
    elif args.latency:
        rows = run_latency(args)
        print(f"model: {args.store}; {args.latency} ticks per planner; ONNX Runtime 1 thread")
        print("| planner | wall p50 / p99 ms | CPU p50 / p99 ms | tree CPU p50 / p99 ms | transitions/tick |")
        print("|---|---|---|---|---|")
        for r in rows:
            tree = f"{r['tree_cpu_p50_ms']:.2f} / {r['tree_cpu_p99_ms']:.2f}" if "tree_cpu_p50_ms" in r else ""
            print(f"| {r['planner']} | {r['wall_p50_ms']:.1f} / {r['wall_p99_ms']:.1f} | {r['cpu_p50_ms']:.1f} / "
                  f"{r['cpu_p99_ms']:.1f} | {tree} | {r['transitions_per_tick']:.0f} |")
    else:
        rows = run_store(args)
        print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
