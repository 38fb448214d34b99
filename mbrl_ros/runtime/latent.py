"""The latent-model interface the planners search in.

Anything that can roll a batch of latent states forward under actions and
score them is a LatentModel: the ONNX bundle (robot), the torch world model
(tests, side-by-side benchmarks) and small analytic models (planner tests).
Planners see only this interface, so the same CEM/MCTS/MPPI code runs on all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class LatentState:
    """A batch of model states: deterministic `h` [N, Dh] and stochastic `z` [N, Dz].

    Analytic models may put their whole state in `h` and leave `z` with Dz = 0.
    """

    h: np.ndarray
    z: np.ndarray

    def __post_init__(self):
        if self.h.ndim != 2 or self.z.ndim != 2 or self.h.shape[0] != self.z.shape[0]:
            raise ValueError(f"LatentState wants h [N, Dh] and z [N, Dz], got {self.h.shape} / {self.z.shape}")

    @property
    def batch(self) -> int:
        return self.h.shape[0]

    def take(self, index) -> "LatentState":
        """Rows `index` (an int array or slice) as a new batch."""
        return LatentState(self.h[index], self.z[index])

    def broadcast(self, n: int) -> "LatentState":
        """This state for n action sequences: a batch-1 state repeated, a batch-n state as is."""
        if self.batch == 1 and n != 1:
            return self.repeat(n)
        if self.batch != n:
            raise ValueError(f"state batch {self.batch} does not match {n} action sequences")
        return self

    def repeat(self, n: int) -> "LatentState":
        """A batch-1 state repeated n times."""
        if self.batch != 1:
            raise ValueError(f"repeat wants a batch-1 state, got batch {self.batch}")
        return LatentState(np.repeat(self.h, n, axis=0), np.repeat(self.z, n, axis=0))


@runtime_checkable
class LatentModel(Protocol):
    """What planners need from a model. Arrays are float32 numpy.

    action_dim: A. Actions are in [-1, 1].
    has_value: whether `value` is a learned estimate (else it is zeros and
        planners should not count on bootstrapping).
    """

    action_dim: int
    has_value: bool

    def step(self, state: LatentState, action: np.ndarray) -> tuple[LatentState, np.ndarray, np.ndarray]:
        """One imagined step for a batch: action [N, A] -> (next state, reward [N], value [N]).

        reward is the reward predicted for the step (from the next state), value
        the value estimate of the next state.
        """
        ...

    def imagine(self, state: LatentState, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Roll N action sequences [N, H, A] from `state` (batch 1, broadcast, or batch N).

        Returns (rewards [N, H], values [N, H]): predicted reward of each step and the
        value of the state reached after each step.
        """
        ...


def imagine_by_steps(model: LatentModel, state: LatentState, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`imagine` built from `step`: one model call per step. For models without a fused rollout,
    and the ONNX model's path for lengths its fused graph does not cover."""
    actions = np.asarray(actions, dtype=np.float32)
    if actions.ndim != 3:
        raise ValueError(f"actions must be [N, H, A], got shape {actions.shape}")
    n, horizon, _ = actions.shape
    state = state.broadcast(n)
    rewards = np.zeros((n, horizon), np.float32)
    values = np.zeros((n, horizon), np.float32)
    for t in range(horizon):
        state, rewards[:, t], values[:, t] = model.step(state, actions[:, t])
    return rewards, values
