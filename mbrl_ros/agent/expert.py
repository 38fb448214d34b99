"""A reference beside the learners: the env's scripted expert on the evaluation episodes.

    mbrl-ros agent expert --config config/agent/reacher2d_camera.yaml
      -> results/reacher2d_camera/expert.json

`mbrl-ros agent report` draws it on the plot of every task with the same env and evaluation
episodes, and names it under that task's table. It shows what a good hand-written controller
scores on these episodes (the camera reacher's reads the target position, which the learners
see only in the image); it is not an upper bound (ours and PPO score above the cart-pole expert).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:  # the report reads expert files without importing the envs
    import gymnasium as gym

    from mbrl_ros.agent.common import FunctionPolicy
    from mbrl_ros.agent.config import AgentConfig

EXPERT_FILE = "expert.json"
# Env kwargs that change what the camera sees, not the episodes: an expert measured with one
# image size stands for every task on that env.
VIEW_KWARGS = ("image_size", "render_image")
EXPERT_NAMES = {  # what the expert does, and what it reads
    "mbrl_ros/Reacher2D-v0": "IK + PD to the true target position, which the learners see only in the image",
    "mbrl_ros/CartpoleSwingup-v0": "energy-pumping swing-up + linear balance, from the joints the learners get too",
}


class NoExpert(ValueError):
    """The env has no scripted expert."""


def expert_policy(env_id: str, env: "gym.Env") -> "FunctionPolicy":
    """The scripted expert of `env_id` acting in `env` (an instance of that env)."""
    from mbrl_ros.agent.common import FunctionPolicy

    if env_id == "mbrl_ros/Reacher2D-v0":
        from mbrl_ros.envs.reacher2d import scripted_action as reach

        return FunctionPolicy(lambda obs: reach(env.unwrapped))  # needs the target: reads the env, not obs
    if env_id == "mbrl_ros/CartpoleSwingup-v0":
        from mbrl_ros.envs.cartpole import scripted_action as swing_up

        return FunctionPolicy(lambda obs: swing_up(obs["joints"]))
    raise NoExpert(f"no scripted expert for {env_id} (there are for {' and '.join(EXPERT_NAMES)})")


def run_expert(config: "AgentConfig", results: Path, progress: bool = True) -> tuple[Path, dict]:
    """Evaluate the expert on the config's evaluation episodes; writes results/<task>/expert.json
    and returns its path and contents."""
    from mbrl_ros.agent.common import evaluate, make_env

    env = make_env(config)
    try:
        returns = evaluate(env, expert_policy(config.env_id, env), config.eval.episodes, desc="expert",
                           progress=progress)
    finally:
        env.close()
    record = {"task": config.name, "env_id": config.env_id, "env_kwargs": episode_kwargs(config.env_kwargs),
              "expert": EXPERT_NAMES[config.env_id], "episodes": config.eval.episodes,
              "returns": [round(float(r), 2) for r in returns], "return_mean": float(np.mean(returns)),
              "command": f"mbrl-ros agent expert --config {config.source}"}
    path = Path(results) / config.name / EXPERT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path, record


def episode_kwargs(env_kwargs: dict) -> dict:
    """The env kwargs that decide the episodes (all but the camera's)."""
    return {k: v for k, v in sorted(env_kwargs.items()) if k not in VIEW_KWARGS}


def load_experts(results: Path) -> list[dict]:
    """Every results/<task>/expert.json (each with env_id, env_kwargs and episodes, to match tasks by)."""
    return [json.loads(p.read_text()) for p in sorted(Path(results).glob(f"*/{EXPERT_FILE}"))]


def expert_for(experts: list[dict], env_id: str, env_kwargs: dict, episodes: Optional[int]) -> Optional[dict]:
    """The expert record measured on the same episodes, if any: same env, same episode-deciding
    kwargs and as many evaluation episodes (whose seeds are fixed for every task)."""
    key = (env_id, episode_kwargs(env_kwargs), episodes)
    return next((e for e in experts if (e["env_id"], e["env_kwargs"], e["episodes"]) == key), None)
