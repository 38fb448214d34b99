"""World model (torch): VAE observation model + RSSM + reward/continuation/value heads + actor.

Never imports rclpy; the runtime (ONNX) side never imports this package.
"""
from .config import WorldModelConfig
from .model import WorldModel, batch_to_torch

__all__ = ["WorldModelConfig", "WorldModel", "batch_to_torch"]
