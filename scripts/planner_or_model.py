"""Was a weak camera-reacher episode the planner's fault or the model's? Checked at every control step.

    .venv/bin/python scripts/planner_or_model.py \
        --store results/reacher2d_camera_sym_ratio1/mbrl/seed2/models --episodes 10 \
        --planner-config '{"num_samples": 256, "num_elites": 32, "iterations": 3}' \
        [--checkpoint results/reacher2d_camera_sym_ratio1/mbrl/seed2/checkpoint.pt]

The controller runs as in the agent's evaluation (the controller's ControlLoop with CEM, no
deadline, on the eval seeds). At each step, before acting, the privileged expert (IK + PD to the true target,
`scripted_action`) is rolled H steps closed-loop from the true state in a copy of the env, and
its action sequence is scored by the world model from the controller's belief (`imagine`) with
the planner's own objective. Per episode:

- **search misses**: steps where the model scores the expert's sequence above the best sequence
  the planner sampled. There a better plan existed *in the model* and CEM did not find it: the
  planner's fault.
- **arrivals**: steps where the arm is outside the target and the expert's rollout enters it
  within `--arrival-steps` steps. The model's predicted reward for that arrival step is set
  beside the real one (about +0.9). A model that predicts no reward there does not know that the
  target is that close, so no search over it would head there: the model's fault (the first
  few imagined steps are used, where its open-loop drift is still small).
- with `--checkpoint`, **arrival fingertip error**: how far from the real fingertip the model's
  joint decoder puts it after imagining the expert's steps up to the arrival. Small means the
  imagined arm does get there, so a missing arrival reward is the reward's error, not the motion's.
- **expert**: the expert drives the whole episode while the belief follows it; the model's
  predicted reward on the steps the arm is inside the target says whether the model sees the
  target once the arm is on it.

The episodes and the planner's random draws are those of `scripts/eval_controller.py` with the
same --planner-seed, so the returns match its per-episode figures.

Only for mbrl_ros/Reacher2D-v0 (the expert needs the true target).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks' machine/command header
from common import command, machine


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", type=Path, required=True, help="model store (folder with CURRENT)")
    p.add_argument("--episodes", type=int, default=10, help="the first N evaluation episodes")
    p.add_argument("--only", type=int, nargs="*", help="episode numbers (1-based) to run, of the first N")
    p.add_argument("--planner-config", default="{}", help="JSON of CEM config fields")
    p.add_argument("--planner-seed", type=int, default=0)
    p.add_argument("--checkpoint", type=Path,
                   help="the run's checkpoint.pt (same step as the bundle): also decode where the model "
                        "imagines the fingertip at the expert's arrival (needs torch)")
    p.add_argument("--arrival-steps", type=int, default=3,
                   help="an arrival counts when the expert enters the target within this many steps")
    return p.parse_args(argv)


ARRIVED_REWARD = 0.5  # the reacher pays +1 inside the target on top of -d/0.24: above 0.5 only there


def expert_rollout(shadow, start_state: np.ndarray, horizon: int):
    """The expert's actions [H, A], real rewards [H] and fingertip positions [H, 2] (m) for H steps
    from `start_state` (closed loop)."""
    from mbrl_ros.envs.reacher2d import scripted_action

    shadow.set_state(start_state)
    actions, rewards, tips = [], [], []
    for _ in range(horizon):
        actions.append(scripted_action(shadow))
        shadow.apply_action(actions[-1])
        shadow.physics_step(shadow.frame_skip)
        rewards.append(shadow.task_reward())
        tips.append(shadow.fingertip_pos)
    return np.stack(actions).astype(np.float32), np.asarray(rewards, np.float64), np.stack(tips)


def diagnose_episode(env, shadow, policy, seed: int, arrival_steps: int, probe=None) -> dict:
    from mbrl_ros.envs.reacher2d import SUCCESS_RADIUS
    from mbrl_ros.runtime.planners.base import sequence_returns

    loop = policy.loop
    obs, _ = env.reset(seed=seed)
    policy.reset()
    total, distances, search_misses = 0.0, [], 0
    arrival_model, arrival_true, tip_errors = [], [], []
    while True:
        action = policy.act(obs)  # one control tick: belief update, then the plan from it
        result, state = policy.last_result, loop.belief.state
        planner, model = loop.planner, loop.belief.bundle.latent
        cfg = planner.config
        expert_actions, expert_true, expert_tips = expert_rollout(shadow, env.unwrapped.get_state(), cfg.horizon)
        rewards, values = model.imagine(state, expert_actions[None])
        model_expert = sequence_returns(rewards, values, cfg.discount, planner.bootstrap)[0]
        if model_expert > result.info.get("best_return", np.inf):
            search_misses += 1
        arrived = np.flatnonzero(expert_true[:arrival_steps] > ARRIVED_REWARD)
        if env.unwrapped.distance() >= SUCCESS_RADIUS and arrived.size:
            arrival_model.append(float(rewards[0, arrived[0]]))
            arrival_true.append(float(expert_true[arrived[0]]))
            if probe is not None:
                tip = probe.imagined_fingertip(state, expert_actions[: arrived[0] + 1])
                tip_errors.append(float(np.linalg.norm(tip - expert_tips[arrived[0]])))
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        distances.append(100 * info["distance"])
        if terminated or truncated:
            break
    figures = {"return": round(total, 1), "final_distance_cm": round(distances[-1], 1),
               "target_radius_cm": round(100 * float(np.linalg.norm(env.unwrapped.target_pos)), 1),
               "steps": len(distances), "search_misses": search_misses, "arrivals": len(arrival_model),
               "arrival_reward_model": mean_or_none(arrival_model), "arrival_reward_true": mean_or_none(arrival_true)}
    if probe is not None:
        figures["arrival_fingertip_error_cm"] = mean_or_none(100 * np.array(tip_errors), 1)
    return figures


def mean_or_none(values, digits: int = 2):
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return round(float(values.mean()), digits) if values.size else None


class FingertipProbe:
    """With the run's torch checkpoint (the same weights as the bundle): where the joint decoder
    puts the fingertip after imagined steps from the controller's belief."""

    def __init__(self, checkpoint: Path, bundle):
        import torch

        from mbrl_ros.world_model.checkpoint import load_world_model

        self.torch = torch
        self.model, payload = load_world_model(checkpoint)
        if not bundle.version.endswith(f"s{int(payload['step']):09d}"):
            raise SystemExit(f"{checkpoint} is at gradient step {payload['step']}, the bundle is {bundle.version}")

    def _tensors(self, state):
        return self.torch.as_tensor(state.h), self.torch.as_tensor(state.z)

    def imagined_fingertip(self, state, actions: np.ndarray) -> np.ndarray:
        """The fingertip (m) after imagining `actions` [K, A] from `state` (prior means)."""
        from mbrl_ros.envs.reacher2d import LINK1, LINK2

        with self.torch.no_grad():
            h, z = self._tensors(state)
            for action in actions:
                h, z = self.model.prior_step(h, z, self.torch.as_tensor(action[None]))
            q1, q2 = self.model.decode(h, z)["joints"][0, :2].numpy()
        return np.array([LINK1 * np.cos(q1) + LINK2 * np.cos(q1 + q2), LINK1 * np.sin(q1) + LINK2 * np.sin(q1 + q2)])


def expert_episode(env, policy, seed: int) -> dict:
    """The expert drives the same episode; the belief filter follows it. At each step the model
    predicts the next reward from its posterior (one imagined step of the expert's next action):
    on the steps the expert holds the arm inside the target, does the model see the target?"""
    from mbrl_ros.envs.reacher2d import scripted_action

    loop = policy.loop
    model, horizon = loop.belief.bundle.latent, loop.planner.config.horizon
    obs, _ = env.reset(seed=seed)
    policy.reset()
    predicted, real, last_action = [], [], None
    while True:
        model_obs = {k: obs[k] for k in ("image", "joints") if k in obs}
        state = loop.belief.update(model_obs, last_action)  # the controller's belief follows the expert
        action = scripted_action(env.unwrapped)
        # imagine() scores whole plans: the expert's action held over the planner's horizon; only step 1 is read
        rewards, _ = model.imagine(state, action[None, None].repeat(horizon, axis=1))
        last_action = action
        obs, reward, terminated, truncated, _ = env.step(action)
        predicted.append(float(rewards[0, 0]))
        real.append(float(reward))
        if terminated or truncated:
            break
    predicted, real = np.array(predicted), np.array(real)
    inside = real > ARRIVED_REWARD
    return {"return": round(float(real.sum()), 1), "steps_in_target": int(inside.sum()),
            "model_reward_in_target": mean_or_none(predicted[inside]),
            "real_reward_in_target": mean_or_none(real[inside])}


def main(argv=None) -> int:
    args = parse_args(argv)
    from mbrl_ros import envs
    from mbrl_ros.agent.common import EVAL_SEED_BASE, ControlPolicy, control_loop
    from mbrl_ros.runtime.model_store import ModelStore

    models = ModelStore(args.store, required=True)
    bundle = models.current
    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=bundle.obs_spec.image_shape[:2])
    shadow = envs.make("mbrl_ros/Reacher2D-v0", render_image=False).unwrapped
    shadow.reset(seed=0)
    loop = control_loop(models, "cem", json.loads(args.planner_config), args.planner_seed, env.unwrapped.action_spec)
    policy = ControlPolicy(loop)
    probe = FingertipProbe(args.checkpoint, bundle) if args.checkpoint else None
    chosen = args.only or range(1, args.episodes + 1)
    report = {"command": command(), "machine": machine(), "model": bundle.version, "planner_config": loop.planner_config(bundle), "planner_seed": args.planner_seed,
              "arrival_steps": args.arrival_steps, "episodes": {}}
    for number in chosen:
        seed = EVAL_SEED_BASE + number - 1
        report["episodes"][number] = diagnose_episode(env, shadow, policy, seed, args.arrival_steps, probe)
        report["episodes"][number]["expert"] = expert_episode(env, policy, seed)
        print(number, json.dumps(report["episodes"][number]), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
