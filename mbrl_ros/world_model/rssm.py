"""Recurrent state-space model: deterministic GRU state h + Gaussian latent z.

    h_t = GRU(h_{t-1}, [z_{t-1}, a_t])        (a_t is the action applied before obs t)
    prior     p(z_t | h_t)        -- imagination / planning
    posterior q(z_t | h_t, e_t)   -- filtering, e_t = encode(obs_t)

We use a diagonal Gaussian z (DreamerV1/PlaNet) rather than V2/V3's categorical
latents: its deterministic path (the mean) is smooth, which suits gradient-free
planners that score many nearby action sequences, and it keeps the per-transition
cost small (Dz = 32).
"""
from __future__ import annotations

import torch
from torch import nn

from .networks import mlp


class GaussianStats(tuple):
    """(mean, std) of a diagonal Gaussian; a tuple so it traces and unpacks cheaply."""

    __slots__ = ()

    def __new__(cls, mean: torch.Tensor, std: torch.Tensor):
        return super().__new__(cls, (mean, std))

    @property
    def mean(self) -> torch.Tensor:
        return self[0]

    @property
    def std(self) -> torch.Tensor:
        return self[1]

    def sample(self) -> torch.Tensor:
        """Reparameterised sample (gradients flow to mean and std)."""
        return self.mean + self.std * torch.randn_like(self.std)

    def detach(self) -> "GaussianStats":
        return GaussianStats(self.mean.detach(), self.std.detach())


def gaussian_kl(p: GaussianStats, q: GaussianStats) -> torch.Tensor:
    """KL(p || q) for diagonal Gaussians, summed over the last dim."""
    var_ratio = (p.std / q.std) ** 2
    mean_term = ((p.mean - q.mean) / q.std) ** 2
    return 0.5 * (var_ratio + mean_term - 1.0 - torch.log(var_ratio)).sum(-1)


class RSSM(nn.Module):
    """The transition (GRU + prior) and the posterior update."""

    def __init__(self, deter: int, stoch: int, hidden: int, action_dim: int, embed_dim: int, min_std: float):
        super().__init__()
        self.deter, self.stoch, self.min_std = deter, stoch, min_std
        self.img_in = nn.Sequential(nn.Linear(stoch + action_dim, hidden), nn.LayerNorm(hidden), nn.SiLU())
        self.gru = nn.GRUCell(hidden, deter)
        self.prior_net = mlp(deter, 2 * stoch, hidden, 1)
        self.post_net = mlp(deter + embed_dim, 2 * stoch, hidden, 1)

    def _stats(self, raw: torch.Tensor) -> GaussianStats:
        mean, raw_std = torch.chunk(raw, 2, dim=-1)
        # Bounded std in [min_std, min_std + 2] (DreamerV2): keeps KL finite early in training.
        std = 2.0 * torch.sigmoid(raw_std / 2.0) + self.min_std
        return GaussianStats(mean, std)

    def transition(self, h: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """h_next = GRU(h, [z, action])."""
        return self.gru(self.img_in(torch.cat([z, action], -1)), h)

    def prior(self, h: torch.Tensor) -> GaussianStats:
        return self._stats(self.prior_net(h))

    def posterior(self, h: torch.Tensor, embed: torch.Tensor) -> GaussianStats:
        return self._stats(self.post_net(torch.cat([h, embed], -1)))

