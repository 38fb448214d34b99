"""WorldModel: variational observation model + RSSM + reward/continuation/value heads + actor.

Public API (the ONNX export and the runtime rely on these names; batch-first
float32 tensors except the raw uint8 image):

    WorldModel(config, obs_spec, action_dim)
    .deter_dim .stoch_dim .embed_dim .obs_spec .action_dim .has_value
    encode(image uint8[B,H,W,3] | None, joints [B,J]) -> embed [B,E]
    initial_state(batch) -> (h [B,Dh], z [B,Dz])                        zeros
    filter_step(h, z, action, embed, sample=False) -> (h', z')          posterior update
    prior_step(h, z, action, sample=False) -> (h', z')                  imagination
    reward(h, z) / value(h, z) / cont(h, z) -> [B]
    policy(h, z) -> action [B,A]                                        actor mean
    decode(h, z) -> {"image": float [B,H,W,3] in [0,1], "joints": [B,J]}
    observe(batch) -> dict of [B,T,...] posterior/prior sequences
    loss(batch) -> (total, metrics)                                     world-model loss

With sample=False the steps use the Gaussian mean: the deterministic path used at
run time and exported to ONNX.
"""
from __future__ import annotations

import copy
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..spec import ObsSpec
from .behavior import Actor
from .config import WorldModelConfig
from .networks import ImageDecoder, ImageEncoder, JointCodec, mlp, symexp, symlog
from .rssm import RSSM, GaussianStats, gaussian_kl


def batch_to_torch(batch: dict, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Numpy episode windows -> tensors (images stay uint8; floats become float32)."""
    out = {}
    for key, value in batch.items():
        t = torch.as_tensor(np.asarray(value)) if not torch.is_tensor(value) else value
        if t.dtype == torch.float64:
            t = t.to(torch.float32)
        out[key] = t.to(device)
    return out


class WorldModel(nn.Module):
    """Dreamer-style world model for observations {"image"?, "joints"} and actions in [-1, 1]."""

    def __init__(self, config: WorldModelConfig, obs_spec: ObsSpec, action_dim: int):
        super().__init__()
        if action_dim < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        if not obs_spec.has_image and obs_spec.joint_dim == 0:
            raise ValueError("obs_spec has neither an image nor joints: nothing to learn from")
        self.config, self.obs_spec, self.action_dim = config, obs_spec, int(action_dim)
        cfg = config
        self.deter_dim, self.stoch_dim = cfg.deter, cfg.stoch
        feat_dim = cfg.deter + cfg.stoch

        # Observation encoders -> one embedding.
        self.image_encoder: Optional[ImageEncoder] = None
        embed_dim = 0
        if obs_spec.has_image:
            self.image_encoder = ImageEncoder(obs_spec.image_shape, cfg.cnn_depth, cfg.keypoints, cfg.conv_features)
            embed_dim += self.image_encoder.out_dim
        self.joint_codec = JointCodec(obs_spec.joint_dim, obs_spec.angle_joints)
        self.joint_encoder: Optional[nn.Module] = None
        if obs_spec.joint_dim > 0:
            self.joint_encoder = mlp(self.joint_codec.feature_dim, cfg.joint_embed, cfg.hidden, cfg.mlp_layers)
            embed_dim += cfg.joint_embed
        self.embed_dim = embed_dim

        self.rssm = RSSM(cfg.deter, cfg.stoch, cfg.hidden, self.action_dim, embed_dim, cfg.min_std)

        # Observation decoders (the "VAE" half).
        self.image_decoder: Optional[ImageDecoder] = None
        if self.image_encoder is not None:
            self.image_decoder = ImageDecoder(feat_dim, self.image_encoder.grid, self.image_encoder.stages)
        self.joint_decoder = mlp(feat_dim, self.joint_codec.feature_dim, cfg.hidden, cfg.mlp_layers) \
            if obs_spec.joint_dim > 0 else None

        # Heads. Reward and value predict symlog targets (scale-free MSE, DreamerV3's transform).
        self.reward_head = mlp(feat_dim, 1, cfg.hidden, cfg.mlp_layers)
        # Training only, never exported: reward from one observation's embedding (frame_reward_loss).
        self.frame_reward_head = mlp(embed_dim, 1, cfg.hidden, cfg.mlp_layers) \
            if cfg.frame_reward_scale > 0 else None
        self.cont_head = mlp(feat_dim, 1, cfg.hidden, cfg.mlp_layers)
        self.value_head = mlp(feat_dim, 1, cfg.hidden, cfg.mlp_layers)
        self.slow_value_head = copy.deepcopy(self.value_head).requires_grad_(False)
        self.actor = Actor(feat_dim, self.action_dim, cfg.hidden, cfg.mlp_layers)
        self.register_buffer("return_scale", torch.ones(()))
        if cfg.joint_loss_norm and self.joint_decoder is not None:
            # per-feature variance of the decoded joint features (EMA; 0 = not yet seen any data)
            self.register_buffer("joint_feature_var", torch.zeros(self.joint_codec.feature_dim))
        self.has_value = cfg.has_value

    # ------------------------------------------------------------------ parts
    def world_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by the world-model loss (everything except actor and value)."""
        skip = {id(p) for m in (self.actor, self.value_head, self.slow_value_head) for p in m.parameters()}
        return [p for p in self.parameters() if id(p) not in skip]

    @staticmethod
    def features(h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([h, z], -1)

    # ------------------------------------------------------------ export API
    def encode(self, image: Optional[torch.Tensor], joints: torch.Tensor) -> torch.Tensor:
        """Raw observation -> embedding [B, E]. `image` is uint8 [B,H,W,3] (None for joints-only)."""
        parts = []
        if self.image_encoder is not None:
            if image is None:
                raise ValueError("this world model needs an image: encode(image=None, ...) given")
            parts.append(self.image_encoder(image))
        if self.joint_encoder is not None:
            parts.append(self.joint_encoder(self.joint_codec.features(joints)))
        return torch.cat(parts, -1) if len(parts) > 1 else parts[0]

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zeros: the state before the first observation of an episode."""
        dev = self.return_scale.device
        return torch.zeros(batch, self.deter_dim, device=dev), torch.zeros(batch, self.stoch_dim, device=dev)

    def filter_step(self, h, z, action, embed, sample: bool = False):
        """Posterior update: h' = GRU(h, z, action); z' ~ q(z | h', embed) (its mean if not sample)."""
        h_next = self.rssm.transition(h, z, action)
        post = self.rssm.posterior(h_next, embed)
        return h_next, (post.sample() if sample else post.mean)

    def prior_step(self, h, z, action, sample: bool = False):
        """Imagination: h' = GRU(h, z, action); z' ~ p(z | h') (its mean if not sample)."""
        h_next = self.rssm.transition(h, z, action)
        prior = self.rssm.prior(h_next)
        return h_next, (prior.sample() if sample else prior.mean)

    def reward_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        return symexp(self.reward_head(feat).squeeze(-1))

    def cont_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.cont_head(feat).squeeze(-1))

    def value_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        return symexp(self.value_head(feat).squeeze(-1))

    def slow_value_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        return symexp(self.slow_value_head(feat).squeeze(-1))

    def reward(self, h, z) -> torch.Tensor:
        """Predicted reward of arriving in state (h, z), [B]."""
        return self.reward_from_features(self.features(h, z))

    def cont(self, h, z) -> torch.Tensor:
        """Probability the episode continues after state (h, z), [B]."""
        return self.cont_from_features(self.features(h, z))

    def value(self, h, z) -> torch.Tensor:
        """Value estimate (discounted TD(lambda) return of the actor) of state (h, z), [B]."""
        return self.value_from_features(self.features(h, z))

    def policy(self, h, z) -> torch.Tensor:
        """The actor's deterministic action for state (h, z), [B, A] in [-1, 1]."""
        return self.actor.mode(self.features(h, z))

    def decode(self, h, z) -> dict[str, torch.Tensor]:
        """Reconstruct observations: image float [B,H,W,3] in [0,1] and joints [B,J]."""
        feat = self.features(h, z)
        out = {}
        if self.image_decoder is not None:
            out["image"] = torch.clamp(self.image_decoder(feat) + 0.5, 0.0, 1.0)
        if self.joint_decoder is not None:
            out["joints"] = self.joint_codec.joints(self.joint_decoder(feat))
        return out

    # ---------------------------------------------------------------- training
    def check_batch(self, batch: dict) -> None:
        """Raise ValueError naming the mismatch between a batch and this model's specs."""
        joints = batch.get("joints")
        if joints is None or tuple(joints.shape[2:]) != (self.obs_spec.joint_dim,):
            raise ValueError(f"batch 'joints' must be [B,T,{self.obs_spec.joint_dim}], "
                             f"got {None if joints is None else tuple(joints.shape)}")
        action = batch.get("action")
        if action is None or tuple(action.shape[2:]) != (self.action_dim,):
            raise ValueError(f"batch 'action' must be [B,T,{self.action_dim}], "
                             f"got {None if action is None else tuple(action.shape)}")
        if self.obs_spec.has_image:
            image = batch.get("image")
            if image is None or tuple(image.shape[2:]) != self.obs_spec.image_shape:
                raise ValueError(f"batch 'image' must be [B,T,{','.join(map(str, self.obs_spec.image_shape))}], "
                                 f"got {None if image is None else tuple(image.shape)}")

    def encode_sequence(self, batch: dict) -> torch.Tensor:
        """Embed every step of a [B, T] batch -> [B, T, E]."""
        b, t = batch["joints"].shape[:2]
        image = batch["image"].reshape(b * t, *batch["image"].shape[2:]) if self.image_encoder is not None else None
        joints = batch["joints"].reshape(b * t, -1)
        return self.encode(image, joints).reshape(b, t, -1)

    def observe(self, batch: dict, sample: bool = True) -> dict[str, torch.Tensor]:
        """Filter a [B, T] batch. The state is reset to initial_state wherever is_first is set.

        Returns h, z (posterior, sampled if `sample`), post_mean/post_std, prior_mean/prior_std,
        all [B, T, ...].
        """
        batch = batch_to_torch(batch, self.return_scale.device)
        self.check_batch(batch)
        embed = self.encode_sequence(batch)
        b, steps = embed.shape[:2]
        h, z = self.initial_state(b)
        keep = 1.0 - batch["is_first"].to(torch.float32)  # [B, T]: 0 where a new episode starts
        out = {k: [] for k in ("h", "z", "post_mean", "post_std", "prior_mean", "prior_std")}
        for t in range(steps):
            mask = keep[:, t:t + 1]
            h, z, action = h * mask, z * mask, batch["action"][:, t] * mask
            h = self.rssm.transition(h, z, action)
            prior = self.rssm.prior(h)
            post = self.rssm.posterior(h, embed[:, t])
            z = post.sample() if sample else post.mean
            for key, value in (("h", h), ("z", z), ("post_mean", post.mean), ("post_std", post.std),
                               ("prior_mean", prior.mean), ("prior_std", prior.std)):
                out[key].append(value)
        return {k: torch.stack(v, 1) for k, v in out.items()}

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """World-model loss on a [B, T] batch: reconstructions + reward + continuation + balanced KL.

        Returns (total, metrics) where metrics are detached scalars; metrics["_states"]
        holds the detached posterior (h, z) for imagination.
        """
        cfg = self.config
        batch = batch_to_torch(batch, self.return_scale.device)
        post = self.observe(batch)
        feat = self.features(post["h"], post["z"])
        metrics: dict = {}
        total = torch.zeros((), device=feat.device)

        if self.image_decoder is not None:
            target = batch["image"].to(torch.float32) / 255.0 - 0.5
            pred = self.image_decoder(feat.flatten(0, 1)).reshape(target.shape)
            image_loss = ((pred - target) ** 2).sum((-3, -2, -1)).mean()  # sum over pixels (Dreamer)
            total = total + cfg.image_scale * image_loss
            metrics["loss/image"] = image_loss.detach()
            metrics["loss/image_mse_per_pixel"] = (image_loss / target[0, 0].numel()).detach()
        if self.joint_decoder is not None:
            target = self.joint_codec.features(batch["joints"])
            joint_err = (self.joint_decoder(feat) - target) ** 2
            if cfg.joint_loss_norm:
                joint_err = joint_err / self._joint_feature_variance(target)
            joint_loss = joint_err.sum(-1).mean()
            total = total + cfg.joint_scale * joint_loss
            metrics["loss/joints"] = joint_loss.detach()

        # Data without a reward (train_reward=False): the reward head is left untrained, and its
        # loss is still reported (against the placeholder zeros) only so metrics keep their keys.
        reward_loss = self.reward_loss(feat.detach() if not cfg.train_reward else feat, batch)
        cont_target = 1.0 - batch["is_terminal"].to(torch.float32)
        cont_loss = F.binary_cross_entropy_with_logits(self.cont_head(feat).squeeze(-1), cont_target)
        total = total + cfg.cont_scale * cont_loss
        if cfg.train_reward:
            total = total + cfg.reward_scale * reward_loss

        # KL balancing (DreamerV3): the prior moves toward the posterior faster than the
        # posterior toward the prior; free bits stop KL from collapsing the latent.
        post_stats = GaussianStats(post["post_mean"], post["post_std"])
        prior_stats = GaussianStats(post["prior_mean"], post["prior_std"])
        kl_dyn = gaussian_kl(post_stats.detach(), prior_stats)
        kl_rep = gaussian_kl(post_stats, prior_stats.detach())
        kl_loss = (cfg.kl_dyn * torch.clamp(kl_dyn, min=cfg.free_nats).mean()
                   + cfg.kl_rep * torch.clamp(kl_rep, min=cfg.free_nats).mean())
        total = total + kl_loss

        metrics.update({
            "loss/reward": reward_loss.detach(),
            "loss/cont": cont_loss.detach(),
            "loss/kl": kl_loss.detach(),
            "kl/prior_posterior": kl_dyn.mean().detach(),
            "kl/free_bits_active": (kl_dyn < cfg.free_nats).float().mean().detach(),
            "loss/world_total": total.detach(),
            "_states": (post["h"].detach(), post["z"].detach()),
        })
        return total, metrics

    def reward_loss(self, feat: torch.Tensor, batch: dict) -> torch.Tensor:
        """symlog-MSE of the reward head on features [B, T, F] against batch["reward"] [B, T].

        reward[t] at is_first is a placeholder (0 at an episode start; at a window start the
        state was just reset so it cannot be predicted): those steps are left out.
        """
        has_reward = 1.0 - batch["is_first"].to(torch.float32)
        reward_err = (self.reward_head(feat).squeeze(-1) - symlog(batch["reward"])) ** 2
        return (reward_err * has_reward).sum() / has_reward.sum().clamp(min=1.0)

    def frame_reward_loss(self, frames: dict) -> torch.Tensor:
        """symlog-MSE of the reward predicted from single frames' embeddings ([N] i.i.d. steps).

        Why: a window batch holds only batch_size episodes, so the encoder sees a handful of
        target positions per step and the image loss (dominated by the big moving arm)
        decides what it keeps; the camera reacher's latent then learns the small target
        disc very slowly. Regressing the reward from i.i.d. frames of many episodes (the
        frame probe, scripts/probe_reward_from_frames.py) makes the encoder find
        what the reward depends on within a few hundred steps.
        """
        if self.frame_reward_head is None:
            raise ValueError("frame_reward_loss needs frame_reward_scale > 0 in the config")
        frames = batch_to_torch(frames, self.return_scale.device)
        embed = self.encode(frames.get("image"), frames["joints"])
        return ((self.frame_reward_head(embed).squeeze(-1) - symlog(frames["reward"])) ** 2).mean()

    # ----------------------------------------------------------- value/actor
    @torch.no_grad()
    def update_slow_value(self) -> None:
        """EMA the slow target value net toward the value net (V3, rate slow_value_rate)."""
        rate = self.config.slow_value_rate
        for slow, fast in zip(self.slow_value_head.parameters(), self.value_head.parameters()):
            slow.mul_(1 - rate).add_(fast.detach(), alpha=rate)

    @torch.no_grad()
    def _joint_feature_variance(self, target: torch.Tensor, decay: float = 0.99,
                                floor: float = 1e-3) -> torch.Tensor:
        """The running per-feature variance that joint_loss_norm divides by (updated in training mode).

        The floor (a std of ~0.03) keeps a feature that barely moves in the data so far from
        turning its tiny errors into a huge loss.
        """
        if self.training:
            batch_var = target.reshape(-1, target.shape[-1]).var(0, unbiased=False)
            if bool((self.joint_feature_var == 0).all()):
                self.joint_feature_var.copy_(batch_var)
            else:
                self.joint_feature_var.mul_(decay).add_((1 - decay) * batch_var)
        return torch.clamp(self.joint_feature_var, min=floor)

    @torch.no_grad()
    def update_return_scale(self, returns: torch.Tensor, decay: float = 0.99) -> torch.Tensor:
        """EMA of the P95 - P5 return range, floored at 1 (V3 return normalisation)."""
        flat = returns.flatten()
        spread = torch.quantile(flat, 0.95) - torch.quantile(flat, 0.05)
        self.return_scale.mul_(decay).add_((1 - decay) * spread)
        return torch.clamp(self.return_scale, min=1.0)
