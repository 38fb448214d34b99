"""Trainer: gradient steps on the world model (+ actor and value), resumable, logged.

    trainer = Trainer.create(WorldModelConfig.preset("small"), episodes, seed=0, log_dir="runs/x/tb")
    trainer.train(5000, checkpoint_path="runs/x/checkpoint.pt", save_every=500)
    trainer = Trainer.resume("runs/x/checkpoint.pt", episodes)   # same step, optimiser and RNG state

Online use (trainer node): `add_episodes(eps)`, `train(steps)`, `save(path)`.

Each step: one world-model update on a [batch_size, seq_len] window sample, then
(if config.train_actor) one actor and one value update on imagined rollouts
started from the posterior states (with value_from="real" the value is instead
fitted to TD(lambda) returns along the real window), then the slow value EMA.
Three Adam optimisers, each with global-norm gradient clipping.

Data without a reward (config.train_reward=False, `WorldModelConfig.reward_free()`):
the same world-model update without the reward loss, and no actor or value.
`Trainer.for_heads(checkpoint, relabelled_episodes)` then trains only what a task's
reward touches, the reward head (and actor and value), on the frozen representation
and dynamics: `mbrl-ros relabel` (training/relabel_cli.py).

Resuming restores the step, all optimiser states, the torch RNG and the window
sampler's RNG, so a resumed run takes the same next steps as an uninterrupted one
(given the same episodes in the same order).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import torch
from tqdm import tqdm

from ..data import augment
from ..data.episodes import Episode, SequenceSampler
from ..spec import ActionSpec, ObsSpec
from ..world_model.behavior import behavior_losses, real_value_loss
from ..world_model.checkpoint import load_checkpoint, model_from_payload, save_checkpoint
from ..world_model.config import WorldModelConfig
from ..world_model.model import WorldModel, batch_to_torch
from ..world_model.networks import JointCodec
from .allocator import keep_freed_memory

# A separate, fixed stream for the windows shown in TensorBoard, so logging never
# changes which batches training sees.
PREVIEW_SEED = 20240601

# Config fields that shape the weights (or what the heads mean): fixed for a checkpoint's life.
ARCHITECTURE_FIELDS = ("deter", "stoch", "hidden", "mlp_layers", "cnn_depth", "joint_embed", "min_std",
                       "train_actor", "value_from", "keypoints", "conv_features")


def infer_specs(episodes: list[Episode]) -> tuple[ObsSpec, int]:
    """ObsSpec and action dim from episode arrays (no joint names: those come from the source)."""
    if not episodes:
        raise ValueError("cannot infer observation/action specs from zero episodes; pass obs_spec and action_dim")
    ep = episodes[0]
    image_shape = tuple(ep["image"].shape[1:]) if "image" in ep else None
    return ObsSpec(joint_dim=int(ep["joints"].shape[1]), image_shape=image_shape), int(ep["action"].shape[1])


class Trainer:
    """Owns the model, optimisers, window sampler, TensorBoard writer and step counter."""

    def __init__(self, model: WorldModel, episodes: Iterable[Episode] = (), seed: int = 0,
                 log_dir: Optional[Path] = None, device: str | torch.device = "cpu",
                 action_spec: Optional[ActionSpec] = None, log_every: int = 25, image_every: int = 500,
                 heads_only: bool = False):
        self.config: WorldModelConfig = model.config
        # heads_only: train the reward head (+ actor, value) on the frozen world model (for_heads)
        self.heads_only = bool(heads_only)
        if self.heads_only and not self.config.train_reward:
            raise ValueError("heads_only training fits the reward head: it needs train_reward=True")
        self.device = torch.device(device)
        if self.device.type == "cpu":
            keep_freed_memory()  # training re-allocates the same big tensors each step (allocator.py)
        self.model = model.to(self.device)
        self.seed = int(seed)
        self.action_spec = action_spec
        self.step = 0
        self.log_every, self.image_every = log_every, image_every
        # Seeds torch's global RNG (latent samples, imagination starts): a run is reproducible
        # from its seed, and `resume` then restores the saved RNG state over this.
        torch.manual_seed(self.seed)
        cfg = self.config
        self.sampler = SequenceSampler([], cfg.batch_size, cfg.seq_len, seed=self.seed)
        self.preview_sampler = SequenceSampler([], min(4, cfg.batch_size), cfg.seq_len, seed=PREVIEW_SEED)
        # Draws from the sampler's RNG, so a resumed run sees the same transformed windows.
        self.augment = augment.from_config(cfg, model.obs_spec, model.action_dim)
        self.add_episodes(episodes)
        adam = dict(eps=cfg.adam_eps)
        self.optimizers = {
            "world": torch.optim.Adam(model.world_parameters(), lr=cfg.lr_model, **adam),
            "actor": torch.optim.Adam(model.actor.parameters(), lr=cfg.lr_actor, **adam),
            "value": torch.optim.Adam(model.value_head.parameters(), lr=cfg.lr_value, **adam),
        }
        if self.heads_only:
            self.optimizers["reward"] = torch.optim.Adam(model.reward_head.parameters(), lr=cfg.lr_model, **adam)
        self.log_dir = Path(log_dir) if log_dir else None
        # plain data saved in the checkpoint's extra (e.g. "source_data": what the rewards came from,
        # which `mbrl-ros export` copies into the bundle's manifest)
        self.notes: dict = {}
        self._writer = None
        self.last_metrics: dict[str, float] = {}

    # ------------------------------------------------------------ creation
    @classmethod
    def create(cls, config: WorldModelConfig, episodes: list[Episode], obs_spec: Optional[ObsSpec] = None,
               action_dim: Optional[int] = None, **kwargs) -> "Trainer":
        """A fresh model for `config`; specs are inferred from the episodes unless given."""
        episodes = list(episodes)
        if obs_spec is None or action_dim is None:
            inferred_obs, inferred_act = infer_specs(episodes)
            obs_spec = obs_spec or inferred_obs
            action_dim = action_dim or inferred_act
        torch.manual_seed(int(kwargs.get("seed", 0)))  # the initial weights follow the seed too
        return cls(WorldModel(config, obs_spec, action_dim), episodes, **kwargs)

    @classmethod
    def resume(cls, checkpoint: Path, episodes: Iterable[Episode] = (), config_overrides: Optional[dict] = None,
               **kwargs) -> "Trainer":
        """Continue from a checkpoint: same step, optimiser states and RNG streams.

        `config_overrides` may change training hyperparameters (loss scales, learning rates,
        batch, imagination_horizon, ...) but not the architecture the weights were built for.
        """
        payload = load_checkpoint(checkpoint)
        if config_overrides:
            fixed = sorted(set(config_overrides) & set(ARCHITECTURE_FIELDS))
            if fixed:
                raise ValueError(f"cannot change architecture fields {fixed} when resuming {checkpoint}")
            had_frame_head = float(payload["config"].get("frame_reward_scale", 0.0)) > 0
            if "frame_reward_scale" in config_overrides and \
                    (float(config_overrides["frame_reward_scale"]) > 0) != had_frame_head:
                raise ValueError(f"cannot switch the frame reward head {'off' if had_frame_head else 'on'} when "
                                 f"resuming {checkpoint}: it has weights; change its scale (> 0) instead")
            saved = WorldModelConfig.from_dict(payload["config"]).to_dict()  # old field names read as today's
            payload["config"] = WorldModelConfig.from_dict({**saved, **config_overrides}).to_dict()
            _fit_joint_variance_to_config(payload)
        model = model_from_payload(payload, checkpoint)
        extra = payload.get("extra", {})
        action_spec = ActionSpec.from_dict(payload["action_spec"]) if payload.get("action_spec") else None
        kwargs.setdefault("action_spec", action_spec)
        trainer = cls(model, episodes, seed=int(extra.get("seed", 0)), **kwargs)
        trainer.step = int(payload["step"])
        for name, opt in trainer.optimizers.items():
            if name in payload.get("optimizers", {}):
                opt.load_state_dict(payload["optimizers"][name])
                # a resumed run may carry new learning rates
                trainer.set_learning_rate(name, getattr(trainer.config, f"lr_{'model' if name == 'world' else name}"))
        if "torch_rng" in extra:
            torch.set_rng_state(extra["torch_rng"])
        if "sampler_rng" in extra:
            trainer.sampler.rng.bit_generator.state = extra["sampler_rng"]
        return trainer

    @classmethod
    def for_heads(cls, checkpoint: Path, episodes: Iterable[Episode] = (), config_overrides: Optional[dict] = None,
                  **kwargs) -> "Trainer":
        """A trainer of `checkpoint`'s reward head, actor and value only (the relabel step).

        The encoder, dynamics, decoders and continuation head keep the checkpoint's weights:
        a new task (new rewards of the same episodes) needs no new world model. The config
        gets train_reward=True and, unless `config_overrides` say otherwise, train_actor=True
        (Dreamer's imagined value, for the planners to bootstrap from). Fresh optimisers: the
        heads learn a new target. The step count continues from the checkpoint's.
        """
        payload = load_checkpoint(checkpoint)
        saved = WorldModelConfig.from_dict(payload["config"]).to_dict()
        changes = {"train_reward": True, "train_actor": True, **(config_overrides or {})}
        weights = sorted(set(changes) & (set(ARCHITECTURE_FIELDS) - {"train_actor", "value_from"}))
        if weights:
            raise ValueError(f"cannot change architecture fields {weights} when training the heads of {checkpoint}")
        if (float(changes.get("frame_reward_scale", saved["frame_reward_scale"])) > 0) != \
                (float(saved["frame_reward_scale"]) > 0):
            raise ValueError(f"cannot switch the frame reward head on or off when training the heads of {checkpoint}")
        payload["config"] = WorldModelConfig.from_dict({**saved, **changes}).to_dict()
        _fit_joint_variance_to_config(payload)
        model = model_from_payload(payload, checkpoint)
        action_spec = ActionSpec.from_dict(payload["action_spec"]) if payload.get("action_spec") else None
        kwargs.setdefault("action_spec", action_spec)
        kwargs.setdefault("seed", int(payload.get("extra", {}).get("seed", 0)))
        trainer = cls(model, episodes, heads_only=True, **kwargs)
        trainer.step = int(payload["step"])
        return trainer

    # ------------------------------------------------------------ data
    def add_episodes(self, episodes: Iterable[Episode]) -> None:
        """Add episodes to the training pool (checked against the model's specs)."""
        episodes = list(episodes)
        for i, ep in enumerate(episodes):
            self._check_episode(ep, i)
        self.sampler.extend(episodes)
        self.preview_sampler.extend(episodes)

    def _check_episode(self, ep: Episode, index: int) -> None:
        spec, name = self.model.obs_spec, f"episode {index}"
        if ep["joints"].shape[1:] != (spec.joint_dim,):
            raise ValueError(f"{name}: joints have shape {ep['joints'].shape[1:]}, the model wants ({spec.joint_dim},)")
        if ep["action"].shape[1:] != (self.model.action_dim,):
            raise ValueError(f"{name}: actions have shape {ep['action'].shape[1:]}, "
                             f"the model wants ({self.model.action_dim},)")
        if spec.has_image and ("image" not in ep or ep["image"].shape[1:] != spec.image_shape):
            got = ep["image"].shape[1:] if "image" in ep else "no image"
            raise ValueError(f"{name}: images are {got}, the model wants {spec.image_shape}")

    def set_learning_rate(self, optimizer: str, lr: float) -> None:
        """Change one optimiser's ("world" | "actor" | "value") learning rate from now on (schedules)."""
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be a positive number, got {lr}")
        for group in self.optimizers[optimizer].param_groups:
            group["lr"] = float(lr)

    # ------------------------------------------------------------ training
    def train_step(self) -> dict[str, float]:
        """One world-model update (+ actor/value updates); returns scalar metrics."""
        cfg, model = self.config, self.model
        model.train()
        batch = batch_to_torch(self._augmented(self.sampler.sample()), self.device)
        if self.heads_only:
            return self._heads_step(batch)
        world_loss, metrics = model.loss(batch)
        if model.frame_reward_head is not None:
            frame_loss = model.frame_reward_loss(self._augmented(self.sampler.sample_frames(cfg.frame_reward_batch)))
            world_loss = world_loss + cfg.frame_reward_scale * frame_loss
            metrics["loss/frame_reward"] = frame_loss.detach()
        h, z = metrics.pop("_states")
        metrics["grad_norm/world"] = self._update("world", world_loss, model.world_parameters())
        return self._behavior_step(batch, h, z, metrics)

    def _heads_step(self, batch: dict) -> dict[str, float]:
        """The reward head fitted on the frozen world model's posterior states, then actor/value."""
        model = self.model
        with torch.no_grad():
            post = model.observe(batch)
        h, z = post["h"], post["z"]
        reward_loss = model.reward_loss(model.features(h, z), batch)
        metrics = {"loss/reward": reward_loss.detach(), "loss/world_total": reward_loss.detach(),
                   "grad_norm/reward": self._update("reward", reward_loss, model.reward_head.parameters())}
        return self._behavior_step(batch, h, z, metrics)

    def _behavior_step(self, batch: dict, h: torch.Tensor, z: torch.Tensor, metrics: dict) -> dict[str, float]:
        cfg, model = self.config, self.model
        value_loss = None
        if cfg.value_from == "real":
            value_loss, value_metrics = real_value_loss(model, h, z, batch)
            metrics.update(value_metrics)
        if cfg.train_actor:
            h, z = h.flatten(0, 1), z.flatten(0, 1)
            if h.shape[0] > cfg.imag_starts:
                keep = torch.randperm(h.shape[0], device=h.device)[:cfg.imag_starts]
                h, z = h[keep], z[keep]
            # with value_from="real" the actor still bootstraps from the (real-data) slow value
            actor_loss, imagined_value_loss, behavior_metrics = behavior_losses(
                model, h, z, with_value=value_loss is None)
            value_loss = imagined_value_loss if value_loss is None else value_loss
            metrics.update(behavior_metrics)
            metrics["grad_norm/actor"] = self._update("actor", actor_loss, model.actor.parameters())
        if value_loss is not None:
            metrics["grad_norm/value"] = self._update("value", value_loss, model.value_head.parameters())
            model.update_slow_value()
        self.step += 1
        out = {k: float(v) for k, v in metrics.items()}
        if not all(np.isfinite(v) for v in out.values()):
            bad = sorted(k for k, v in out.items() if not np.isfinite(v))
            raise FloatingPointError(f"step {self.step}: non-finite training metrics {bad}")
        return out

    def _augmented(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.augment(batch, self.sampler.rng) if self.augment is not None else batch

    def _update(self, name: str, loss: torch.Tensor, params) -> torch.Tensor:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in params if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        opt.step()
        return norm.detach()

    def train(self, steps: int, max_seconds: Optional[float] = None, checkpoint_path: Optional[Path] = None,
              save_every: Optional[int] = None, progress: bool = True) -> dict[str, float]:
        """Run `steps` gradient steps (or until `max_seconds`); save every `save_every` steps and at the end."""
        if not self.sampler.episodes:
            raise ValueError(f"no training episode has at least seq_len={self.config.seq_len} steps "
                             f"(have {len(self.sampler.episodes)} usable episodes)")
        start = time.perf_counter()
        bar = tqdm(total=steps if steps < 10 ** 8 else None, disable=not progress, desc="train", unit="step")
        done = 0
        try:
            while done < steps and (max_seconds is None or time.perf_counter() - start < max_seconds):
                self.last_metrics = self.train_step()
                done += 1
                bar.update(1)
                if self.step % self.log_every == 0 or done == 1:
                    self._log_scalars(self.last_metrics)
                    bar.set_postfix(world=f"{self.last_metrics['loss/world_total']:.1f}",
                                    reward=f"{self.last_metrics['loss/reward']:.3f}")
                if self.image_every and self.step % self.image_every == 0:
                    self.log_images()
                if checkpoint_path and save_every and self.step % save_every == 0:
                    self.save(checkpoint_path)
        finally:
            bar.close()
        if checkpoint_path:
            self.save(checkpoint_path)
        if self._writer is not None:
            self._writer.flush()
        return self.last_metrics

    # ------------------------------------------------------------ persistence
    def save(self, path: Path) -> Path:
        """Checkpoint with model, optimisers, step and RNG states (atomic write)."""
        extra = {
            **self.notes,
            "seed": self.seed,
            "torch_rng": torch.get_rng_state(),
            "sampler_rng": self.sampler.rng.bit_generator.state,
        }
        return save_checkpoint(path, self.model, self.step, self.optimizers, self.action_spec, extra)

    # ------------------------------------------------------------ logging
    @property
    def writer(self):
        if self._writer is None and self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir))
        return self._writer

    def _log_scalars(self, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, self.step)

    def log_images(self) -> None:
        """Reconstructions and open-loop predictions, real | reconstructed | imagined, to TensorBoard."""
        if self.writer is None or not self.model.obs_spec.has_image or not self.preview_sampler.episodes:
            return
        from .evaluation import open_loop_strip

        rng_state = torch.get_rng_state()  # previews must not shift the training RNG stream
        try:
            batch = self.preview_sampler.sample()
            strip = open_loop_strip(self.model, batch, context=min(5, self.config.seq_len - 1))
            self.writer.add_image("open_loop/real_recon_imagined", strip, self.step, dataformats="HWC")
        finally:
            torch.set_rng_state(rng_state)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _fit_joint_variance_to_config(payload: dict) -> None:
    """joint_loss_norm may be switched when resuming: its variance buffer starts unseen (zeros,
    set from the next batch) when switched on, and is dropped when switched off."""
    weights, key = payload["model"], "joint_feature_var"
    if not payload["config"].get("joint_loss_norm"):
        weights.pop(key, None)
    elif key not in weights and (spec := ObsSpec.from_dict(payload["obs_spec"])).joint_dim > 0:
        weights[key] = torch.zeros(JointCodec(spec.joint_dim, spec.angle_joints).feature_dim)
