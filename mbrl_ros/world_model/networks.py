"""Building blocks: MLPs, the conv image encoder/decoder, symlog.

Everything here traces cleanly with torch.onnx.export (dynamo=False): no
data-dependent Python control flow, no in-place ops on inputs.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) * log(1 + |x|): squashes large magnitudes, identity-like near 0 (DreamerV3)."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of symlog."""
    return torch.sign(x) * (torch.exp(torch.abs(x)) - 1.0)


class JointCodec(nn.Module):
    """Joint vector <-> the features the model reads and predicts.

    Ordinary entries go through symlog. Angles of unlimited revolute joints
    (ObsSpec.angle_joints) become (sin, cos): their raw value winds past +-pi (a
    random reacher's shoulder spans +-8.5 rad), and no small MLP learns a periodic
    function of an unbounded input, so with raw angles the model could tell neither
    where the arm is nor the reward. `joints` inverts `features` (atan2 for angles, in
    (-pi, pi]). With no angle entries this is plain symlog, as in checkpoints from
    before angle_joints existed (no parameters either way, so state dicts are unchanged).
    """

    def __init__(self, joint_dim: int, angle_joints: tuple[int, ...] = ()):
        super().__init__()
        angles = sorted(set(int(i) for i in angle_joints))
        other = [i for i in range(joint_dim) if i not in angles]
        self.plain = not angles
        self.num_other, self.num_angles = len(other), len(angles)
        self.feature_dim = len(other) + 2 * len(angles)
        inverse = sorted(range(joint_dim), key=lambda k: (other + angles)[k])
        self.register_buffer("other_idx", torch.tensor(other, dtype=torch.long), persistent=False)
        self.register_buffer("angle_idx", torch.tensor(angles, dtype=torch.long), persistent=False)
        self.register_buffer("inverse_idx", torch.tensor(inverse, dtype=torch.long), persistent=False)

    def features(self, joints: torch.Tensor) -> torch.Tensor:
        if self.plain:
            return symlog(joints)
        angle = joints.index_select(-1, self.angle_idx)
        return torch.cat([symlog(joints.index_select(-1, self.other_idx)), torch.sin(angle), torch.cos(angle)], -1)

    def joints(self, features: torch.Tensor) -> torch.Tensor:
        if self.plain:
            return symexp(features)
        n, k = self.num_other, self.num_angles
        angle = torch.atan2(features[..., n:n + k], features[..., n + k:])
        return torch.cat([symexp(features[..., :n]), angle], -1).index_select(-1, self.inverse_idx)


def set_channels_last(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Keep `module`'s conv weights (and, in forward, its activations) channels-last (NHWC) or not.

    Why: oneDNN's CPU convolutions run NHWC natively. The camera image arrives NHWC, so the
    encoder's input already is channels-last, but with NCHW weights every conv call reorders
    its weights, and the decoder ran NCHW end to end (one layout change per transposed conv, and
    a strided copy of its NCHW output into the NHWC image). Same maths, another memory layout:
    results agree to float rounding (tests/test_training_speed.py); state dicts, checkpoints
    and the ONNX export are unchanged (values, not strides, are saved).
    """
    fmt = torch.channels_last if enabled else torch.contiguous_format
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.weight.data = m.weight.data.contiguous(memory_format=fmt)
        if hasattr(m, "channels_last"):
            m.channels_last = bool(enabled)
    return module


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


class SpatialSoftmax(nn.Module):
    """Feature maps [B, C, H, W] -> K keypoints (expected x, y in [-1, 1]) [B, 2K].

    A 1x1 conv picks K maps; a softmax over each map's pixels gives a spatial
    distribution whose mean is the keypoint (soft-argmax; Levine et al. 2016,
    "End-to-End Training of Deep Visuomotor Policies"). Why: a conv stack that ends
    in a flatten is poor at turning "where is the small red disc" into numbers
    (Liu et al. 2018, CoordConv), and the reacher's reward depends on exactly that.
    The coordinates come out explicitly and generalise to positions not seen in training.
    """

    def __init__(self, channels: int, keypoints: int, height: int, width: int):
        super().__init__()
        self.select = nn.Conv2d(channels, keypoints, 1)
        self.log_temperature = nn.Parameter(torch.zeros(()))
        ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width),
                                indexing="ij")
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], -1))  # [HW, 2]
        self.out_dim = 2 * keypoints

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        logits = self.select(maps).flatten(2) / torch.exp(self.log_temperature)  # [B, K, HW]
        weights = torch.softmax(logits, -1)
        return (weights @ self.grid).flatten(1)                                   # [B, 2K]


class ImageEncoder(nn.Module):
    """uint8 [B, H, W, 3] (channels last, raw camera bytes) -> features [B, F].

    The /255 - 0.5 preprocessing and the channels-first permute live here, so an
    exported graph takes the camera image as it comes. With `keypoints` > 0 the
    features also hold that many spatial-softmax keypoints read off the second
    stage's maps (1/4 resolution: cells of 4 px at 64x64, sub-cell by the soft-argmax).
    With `conv_features=False` they are the only features: the later stages are not
    built, and the embedding is 2K numbers that can only say *where* things are.
    """

    KEYPOINT_STAGE = 2

    def __init__(self, image_shape: tuple[int, int, int], depth: int, keypoints: int = 0,
                 conv_features: bool = True):
        super().__init__()
        if not conv_features and keypoints < 1:
            raise ValueError("an image encoder without conv features needs keypoints >= 1")
        height, width, _ = image_shape
        self.stages = conv_stages(height, width)
        self.keypoint_stage = min(self.KEYPOINT_STAGE, self.stages)
        self.conv_features = conv_features
        built = self.stages if conv_features else self.keypoint_stage
        layers: list[nn.Module] = []
        channels = 3
        for i in range(built):
            out = depth * 2 ** i
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.SiLU()]
            channels = out
        self.net = nn.Sequential(*layers)
        # the decoder mirrors the full stack whatever the encoder builds
        self.grid = (depth * 2 ** (self.stages - 1), height >> self.stages, width >> self.stages)
        self.out_dim = self.grid[0] * self.grid[1] * self.grid[2] if conv_features else 0
        self.keypoints: Optional[SpatialSoftmax] = None
        if keypoints > 0:
            stage = self.keypoint_stage
            self.keypoints = SpatialSoftmax(depth * 2 ** (stage - 1), keypoints, height >> stage, width >> stage)
            self.out_dim += self.keypoints.out_dim
        self.channels_last = True
        set_channels_last(self, True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(self.net[0].weight.dtype) / 255.0 - 0.5  # float32; float64 in a parity reference copy
        x = x.permute(0, 3, 1, 2)  # NCHW shape, NHWC memory: channels-last as it comes
        if self.keypoints is None:
            return self.net(x).flatten(1)
        split = 2 * self.keypoint_stage  # (conv, SiLU) per stage
        mid = self.net[:split](x)
        if not self.conv_features:
            return self.keypoints(mid)
        return torch.cat([self.net[split:](mid).flatten(1), self.keypoints(mid)], -1)


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
        self.channels_last = True
        set_channels_last(self, True)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        x = self.fc(feat).reshape(-1, *self.grid)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # channels-last output: the permute to [B, H, W, 3] is then a contiguous view, no copy
        return self.net(x).permute(0, 2, 3, 1)
