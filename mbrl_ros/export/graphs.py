"""The torch modules that become the bundle's ONNX graphs.

Each wraps a WorldModel and calls only its export API (encode, filter_step,
prior_step, reward, value, cont), deterministically (sample=False). Actions are
clamped to [-1, 1] inside the graphs, as the torch LatentModel/BeliefFilter do,
so both sides see the same numbers whatever a planner feeds in.
"""
from __future__ import annotations

import torch
from torch import nn


def _heads(wm, h: torch.Tensor, z: torch.Tensor):
    """(reward, value, cont) of state (h, z); value is zeros for a model without a value head."""
    reward = wm.reward(h, z)
    value = wm.value(h, z) if wm.has_value else torch.zeros_like(reward)
    return reward, value, wm.cont(h, z)


class FilterGraph(nn.Module):
    """Encoder + posterior update: (image uint8 [B,H,W,3],) joints [B,J], h, z, action -> h', z'."""

    def __init__(self, world_model):
        super().__init__()
        self.wm = world_model
        self.has_image = world_model.obs_spec.has_image

    def forward(self, *inputs):
        if self.has_image:
            image, joints, h, z, action = inputs
        else:
            image, (joints, h, z, action) = None, inputs
        if self.wm.obs_spec.joint_dim == 0:
            # Pixels only (e.g. DMC with proprio=False): the exporter drops an unused input, and the
            # contract has `joints`; tie it in with an exact zero (a sum over the empty axis).
            h = h + joints.sum(-1, keepdim=True)
        embed = self.wm.encode(image, joints)
        return self.wm.filter_step(h, z, torch.clamp(action, -1.0, 1.0), embed, sample=False)


class StepGraph(nn.Module):
    """One imagined step: h, z, action -> h', z', reward, value, cont (heads on the new state)."""

    def __init__(self, world_model):
        super().__init__()
        self.wm = world_model

    def forward(self, h, z, action):
        h, z = self.wm.prior_step(h, z, torch.clamp(action, -1.0, 1.0), sample=False)
        reward, value, cont = _heads(self.wm, h, z)
        return h, z, reward, value, cont


class ImagineGraph(nn.Module):
    """`fused_horizon` imagined steps unrolled: h, z, actions [B,H,A] -> rewards, values [B,H].

    No continuation head here: planners score sequences with rewards and values
    only, and on CPU the cont MLP would be ~15% of the rollout's arithmetic.
    (`step` still outputs cont.)

    Unrolled at trace time (a Python loop), so the graph has a fixed length and
    no Loop operator: ORT fuses and plans the whole rollout as one graph.
    """

    def __init__(self, world_model, fused_horizon: int):
        super().__init__()
        if fused_horizon < 1:
            raise ValueError(f"fused_horizon must be >= 1, got {fused_horizon}")
        self.wm = world_model
        self.fused_horizon = int(fused_horizon)

    def forward(self, h, z, actions):
        actions = torch.clamp(actions, -1.0, 1.0)
        rewards, values = [], []
        for t in range(self.fused_horizon):
            h, z = self.wm.prior_step(h, z, actions[:, t], sample=False)
            reward = self.wm.reward(h, z)
            rewards.append(reward)
            values.append(self.wm.value(h, z) if self.wm.has_value else torch.zeros_like(reward))
        return torch.stack(rewards, 1), torch.stack(values, 1)
