"""What a planner achieves with a PERFECT model: the task's own MuJoCo env as the latent model.

    .venv/bin/python scripts/planner_on_true_dynamics.py --config config/agent/inverted_pendulum.yaml \
        --horizon 15 --episodes 2 --max-steps 400

Each candidate step sets a second copy of the env to the candidate's (qpos, qvel) and calls
its own step(), so rewards and terminations are the task's, exactly; after a termination a
candidate stays dead with reward 0 (what the learned model's absorbing steps teach it). The
planner, its config and the eval seeds are the agent config's. It separates "the model is
not accurate enough" from "the planning objective cannot solve the task at this horizon":
e.g. on InvertedPendulum-v5 the constant +1 reward gives a 15-step plan no reason to keep
the cart away from the end of its rail (docs/experiments/inverted_pendulum.md).

Only for gymnasium MuJoCo tasks (mbrl_ros/<Task>-v5 ids); slow (one Python env step per
candidate step).
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


class TrueDynamicsModel:
    """LatentModel over a gymnasium MuJoCo env: h = [qpos, qvel, alive], z empty."""

    has_value = False

    def __init__(self, env):
        self.adapter = env.unwrapped
        self.task = self.adapter.env.unwrapped  # the gymnasium MujocoEnv
        self.nq, self.nv = self.task.model.nq, self.task.model.nv
        self.action_dim = int(env.action_space.shape[0])

    def state_of(self, task_env):
        from mbrl_ros.runtime.latent import LatentState

        h = np.r_[task_env.data.qpos, task_env.data.qvel, 1.0].astype(np.float64)[None]
        return LatentState(h, np.zeros((1, 0), np.float32))

    def step(self, state, action):
        from mbrl_ros.runtime.latent import LatentState

        h = np.array(state.h, np.float64)
        reward = np.zeros(len(h), np.float32)
        for i in np.flatnonzero(h[:, -1] > 0.5):
            self.task.set_state(h[i, :self.nq], h[i, self.nq:self.nq + self.nv])
            _, r, terminated, _, _ = self.task.step(self.adapter.to_task_action(action[i]))
            h[i, :self.nq], h[i, self.nq:self.nq + self.nv] = self.task.data.qpos, self.task.data.qvel
            h[i, -1] = 0.0 if terminated else 1.0
            reward[i] = r
        return LatentState(h, state.z), reward, np.zeros(len(h), np.float32)

    def imagine(self, state, actions):
        from mbrl_ros.runtime.latent import imagine_by_steps

        return imagine_by_steps(self, state, actions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "agent" / "inverted_pendulum.yaml")
    parser.add_argument("--horizon", type=int, default=None, help="default: the config's mbrl.fused_horizon")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--planner-config", type=json.loads, default={},
                        help="JSON overrides of the config's planner_config, e.g. '{\"iterations\": 4}'")
    args = parser.parse_args()

    from mbrl_ros.agent.common import make_env
    from mbrl_ros.agent.config import EVAL_SEED_BASE, AgentConfig
    from mbrl_ros.runtime.planners import make_planner

    config = AgentConfig.load(args.config)
    env, model_env = make_env(config), make_env(config)
    model = TrueDynamicsModel(model_env)
    planner_config = {**config.mbrl.planner_config, "horizon": args.horizon or config.mbrl.fused_horizon,
                      **args.planner_config}
    planner = make_planner(config.mbrl.planner, model, planner_config, seed=0)
    task = env.unwrapped.env.unwrapped
    results = []
    for episode in range(args.episodes):
        env.reset(seed=EVAL_SEED_BASE + episode)
        planner.reset()
        total, positions, start = 0.0, [], time.perf_counter()
        for step in range(args.max_steps):
            action = planner.plan(model.state_of(task)).action
            planner.advance(action)
            _, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            positions.append(task.data.qpos.copy())
            if terminated or truncated:
                break
        positions = np.array(positions)
        results.append({"episode": episode, "steps": step + 1, "return": round(total, 2),
                        "terminated": bool(terminated), "qpos0_min": round(float(positions[:, 0].min()), 3),
                        "qpos0_max": round(float(positions[:, 0].max()), 3),
                        "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"command": " ".join(sys.argv), "task": config.env_id, "planner": config.mbrl.planner,
                      "planner_config": planner_config,
                      "mean_return": float(np.mean([r["return"] for r in results]))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
