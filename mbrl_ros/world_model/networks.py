"""Building blocks: MLPs, the conv image encoder/decoder, symlog.

Everything here traces cleanly with torch.onnx.export (dynamo=False): no
data-dependent Python control flow, no in-place ops on inputs.
"""
from __future__ import annotations

import torch
from torch import nn


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) * log(1 + |x|): squashes large magnitudes, identity-like near 0 (DreamerV3)."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of symlog."""
    return torch.sign(x) * (torch.exp(torch.abs(x)) - 1.0)


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """`layers` x (Linear, LayerNorm, SiLU) then a Linear to `out_dim` (DreamerV3 style)."""
    mods: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers):
        mods += [nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        dim = hidden
    mods.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*mods)


def conv_stages(height: int, width: int) -> int:
    """How many stride-2 stages take an image down to a small grid (about 4x4).

    Each stage halves H and W exactly (kernel 4, stride 2, padding 1), so we stop
    when a side is <= 4 or odd: 64 -> 4 stages (4x4), 32 -> 3 (4x4), 48 -> 4 (3x3),
    96 -> 5 (3x3). The decoder mirrors the stages and reproduces H x W exactly.
    """
    stages = 0
    while min(height, width) > 4 and height % 2 == 0 and width % 2 == 0:
        height, width, stages = height // 2, width // 2, stages + 1
    if stages == 0:
        raise ValueError(f"image {height}x{width} is too small or odd-sized for the conv encoder; "
                         f"use even sizes >= 8 (e.g. multiples of 16)")
    return stages


class ImageEncoder(nn.Module):
    """uint8 [B, H, W, 3] (channels last, raw camera bytes) -> features [B, F].

    The /255 - 0.5 preprocessing and the channels-first permute live here, so an
    exported graph takes the camera image as it comes.
    """

    def __init__(self, image_shape: tuple[int, int, int], depth: int):
        super().__init__()
        height, width, _ = image_shape
        self.stages = conv_stages(height, width)
        layers: list[nn.Module] = []
        channels = 3
        for i in range(self.stages):
            out = depth * 2 ** i
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.SiLU()]
            channels = out
        self.net = nn.Sequential(*layers)
        self.grid = (channels, height >> self.stages, width >> self.stages)
        self.out_dim = channels * self.grid[1] * self.grid[2]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32) / 255.0 - 0.5
        x = x.permute(0, 3, 1, 2)
        return self.net(x).flatten(1)


class ImageDecoder(nn.Module):
    """Features [B, D] -> image [B, H, W, 3] in the encoder's centred scale (pixel/255 - 0.5)."""

    def __init__(self, in_dim: int, grid: tuple[int, int, int], stages: int):
        super().__init__()
        channels, gh, gw = grid
        self.grid = grid
        self.fc = nn.Linear(in_dim, channels * gh * gw)
        layers: list[nn.Module] = []
        for i in range(stages):
            last = i == stages - 1
            out = 3 if last else channels // 2
            layers.append(nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.SiLU())
            channels = out
        self.net = nn.Sequential(*layers)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        x = self.fc(feat).reshape(-1, *self.grid)
        return self.net(x).permute(0, 2, 3, 1)
