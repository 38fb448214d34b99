"""Model bundles for tests: a tiny random world model exported for a robot's spec (real ONNX)."""
from __future__ import annotations

from pathlib import Path

import torch

from mbrl_ros.export import export_to_store
from mbrl_ros.world_model.config import WorldModelConfig
from mbrl_ros.world_model.model import WorldModel


def tiny_world_model(obs_spec, action_dim: int, seed: int = 0) -> WorldModel:
    torch.manual_seed(seed)
    return WorldModel(WorldModelConfig.preset("tiny"), obs_spec, action_dim).eval()


def publish_tiny(store: Path, env, seed: int = 0, fused_horizon: int = 5):
    """Export a tiny random model for `env`'s robot into `store` and publish it."""
    u = env.unwrapped
    wm = tiny_world_model(u.obs_spec, u.action_spec.dim, seed)
    return export_to_store(wm, store, fused_horizon=fused_horizon, action_spec=u.action_spec, parity_steps=5)
