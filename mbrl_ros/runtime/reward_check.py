"""Whether a model bundle has a reward to plan for (numpy-free, torch-free: runtime layer).

A bundle trained on recordings without a reward (ingest `reward_source: none`) has a
representation and dynamics but no task: its reward and value outputs are untrained
weights, and planning on them would drive the robot toward noise. The task lives in
the bundle: `mbrl-ros relabel --task ...` computes the task's rewards on the same
episodes, trains only the reward/value heads and writes a checkpoint that exports to a
bundle with `has_reward: true`. Or a task is given at run time: a goal image
(goal_task.GoalStore), whose bundle carries a `task` and plans on latent similarity.
Until then the control loop refuses to plan with it and sends its safe command
(ControlLoop._tick calls `plan_refusal`).
"""
from __future__ import annotations

from typing import Optional


def plan_refusal(bundle) -> Optional[str]:
    """None if `bundle` can be planned with, else the one-line reason it cannot."""
    if getattr(bundle.manifest, "has_reward", True) or getattr(bundle, "task", None):
        return None
    return (f"model {bundle.version} was trained without a reward (reward_source none) and has no task: "
            "not planning, sending the safe command. Give it a task with `mbrl-ros relabel --checkpoint CKPT "
            "--cache CACHE --task TASK.yaml --out RUN`, then `mbrl-ros export` the new checkpoint")
