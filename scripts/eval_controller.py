"""Return of the planning controller on a model bundle vs a random policy, same episodes (no ROS).

    .venv/bin/python scripts/eval_controller.py --store models/reacher2d --episodes 5
    .venv/bin/python scripts/eval_controller.py --checkpoint runs/default/train/checkpoint.pt --planner mcts
    .venv/bin/python scripts/eval_controller.py --baseline results/reacher2d_camera/sac/seed1 --episodes 10
    .venv/bin/python scripts/eval_controller.py --expert --env mbrl_ros/Reacher2D-v0 --episodes 3

Acts through the controller node's core (mbrl_ros.runtime.control.ControlLoop: belief filter +
planner over the ONNX bundle), as the agent's evaluations do: no wall-clock deadline, no rate
limit, the env's evaluation seeds. --baseline evaluates instead the SAC/PPO
model an `agent run` folder holds (model.zip: saved at its last evaluation, or later by a timed
save while the run goes on), deterministic, on the same env and episodes as the agent's evaluations.
--expert evaluates the env's scripted expert (the camera reacher's IK + PD to the true target,
cart-pole's energy-pumping swing-up; mbrl_ros.agent.expert): a reference for what a good
controller scores on those episodes, not an upper bound.
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
    src.add_argument("--baseline", type=Path, help="an SB3 agent run folder (run.json + model.zip)")
    src.add_argument("--expert", action="store_true",
                     help="the --env's scripted expert (Reacher2D-v0, CartpoleSwingup-v0)")
    parser.add_argument("--env", default="mbrl_ros/Reacher2D-v0", help="(--baseline: the run's own env is used)")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--planner", default="cem")
    parser.add_argument("--planner-config", default="{}", help="JSON of planner config fields")
    parser.add_argument("--fused-horizon", type=int, default=10,
                        help="fused imagine length of the bundle exported from --checkpoint")
    parser.add_argument("--planner-seed", type=int, default=0,
                        help="seed of the planner's sampling RNG (the episodes stay the same; vary this to see "
                             "how much of a model's score is the planner's random draws)")
    parser.add_argument("--per-episode", action="store_true",
                        help="also report each planner episode (reaching tasks: distances to the target; "
                             "cart-pole: time upright, pole turns) "
                             "as planner_episodes in the JSON")
    args = parser.parse_args()

    import numpy as np

    from mbrl_ros.agent.common import RandomPolicy, evaluate

    if args.expert:
        env, policy, report = expert_policy(args.env)
    else:
        env, policy, report = baseline_policy(args) if args.baseline else planner_policy(args)
    start = time.perf_counter()
    planned_infos, random_infos = [], []
    planned = evaluate(env, policy, args.episodes, desc="planner", infos=planned_infos)
    seconds = time.perf_counter() - start
    random = evaluate(env, RandomPolicy(env.action_space.shape[0]), args.episodes, desc="random", infos=random_infos)
    # "planner_*" keys name the evaluated controller, a baseline's policy included
    report.update({"episodes": args.episodes,
                   "planner_return_mean": float(np.mean(planned)), "planner_returns": [round(r, 2) for r in planned],
                   "random_return_mean": float(np.mean(random)), "random_returns": [round(r, 2) for r in random],
                   "planner_seconds_per_episode": seconds / args.episodes})
    report.update(success_figures("planner", planned_infos))
    report.update(success_figures("random", random_infos))
    if args.per_episode:
        report["planner_episodes"] = [episode_summary(ret, episode) for ret, episode in zip(planned, planned_infos)]
    print(json.dumps(report, indent=1))
    return 0


def planner_policy(args):
    """(env, ControlPolicy, report fields) for a model store or a checkpoint."""
    from mbrl_ros import envs
    from mbrl_ros.agent.common import ControlPolicy, control_loop
    from mbrl_ros.runtime.model_store import ModelStore

    store = args.store
    if args.checkpoint:
        from mbrl_ros.export import export_checkpoint

        store = Path(tempfile.mkdtemp(prefix="eval_store_"))
        export_checkpoint(args.checkpoint, store, fused_horizon=args.fused_horizon)
    models = ModelStore(store, required=True)
    bundle = models.current
    image_size = bundle.obs_spec.image_shape[:2] if bundle.obs_spec.has_image else 64
    env = envs.make(args.env, image_size=image_size, render_image=bundle.obs_spec.has_image)
    planner_config = json.loads(args.planner_config)
    policy = ControlPolicy(control_loop(models, args.planner, planner_config, args.planner_seed,
                                        env.unwrapped.action_spec))
    return env, policy, {"model": bundle.version, "env": args.env, "planner": args.planner,
                         "planner_config": planner_config, "planner_seed": args.planner_seed}


def baseline_policy(args):
    """(env, deterministic SB3 policy, report fields) for an `agent run` folder of SAC or PPO; the
    env is built from the run's own recorded config, as its evaluations were."""
    from mbrl_ros import envs
    from mbrl_ros.agent.baselines import MODEL_FILE, algo_of, saved_greedy_policy, wrap_for_sb3

    run_file, model_file = args.baseline / "run.json", args.baseline / MODEL_FILE
    for path in (run_file, model_file):
        if not path.is_file():
            raise SystemExit(f"--baseline {args.baseline}: no {path.name} (is it a SAC/PPO `agent run` folder?)")
    run = json.loads(run_file.read_text())
    method = run.get("method")
    try:
        algo_of(str(method))
    except ValueError as exc:
        raise SystemExit(f"--baseline {args.baseline}: run.json's method {method!r}: {exc}") from None
    config = run["config"]  # the run's AgentConfig.to_dict(): the env as the agent's make_env built it
    section = config[method]
    env = wrap_for_sb3(envs.make(config["env_id"], **config["env_kwargs"]), section["policy_obs"])
    policy, steps = saved_greedy_policy(method, args.baseline, env, bool(section.get("normalize")))
    about = {"model": f"{method} seed {run.get('seed')} at {steps} env steps",
             "env": config["env_id"], "planner": method}
    return env, policy, about


def expert_policy(env_id: str):
    """(env, scripted expert, report fields)."""
    from mbrl_ros import envs
    from mbrl_ros.agent.expert import EXPERT_NAMES, NoExpert
    from mbrl_ros.agent.expert import expert_policy as scripted

    env = envs.make(env_id)
    try:
        policy = scripted(env_id, env)
    except NoExpert as exc:
        raise SystemExit(f"--expert: {exc}") from None
    return env, policy, {"model": f"scripted expert ({EXPERT_NAMES[env_id]})", "env": env_id,
                         "planner": "expert"}


def episode_summary(ret: float, infos: list[dict]) -> dict:
    """One planner episode: its return and, for reaching tasks, how its distance to the target went
    (cart-pole: how long the pole stayed up and how often it turned over)."""
    import numpy as np

    summary = {"return": round(float(ret), 2)}
    if infos and "pole_angle" in infos[-1]:
        from mbrl_ros.envs.cartpole import episode_figures

        summary.update(episode_figures(infos))
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
