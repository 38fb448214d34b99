"""The torch world model seen through the planners' LatentModel interface (numpy in, numpy out).

Lets the same CEM/MCTS/MPPI code run on the torch model (tests, side-by-side
benchmarks against the ONNX bundle). Steps are deterministic (prior mean), as
at run time.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..runtime.latent import LatentState
from .model import WorldModel


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


class TorchLatentModel:
    """LatentModel over a WorldModel: reward and value are those of the state reached by each step."""

    def __init__(self, world_model: WorldModel):
        self.model = world_model.eval()
        self.action_dim = world_model.action_dim
        self.has_value = world_model.has_value

    @torch.no_grad()
    def _step(self, h: torch.Tensor, z: torch.Tensor, action: torch.Tensor):
        h, z = self.model.prior_step(h, z, torch.clamp(action, -1.0, 1.0))
        reward = self.model.reward(h, z)
        value = self.model.value(h, z) if self.has_value else torch.zeros_like(reward)
        return h, z, reward, value

    def step(self, state: LatentState, action: np.ndarray) -> tuple[LatentState, np.ndarray, np.ndarray]:
        """One imagined step for a batch: action [N, A] -> (next state, reward [N], value [N])."""
        action = np.asarray(action, np.float32)
        if action.shape != (state.batch, self.action_dim):
            raise ValueError(f"action must be [{state.batch}, {self.action_dim}], got {action.shape}")
        h, z, reward, value = self._step(_t(state.h), _t(state.z), _t(action))
        return LatentState(h.numpy(), z.numpy()), reward.numpy(), value.numpy()

    def imagine(self, state: LatentState, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Roll N action sequences [N, H, A] from `state` (batch 1 broadcast, or batch N)."""
        actions = np.asarray(actions, np.float32)
        if actions.ndim != 3 or actions.shape[2] != self.action_dim:
            raise ValueError(f"actions must be [N, H, {self.action_dim}], got shape {actions.shape}")
        n, horizon, _ = actions.shape
        state = state.broadcast(n)
        h, z, acts = _t(state.h), _t(state.z), _t(actions)
        rewards, values = [], []
        for t in range(horizon):
            h, z, reward, value = self._step(h, z, acts[:, t])
            rewards.append(reward)
            values.append(value)
        return torch.stack(rewards, 1).numpy(), torch.stack(values, 1).numpy()

    @torch.no_grad()
    def policy(self, state: LatentState) -> np.ndarray:
        """The actor's deterministic action for each state, [N, A] (a proposal for planners)."""
        return self.model.policy(_t(state.h), _t(state.z)).numpy()


class TorchBeliefFilter:
    """Tracks the posterior latent state from observations, one control tick at a time."""

    def __init__(self, world_model: WorldModel):
        self.model = world_model.eval()
        self.state: Optional[LatentState] = None
        self.reset()

    def reset(self) -> LatentState:
        """Start a new episode: the next update uses the initial state and a zero action."""
        with torch.no_grad():
            h, z = self.model.initial_state(1)
        self.state = LatentState(h.numpy(), z.numpy())
        return self.state

    @torch.no_grad()
    def update(self, obs: dict, last_action: Optional[np.ndarray] = None) -> LatentState:
        """Fold in observation `obs` reached after `last_action` (zeros at an episode's start)."""
        self.model.obs_spec.validate(obs)
        action = np.zeros(self.model.action_dim, np.float32) if last_action is None else \
            np.asarray(last_action, np.float32).reshape(self.model.action_dim)
        image = torch.as_tensor(np.asarray(obs["image"]))[None] if self.model.obs_spec.has_image else None
        embed = self.model.encode(image, _t(obs["joints"])[None])
        h, z = self.model.filter_step(_t(self.state.h), _t(self.state.z),
                                      torch.clamp(_t(action)[None], -1.0, 1.0), embed)
        self.state = LatentState(h.numpy(), z.numpy())
        return self.state
