"""The torch world model seen through the runtime's interfaces (numpy in, numpy out): the
planners' LatentModel and the belief filter's FilterModel.

Lets the same CEM/MCTS/MPPI and filter code run on the torch model (tests, side-by-side
benchmarks against the ONNX bundle). Steps are deterministic (prior mean), as
at run time.
"""
from __future__ import annotations

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


class TorchFilterModel:
    """A WorldModel as the belief filter's model (mbrl_ros.runtime.belief.FilterModel), as a
    ModelBundle provides it from its ONNX graphs: `BeliefFilter(TorchFilterModel(world_model))`
    filters the torch model with the robot's own filter code."""

    def __init__(self, world_model: WorldModel, version: str = "torch"):
        self.model = world_model.eval()
        self.obs_spec = world_model.obs_spec
        self.action_dim = world_model.action_dim
        self.version = version

    @torch.no_grad()
    def initial_state(self, batch: int = 1) -> LatentState:
        h, z = self.model.initial_state(batch)
        return LatentState(h.numpy(), z.numpy())

    @torch.no_grad()
    def filter_step(self, state: LatentState, obs: dict, action: np.ndarray) -> LatentState:
        """Posterior update for a batch; actions clamped to [-1, 1] as in the exported filter graph."""
        image = torch.as_tensor(np.asarray(obs["image"])) if self.obs_spec.has_image else None
        embed = self.model.encode(image, _t(obs["joints"]))
        h, z = self.model.filter_step(_t(state.h), _t(state.z), torch.clamp(_t(action), -1.0, 1.0), embed)
        return LatentState(h.numpy(), z.numpy())
