"""Analytic decision tasks: where lookahead over branching choices matters (numpy, exact models).

The model is also the environment, so a planner's closed-loop return measures its search alone.
Used by tests/test_mcts.py and `benchmarks/bench_planners.py --decision`.

- trap: TrapModel (planners/testing.py) in closed loop: reward 0.1 a, but any a > 0.5 costs 1 on
  every later step. Best: a = 0.5 every step (return 0.05 per step).
- wall: a point in the plane heads for a goal straight ahead, with a wall across the direct line;
  going round it above or below is equally good, going straight is not. A Gaussian over action
  sequences that keeps elites from both detours averages them into the wall.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mbrl_ros.runtime.latent import LatentState
from mbrl_ros.runtime.planners.testing import TrapModel, _AnalyticModel


class WallModel(_AnalyticModel):
    """h = [x, y]; (x, y)' = (x, y) + speed * a (a in [-1, 1]^2), except that a move whose x
    would cross the wall (x = wall_x, |y| < wall_half) stops at the wall's face. Reward
    -|(x, y)' - goal| per step, +goal_bonus within goal_radius."""

    action_dim = 2
    has_value = False

    def __init__(self, speed: float = 0.1, goal=(1.0, 0.0), wall_x: float = 0.5, wall_half: float = 0.15,
                 goal_radius: float = 0.1, goal_bonus: float = 1.0):
        self.speed, self.goal = speed, np.asarray(goal, np.float64)
        self.wall_x, self.wall_half = wall_x, wall_half
        self.goal_radius, self.goal_bonus = goal_radius, goal_bonus

    def step(self, state: LatentState, action: np.ndarray):
        pos = state.h.astype(np.float64)
        a = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        nxt = pos + self.speed * a
        # Crossing x = wall_x while inside the wall's span (at the crossing): stop at the face.
        crosses = (pos[:, 0] < self.wall_x) & (nxt[:, 0] >= self.wall_x)
        frac = np.where(crosses, (self.wall_x - pos[:, 0]) / np.maximum(nxt[:, 0] - pos[:, 0], 1e-9), 1.0)
        y_at = pos[:, 1] + frac * (nxt[:, 1] - pos[:, 1])
        blocked = crosses & (np.abs(y_at) < self.wall_half)
        nxt[blocked, 0] = self.wall_x - 1e-3
        nxt[blocked, 1] = y_at[blocked]
        dist = np.linalg.norm(nxt - self.goal, axis=1)
        reward = -dist + self.goal_bonus * (dist < self.goal_radius)
        return (LatentState(nxt.astype(np.float32), state.z), reward.astype(np.float32),
                np.zeros(len(reward), np.float32))


@dataclass
class DecisionTask:
    model: object
    start: list
    steps: int
    lookahead: int
    extra: dict = field(default_factory=dict)

    def planner_config(self, name: str) -> dict:
        key = "depth" if name == "mcts" else "horizon"
        return {key: self.lookahead, **self.extra}


DECISION_TASKS = {
    "trap": DecisionTask(TrapModel(bonus=0.1, threshold=0.5, penalty=1.0), [0.0], steps=10, lookahead=4),
    "wall": DecisionTask(WallModel(), [0.2, 0.0], steps=20, lookahead=10),
}


def run_decision_episode(task: DecisionTask, planner: str, config: dict, seed: int) -> float:
    """Closed-loop return of `planner` on `task` (the model is the environment)."""
    from mbrl_ros.runtime.planners import make_planner

    agent = make_planner(planner, task.model, config, seed=seed)
    agent.reset()
    state = LatentState(np.asarray([task.start], np.float32), np.zeros((1, 0), np.float32))
    total = 0.0
    for _ in range(task.steps):
        action = agent.plan(state).action
        state, reward, _ = task.model.step(state, action[None])
        agent.advance(action)
        total += float(reward[0])
    return total
