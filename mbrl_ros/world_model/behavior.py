"""Actor and value learning on imagined rollouts (Dreamer).

Why an actor at all, when the robot plans with CEM/MCTS/MPPI? The value head must
be trained on returns of *some* policy; the returns of a learned, improving policy
make a far better bootstrap for a short planning horizon than those of random
actions, and the actor's mean action is a good proposal for the planners.

Actor gradients: dynamics backpropagation through the differentiable model
(DreamerV1/V2 for continuous control), with V3's return normalisation
(divide by max(1, P95 - P5) of the returns, EMA'd) so one entropy scale fits
any reward scale.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch
from torch import nn

from .networks import mlp, symlog


class Actor(nn.Module):
    """feat -> tanh-squashed Gaussian over actions in [-1, 1]."""

    def __init__(self, feat_dim: int, action_dim: int, hidden: int, layers: int,
                 min_std: float = 0.1, max_std: float = 1.0):
        super().__init__()
        self.net = mlp(feat_dim, 2 * action_dim, hidden, layers)
        self.min_std, self.max_std = min_std, max_std

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and std."""
        mean, raw_std = torch.chunk(self.net(feat), 2, -1)
        std = self.min_std + (self.max_std - self.min_std) * torch.sigmoid(raw_std + 2.0)
        return mean, std

    def mode(self, feat: torch.Tensor) -> torch.Tensor:
        """Deterministic action (run time, planner proposals)."""
        return torch.tanh(self.forward(feat)[0])

    def sample(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised action sample and the (pre-tanh) Gaussian entropy, summed over dims."""
        mean, std = self.forward(feat)
        action = torch.tanh(mean + std * torch.randn_like(std))
        entropy = (0.5 + 0.5 * torch.log(2 * torch.pi * std ** 2)).sum(-1)
        return action, entropy


def lambda_returns(reward: torch.Tensor, cont: torch.Tensor, value: torch.Tensor,
                   discount: float, lambda_: float) -> torch.Tensor:
    """TD(lambda) returns along dim 0.

    reward, cont, value: [H+1, N] for imagined states s_0..s_H (reward[k] and cont[k]
    are predicted on arriving at s_k; index 0 is unused). Returns R_0..R_{H-1}:
        R_k = r_{k+1} + gamma c_{k+1} ((1 - lambda) v_{k+1} + lambda R_{k+1}),  R_H = v_H.
    """
    horizon = reward.shape[0] - 1
    ret = value[-1]
    out = []
    for k in reversed(range(horizon)):
        ret = reward[k + 1] + discount * cont[k + 1] * ((1 - lambda_) * value[k + 1] + lambda_ * ret)
        out.append(ret)
    return torch.stack(out[::-1])


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """Let gradients flow *through* modules without computing gradients *for* their weights."""
    params = [p for m in modules for p in m.parameters()]
    states = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, s in zip(params, states):
            p.requires_grad_(s)


def behavior_losses(model, start_h: torch.Tensor, start_z: torch.Tensor,
                    with_value: bool = True) -> tuple[torch.Tensor, Optional[torch.Tensor], dict]:
    """Imagine `imagination_horizon` steps with the actor from posterior states;
    return (actor_loss, value_loss, metrics).

    `model` is a WorldModel; start states are detached from the world-model graph.
    with_value=False (the value is fitted elsewhere, `real_value_loss`): value_loss is None.
    """
    cfg = model.config
    h, z = start_h.detach(), start_z.detach()
    feats, entropies = [model.features(h, z)], []
    with frozen(model.rssm, model.reward_head, model.cont_head, model.value_head):
        for _ in range(cfg.imagination_horizon):
            action, entropy = model.actor.sample(feats[-1].detach())
            h, z = model.prior_step(h, z, action, sample=True)
            feats.append(model.features(h, z))
            entropies.append(entropy)
        feat = torch.stack(feats)                                  # [H+1, N, F]
        reward = model.reward_from_features(feat)
        cont = model.cont_from_features(feat)
        slow_value = model.slow_value_from_features(feat)
    returns = lambda_returns(reward, cont, slow_value, cfg.discount, cfg.lambda_)  # [H, N]
    # Weight later steps by the chance the episode is still running there.
    weight = torch.cumprod(torch.cat([torch.ones_like(cont[:1]), cfg.discount * cont[1:-1]]), 0).detach()

    scale = model.update_return_scale(returns.detach())
    entropy = torch.stack(entropies)
    actor_loss = -(weight * (returns / scale + cfg.actor_entropy * entropy)).mean()

    metrics = {
        "actor/loss": actor_loss.detach(),
        "actor/entropy": entropy.mean().detach(),
        "actor/imagined_return": returns.mean().detach(),
        "actor/return_scale": scale.detach(),
    }
    value_loss = None
    if with_value:
        value_pred = model.value_head(feat[:-1].detach()).squeeze(-1)  # symlog space
        value_loss = (weight * (value_pred - symlog(returns.detach())) ** 2).mean()
        metrics["value/loss"] = value_loss.detach()
    return actor_loss, value_loss, metrics


def real_value_loss(model, h: torch.Tensor, z: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
    """Value loss on the replayed real windows (config.value_from == "real").

    h, z: posterior states [B, T, ...] of the batch (detached); targets are TD(lambda) returns
    of the *recorded* rewards and terminations, bootstrapped with the slow value net. This
    is the value of the behaviour that collected the data (the planner + exploration, on the
    robot): one step of policy iteration when the planner bootstraps from it. Why have it
    besides the imagined one: a planner whose short horizon cannot see a slow failure (the
    inverted pendulum's cart drifting into the end of its rail) needs a value that knows
    about it from the first episodes, before an actor trained in imagination is any good.
    """
    cfg = model.config
    feat = model.features(h, z).detach()                             # [B, T, F]
    with torch.no_grad():
        slow_value = model.slow_value_from_features(feat)             # [B, T]
    reward = batch["reward"].to(feat.dtype)
    cont = 1.0 - batch["is_terminal"].to(feat.dtype)
    # Time-major for lambda_returns: reward[t]/cont[t] are recorded on arriving at step t.
    returns = lambda_returns(reward.T, cont.T, slow_value.T, cfg.discount, cfg.lambda_)  # [T-1, B]
    value_pred = model.value_head(feat[:, :-1]).squeeze(-1).T        # symlog space
    loss = ((value_pred - symlog(returns)) ** 2).mean()
    return loss, {"value/loss": loss.detach(), "value/real_return": returns.mean().detach()}
