"""Return of the planning controller on a model bundle vs a random policy, same episodes (no ROS).

    .venv/bin/python scripts/eval_controller.py --store models/reacher2d --episodes 5
    .venv/bin/python scripts/eval_controller.py --checkpoint runs/default/train/checkpoint.pt --planner mcts

Uses the agent loop's PlannerPolicy (belief filter + planner over the ONNX bundle, as the
controller node runs it) on the env's evaluation seeds.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--store", type=Path, help="model store (folder with CURRENT)")
    src.add_argument("--checkpoint", type=Path, help="checkpoint to export to a temporary store first")
    parser.add_argument("--env", default="mbrl_ros/Reacher2D-v0")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--planner", default="cem")
    parser.add_argument("--planner-config", default="{}", help="JSON of planner config fields")
    parser.add_argument("--horizon", type=int, default=10, help="export horizon for --checkpoint")
    parser.add_argument("--planner-seed", type=int, default=0,
                        help="seed of the planner's sampling RNG (the episodes stay the same; vary this to see "
                             "how much of a model's score is the planner's random draws)")
    parser.add_argument("--per-episode", action="store_true",
                        help="also report each planner episode (reaching tasks: distances to the target) "
                             "as planner_episodes in the JSON")
    args = parser.parse_args()

    import numpy as np

    import mbrl_ros.envs as envs
    from mbrl_ros.agent.common import RandomPolicy, evaluate
    from mbrl_ros.agent.mbrl_loop import PlannerPolicy
    from mbrl_ros.runtime.model_store import ModelStore

    store = args.store
    if args.checkpoint:
        from mbrl_ros.export import export_checkpoint

        store = Path(tempfile.mkdtemp(prefix="eval_store_"))
        export_checkpoint(args.checkpoint, store, horizon=args.horizon)
    bundle = ModelStore(store, required=True).current
    image_size = bundle.obs_spec.image_shape[:2] if bundle.obs_spec.has_image else 64
    env = envs.make(args.env, image_size=image_size, render_image=bundle.obs_spec.has_image)
    planner_config = json.loads(args.planner_config)
    policy = PlannerPolicy(bundle, args.planner, planner_config, seed=args.planner_seed)
    start = time.perf_counter()
    planned_infos, random_infos = [], []
    planned = evaluate(env, policy, args.episodes, desc="planner", infos=planned_infos)
    seconds = time.perf_counter() - start
    random = evaluate(env, RandomPolicy(env.action_space.shape[0]), args.episodes, desc="random", infos=random_infos)
    report = {"model": bundle.version, "env": args.env, "planner": args.planner,
              "planner_config": planner_config, "planner_seed": args.planner_seed,
              "episodes": args.episodes,
              "planner_return_mean": float(np.mean(planned)), "planner_returns": [round(r, 2) for r in planned],
              "random_return_mean": float(np.mean(random)), "random_returns": [round(r, 2) for r in random],
              "planner_seconds_per_episode": seconds / args.episodes}
    report.update(success_figures("planner", planned_infos))
    report.update(success_figures("random", random_infos))
    if args.per_episode:
        report["planner_episodes"] = [episode_summary(ret, episode) for ret, episode in zip(planned, planned_infos)]
    print(json.dumps(report, indent=1))
    return 0


def episode_summary(ret: float, infos: list[dict]) -> dict:
    """One planner episode: its return and, for reaching tasks, how its distance to the target went."""
    import numpy as np

    summary = {"return": round(float(ret), 2)}
    if infos and "distance" in infos[-1]:
        d = 100 * np.array([i["distance"] for i in infos])
        near = np.flatnonzero(d < 3.0)
        summary.update({"distance_cm_start": round(float(d[0]), 1), "distance_cm_min": round(float(d.min()), 1),
                        "distance_cm_final": round(float(d[-1]), 1),
                        "distance_cm_mean_second_half": round(float(d[len(d) // 2:].mean()), 1),
                        "first_step_within_3cm": int(near[0] + 1) if near.size else None})
    return summary


def success_figures(name: str, infos: list[list[dict]]) -> dict:
    """For reaching tasks (info has "distance"/"success"): how close the episodes ended and how
    much of each episode was spent at the target; {} for envs without them."""
    import numpy as np

    if not infos or not infos[0] or "distance" not in infos[0][-1]:
        return {}
    final = [ep[-1]["distance"] for ep in infos]
    return {f"{name}_final_distance_m_mean": round(float(np.mean(final)), 4),
            f"{name}_success_at_end": f"{sum(ep[-1]['success'] for ep in infos)}/{len(infos)}",
            f"{name}_time_at_target": round(float(np.mean([np.mean([i["success"] for i in ep]) for ep in infos])), 3)}


if __name__ == "__main__":
    raise SystemExit(main())
