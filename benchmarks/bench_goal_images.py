"""Goal images on the camera reacher: "go where this picture shows" vs the reward-trained controller vs random.

    .venv/bin/python benchmarks/bench_goal_images.py --store models/reacher2d --targets 20 --steps 100

For each of --targets episodes (seeds 1000.., each with its own random target disc), the goal
is one 64x64 camera frame of the arm with its fingertip ON the target (the joints set by
inverse kinematics, rendered by MuJoCo, velocities 0): a picture of where to go. Three
controllers act from the same start:
  goal     CEM through ControlLoop over GoalStore: reward = -|z - z_goal| (mbrl_ros.runtime.goal_task),
           no reward head used
  reward   CEM through ControlLoop on the bundle's reward head (trained on the task's reward)
  random   uniform random actions
Reported: final fingertip-to-target distance (mean, median), success (final distance < 3 cm,
the env's SUCCESS_RADIUS), and the control tick's p50/p99 for the two planners, with the
goal planner's tick ratio to the reward planner's (same process, same machine).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("MUJOCO_GL", "egl")

from common import print_header  # noqa: E402


def goal_frame(u) -> dict:
    """The camera frame (and joints) with the arm's fingertip on the target; the env state is restored."""
    import mujoco
    import numpy as np

    from mbrl_ros.envs.reacher2d import inverse_kinematics

    saved = u.get_state()
    u.data.qpos[:2] = inverse_kinematics(u.target_pos)
    u.data.qvel[:] = 0.0
    mujoco.mj_forward(u.model, u.data)
    frame = u.observe(image=True)
    assert u.distance() < 0.005, u.distance()  # the picture really shows the goal
    u.set_state(saved)
    return {"image": np.asarray(frame["image"]).copy(), "joints": np.asarray(frame["joints"], np.float32).copy()}


def run_episode(env, act, seed: int, steps: int) -> tuple[float, list[float]]:
    obs, _ = env.reset(seed=seed)
    ticks = []
    info = {"distance": env.unwrapped.distance()}
    for _ in range(steps):
        t0 = time.perf_counter()
        action = act(obs)
        ticks.append(time.perf_counter() - t0)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return float(info["distance"]), ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=ROOT / "models" / "reacher2d")
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100, help="control steps per episode")
    parser.add_argument("--planner", default="cem")
    parser.add_argument("--seed-base", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    import numpy as np

    import mbrl_ros.envs as envs
    from mbrl_ros.agent.common import ControlPolicy, control_loop
    from mbrl_ros.envs.reacher2d import SUCCESS_RADIUS
    from mbrl_ros.runtime import ModelStore
    from mbrl_ros.runtime.goal_task import GoalStore

    store = ModelStore(args.store, required=True)
    bundle = store.current
    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=bundle.obs_spec.image_shape[0],
                    episode_steps=args.steps)
    u = env.unwrapped
    print_header("goal images on the camera reacher", {"model": bundle.version, "targets": args.targets,
                                                       "steps": args.steps, "planner": args.planner})
    results = {m: {"distance": [], "ticks": []} for m in ("goal", "reward", "random")}
    rng = np.random.default_rng(0)
    for i in range(args.targets):
        seed = args.seed_base + i
        env.reset(seed=seed)
        goal = goal_frame(u)
        controllers = {
            "goal": ControlPolicy(control_loop(GoalStore(store, goal), args.planner, {}, i, u.action_spec)),
            "reward": ControlPolicy(control_loop(store, args.planner, {}, i, u.action_spec)),
        }
        for method, policy in controllers.items():
            policy.loop.reset()
            d, ticks = run_episode(env, policy.act, seed, args.steps)
            results[method]["distance"].append(d)
            results[method]["ticks"] += ticks
        d, _ = run_episode(env, lambda obs: rng.uniform(-1, 1, 2).astype(np.float32), seed, args.steps)
        results["random"]["distance"].append(d)
        print(f"target {i:2d}: " + "  ".join(f"{m} {results[m]['distance'][-1] * 100:5.1f} cm" for m in results),
              flush=True)
    env.close()

    figures = {}
    print(f"\n{'controller':<8} {'final dist mean':>16} {'median':>8} {'success <3cm':>13} {'tick p50':>9} "
          f"{'tick p99':>9}")
    for method, r in results.items():
        d = np.asarray(r["distance"])
        row = {"final_distance_mean_cm": float(d.mean() * 100), "final_distance_median_cm": float(np.median(d) * 100),
               "success_rate": float((d < SUCCESS_RADIUS).mean()), "episodes": len(d)}
        if r["ticks"]:
            t = np.asarray(r["ticks"]) * 1e3
            row.update(tick_p50_ms=float(np.percentile(t, 50)), tick_p99_ms=float(np.percentile(t, 99)))
        figures[method] = row
        ticks = (f"{row['tick_p50_ms']:8.1f}ms {row['tick_p99_ms']:8.1f}ms" if "tick_p50_ms" in row else "")
        print(f"{method:<8} {row['final_distance_mean_cm']:14.1f}cm {row['final_distance_median_cm']:6.1f}cm "
              f"{100 * row['success_rate']:12.0f}% {ticks}")
    ratio = figures["goal"]["tick_p50_ms"] / figures["reward"]["tick_p50_ms"]
    print(f"goal/reward tick p50 ratio: {ratio:.2f} (goal imagination runs as step-graph calls)")
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "figures": figures}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
