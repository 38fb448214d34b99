"""Analytic LatentModels for planner tests and benchmarks (no learning involved).

Each keeps its whole state in `h` (z has width 0, except the random GRU model)
and implements `step`; `imagine` is the step-by-step reference rollout.

- DoubleIntegratorModel: x' = x + dt v, v' = v + dt u with quadratic reward,
  plus `lqr_first_action` (finite-horizon discounted Riccati) as ground truth.
- TrapModel: the greedy action (largest immediate reward) springs a trap.
- GoalBeyondHorizonModel: the reward lies beyond the horizon; only a value
  function can see it.
- RandomGRULatentModel: a random Dreamer-style RSSM step (GRU + MLP heads) in
  numpy, sized like the default learned model, for timing planners.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from mbrl_ros.runtime.latent import LatentState, imagine_by_steps


def state_of(vector) -> LatentState:
    """A batch-1 LatentState holding `vector` in h (z empty)."""
    h = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    return LatentState(h, np.zeros((1, 0), np.float32))


class _AnalyticModel:
    action_dim = 1
    has_value = False

    def imagine(self, state: LatentState, actions: np.ndarray):
        return imagine_by_steps(self, state, actions)


class DoubleIntegratorModel(_AnalyticModel):
    """State (x, v); x' = x + dt v, v' = v + dt u; reward = -(x^2 + c v^2 + r u^2).

    The reward of a step is computed from the state BEFORE the step and the
    action taken, matching the cost of a standard LQR problem. With
    `terminal_matrix` P the value of a state s is -s' P s (has_value = True).
    """

    def __init__(self, dt: float = 0.1, c: float = 0.1, r: float = 0.01,
                 terminal_matrix: Optional[np.ndarray] = None):
        self.dt, self.c, self.r = float(dt), float(c), float(r)
        self.A = np.array([[1.0, dt], [0.0, 1.0]])
        self.B = np.array([[0.0], [dt]])
        self.Q = np.diag([1.0, c])
        self.R = np.array([[r]])
        self.P = None if terminal_matrix is None else np.asarray(terminal_matrix, dtype=np.float64)
        self.has_value = self.P is not None

    def step(self, state: LatentState, action: np.ndarray):
        s = state.h.astype(np.float64)
        u = np.asarray(action, dtype=np.float64)[:, 0]
        reward = -(s[:, 0] ** 2 + self.c * s[:, 1] ** 2 + self.r * u ** 2)
        nxt = s @ self.A.T + u[:, None] * self.B.T
        value = np.zeros(len(s)) if self.P is None else -np.einsum("ni,ij,nj->n", nxt, self.P, nxt)
        return (LatentState(nxt.astype(np.float32), state.z), reward.astype(np.float32), value.astype(np.float32))

    def lqr_first_action(self, s0, horizon: int, discount: float, use_value: bool = True) -> float:
        """Optimal first action for max sum_t discount^t r_t (+ discount^H value(s_H)), unconstrained.

        Discounted finite-horizon Riccati recursion on the costs -r:
        K_t = (R + g B'P B)^-1 g B'P A,  P_t = Q + K'R K + g (A - B K)' P (A - B K).
        """
        P = self.P if (use_value and self.P is not None) else np.zeros((2, 2))
        K = None
        for _ in range(horizon):
            K = np.linalg.solve(self.R + discount * self.B.T @ P @ self.B, discount * self.B.T @ P @ self.A)
            closed = self.A - self.B @ K
            P = self.Q + K.T @ self.R @ K + discount * closed.T @ P @ closed
        return float(-(K @ np.asarray(s0, dtype=np.float64))[0])


class TrapModel(_AnalyticModel):
    """Reward = bonus * a, but an action above `threshold` springs a trap that
    costs `penalty` on every later step. State: h = [trapped (0/1)].

    Greedy (one-step) choice: a = +1 (largest immediate reward) -> trapped.
    With lookahead >= 2 steps: a <= threshold, best exactly at the threshold.
    """

    def __init__(self, bonus: float = 0.1, threshold: float = 0.5, penalty: float = 1.0):
        self.bonus, self.threshold, self.penalty = bonus, threshold, penalty

    def step(self, state: LatentState, action: np.ndarray):
        trapped = state.h[:, 0]
        a = np.asarray(action, dtype=np.float32)[:, 0]
        reward = self.bonus * a - self.penalty * trapped
        nxt = np.maximum(trapped, (a > self.threshold).astype(np.float32))
        return LatentState(nxt[:, None].astype(np.float32), state.z), reward.astype(np.float32), np.zeros_like(reward)


class GoalBeyondHorizonModel(_AnalyticModel):
    """x' = x + speed * a; reward = -cost * a^2, plus `goal_reward` once x' >= goal.

    From x = 0 the goal is goal/speed steps away (10 by default), beyond a short
    horizon, so without a value every action looks like pure cost and the
    planner stays put. The value, when enabled, is `value_scale * x'` (a shaped
    estimate pointing at the goal) and the planner moves towards it.
    """

    def __init__(self, speed: float = 0.1, cost: float = 0.01, goal: float = 1.0, goal_reward: float = 1.0,
                 value_scale: float = 1.0, has_value: bool = True):
        self.speed, self.cost, self.goal, self.goal_reward = speed, cost, goal, goal_reward
        self.value_scale = value_scale
        self.has_value = has_value

    def step(self, state: LatentState, action: np.ndarray):
        a = np.asarray(action, dtype=np.float32)[:, 0]
        x = state.h[:, 0] + self.speed * a
        reward = -self.cost * a ** 2 + self.goal_reward * (x >= self.goal)
        value = self.value_scale * x if self.has_value else np.zeros_like(x)
        return LatentState(x[:, None].astype(np.float32), state.z), reward.astype(np.float32), value.astype(np.float32)


class NaNModel(_AnalyticModel):
    """Wraps a model and poisons its rewards with NaN where `poison(actions)` is True
    (default: everywhere), to check that planners survive a broken model."""

    def __init__(self, inner, poison=None):
        self.inner = inner
        self.action_dim = inner.action_dim
        self.has_value = inner.has_value
        self.poison = poison or (lambda a: np.ones(len(a), bool))

    def step(self, state, action):
        nxt, reward, value = self.inner.step(state, action)
        reward = np.where(self.poison(np.asarray(action)), np.float32(np.nan), reward).astype(np.float32)
        return nxt, reward, value


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _mlp(layers: list, x: np.ndarray) -> np.ndarray:
    for w in layers[:-1]:
        x = _elu(x @ w)
    return (x @ layers[-1])[:, 0]


class RandomGRULatentModel:
    """Random-weight Dreamer-style imagination step, for timing (not for control).

    x = elu([z, a] W_in); h' = GRU(h, x); z' = tanh(mlp(h')) (the prior's mode);
    reward = mlp([h', z']), value = mlp([h', z']). All float32 matmuls, so the
    cost per transition is close to that of a learned RSSM of the same sizes.
    """

    def __init__(self, action_dim: int = 2, deter: int = 128, stoch: int = 32, hidden: int = 128,
                 head_layers: int = 2, has_value: bool = True, seed: int = 0):
        rng = np.random.default_rng(seed)

        def lin(n_in, n_out):
            return (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)

        self.action_dim, self.deter, self.stoch, self.hidden = action_dim, deter, stoch, hidden
        self.has_value = has_value
        self.W_in = lin(stoch + action_dim, hidden)
        self.W_x = lin(hidden, 3 * deter)
        self.W_h = lin(deter, 3 * deter)
        self.W_p1, self.W_p2 = lin(deter, hidden), lin(hidden, stoch)
        # Reward/value heads: head_layers hidden layers, like the world model's MLP heads.
        self.reward_head = [lin(deter + stoch, hidden)] + [lin(hidden, hidden) for _ in range(head_layers - 1)] \
            + [lin(hidden, 1)]
        self.value_head = [lin(deter + stoch, hidden)] + [lin(hidden, hidden) for _ in range(head_layers - 1)] \
            + [lin(hidden, 1)]

    def initial_state(self, batch: int = 1, seed: int = 1) -> LatentState:
        rng = np.random.default_rng(seed)
        return LatentState(np.tanh(rng.standard_normal((batch, self.deter))).astype(np.float32),
                           np.tanh(rng.standard_normal((batch, self.stoch))).astype(np.float32))

    def step(self, state: LatentState, action: np.ndarray):
        d = self.deter
        x = _elu(np.concatenate([state.z, np.asarray(action, np.float32)], axis=1) @ self.W_in)
        gx, gh = x @ self.W_x, state.h @ self.W_h
        reset = _sigmoid(gx[:, :d] + gh[:, :d])
        update = _sigmoid(gx[:, d:2 * d] + gh[:, d:2 * d])
        cand = np.tanh(gx[:, 2 * d:] + reset * gh[:, 2 * d:])
        h = (1.0 - update) * cand + update * state.h
        z = np.tanh(_elu(h @ self.W_p1) @ self.W_p2)
        feat = np.concatenate([h, z], axis=1)
        reward = _mlp(self.reward_head, feat)
        value = _mlp(self.value_head, feat) if self.has_value else np.zeros(len(h), np.float32)
        return LatentState(h.astype(np.float32), z.astype(np.float32)), reward.astype(np.float32), value.astype(np.float32)

    def imagine(self, state: LatentState, actions: np.ndarray):
        return imagine_by_steps(self, state, actions)
