"""`OnnxLatentModel`: the LatentModel the planners search in on the robot.

`step` runs the bundle's `step` graph (prior + reward/value/cont heads).
`imagine` runs the fused `imagine` graph, which unrolls a fixed horizon in one
call, when the requested horizon matches it; other horizons fall back to a loop
of `step` calls (same numbers, more calls).
"""
from __future__ import annotations

import numpy as np

from mbrl_ros.runtime.latent import LatentState, imagine_by_steps
from mbrl_ros.runtime.sessions import OrtGraph


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


class OnnxLatentModel:
    """LatentModel over a bundle's `step` and `imagine` graphs (see mbrl_ros.runtime.latent)."""

    def __init__(self, step_graph: OrtGraph, imagine_graph: OrtGraph, action_dim: int, has_value: bool,
                 horizon: int):
        self.step_graph = step_graph
        self.imagine_graph = imagine_graph
        self.action_dim = int(action_dim)
        self.has_value = bool(has_value)
        self.horizon = int(horizon)  # the fused graph's fixed horizon

    def _check_actions(self, actions: np.ndarray, ndim: int) -> np.ndarray:
        actions = _f32(actions)
        if actions.ndim != ndim or actions.shape[-1] != self.action_dim:
            want = "[N, A]" if ndim == 2 else "[N, H, A]"
            raise ValueError(f"actions must be {want} with A={self.action_dim}, got shape {actions.shape}")
        return actions

    def step(self, state: LatentState, action: np.ndarray) -> tuple[LatentState, np.ndarray, np.ndarray]:
        """One imagined step: (next state, reward [N], value [N]); value is zeros when has_value is False."""
        next_state, reward, value, _ = self.step_with_cont(state, action)
        return next_state, reward, value

    def step_with_cont(self, state: LatentState, action: np.ndarray):
        """`step` plus the predicted continuation probability [N] (1 - P(episode ends))."""
        action = self._check_actions(action, 2)
        if action.shape[0] != state.batch:
            raise ValueError(f"state batch {state.batch} does not match {action.shape[0]} actions")
        h, z, reward, value, cont = self.step_graph.run({"h": _f32(state.h), "z": _f32(state.z), "action": action})
        return LatentState(h, z), reward, value, cont

    def imagine(self, state: LatentState, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rewards [N, H] and values [N, H] of N action sequences [N, H, A] from `state`."""
        actions = self._check_actions(actions, 3)
        n, horizon, _ = actions.shape
        state = state.broadcast(n)
        if horizon == self.horizon:
            rewards, values = self.imagine_graph.run({"h": _f32(state.h), "z": _f32(state.z), "actions": actions})
            return rewards, values
        rewards = np.zeros((n, horizon), np.float32)
        values = np.zeros((n, horizon), np.float32)
        for t in range(horizon):
            state, rewards[:, t], values[:, t] = self.step(state, actions[:, t])
        return rewards, values


__all__ = ["OnnxLatentModel", "imagine_by_steps"]
