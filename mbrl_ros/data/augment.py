"""Symmetry augmentation for a planar arm under a top-down camera centred on its base.

When the base hinge sits under the image centre and the scene looks the same after a
quarter turn and in a mirror (the camera reacher: square walls, light from straight
above, no gravity in the plane, symmetric joint and torque limits), these maps send
one valid transition to another with the same reward:

- rotation by k quarter turns about the base: image -> np.rot90(image, k), base joint
  position + k * pi/2; velocities, actions and reward unchanged;
- mirror x -> -x: image flipped left-right, base joint position -> pi - q, every other
  joint position -> -q, every joint velocity and every action negated.

tests/test_augment.py checks both pixel-exact against MuJoCo renders of the reacher.
Training on transformed windows shows the world model 4 ("rot90") or 8 ("dihedral")
times as many target positions as the episodes hold, without a new episode: the
held-out reward error of the camera reacher was bound by its 50 target positions
(docs/world_model.md). The choice is WorldModelConfig.symmetry_augment; off by default,
because it is wrong for any robot whose scene lacks these symmetries.

Arrays follow episodes.py: joints = positions then velocities, one action per joint.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

MODES = ("none", "rot90", "dihedral")


class PlanarSymmetry:
    """Draws one symmetry per window (the same over its time steps) and applies it."""

    def __init__(self, mode: str, base_joint: int, joint_dim: int, action_dim: int,
                 image_shape: Optional[tuple[int, ...]]):
        if mode not in MODES[1:]:
            raise ValueError(f"symmetry_augment must be one of {list(MODES)}, got {mode!r}")
        if joint_dim % 2:
            raise ValueError(f"symmetry_augment={mode!r} needs joints = positions then velocities "
                             f"(an even length), got {joint_dim} entries")
        self.num_joints = joint_dim // 2
        if not 0 <= base_joint < self.num_joints:
            raise ValueError(f"symmetry_base_joint={base_joint} is not one of the {self.num_joints} joints")
        if image_shape is not None and image_shape[0] != image_shape[1]:
            raise ValueError(f"symmetry_augment={mode!r} rotates the image by quarter turns, which needs a "
                             f"square image, got {image_shape[0]}x{image_shape[1]}")
        if mode == "dihedral" and action_dim != self.num_joints:
            raise ValueError(f"symmetry_augment='dihedral' negates each joint's action, so it needs one action "
                             f"per joint: {action_dim} actions for {self.num_joints} joints")
        self.mode = mode
        self.base_joint = int(base_joint)

    @classmethod
    def from_config(cls, config, obs_spec, action_dim: int) -> Optional["PlanarSymmetry"]:
        """The augmentation a WorldModelConfig asks for, or None when it is off."""
        if config.symmetry_augment == "none":
            return None
        return cls(config.symmetry_augment, config.symmetry_base_joint, obs_spec.joint_dim, action_dim,
                   obs_spec.image_shape)

    def draw(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Quarter turns in 0..3 and mirror flags, one pair per window."""
        turns = rng.integers(0, 4, size=count)
        mirror = rng.random(count) < 0.5 if self.mode == "dihedral" else np.zeros(count, bool)
        return turns, mirror

    def __call__(self, batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A transformed copy of a batch whose leading axis is the window (or frame) index.

        Works on windows [B, T, ...] and on single frames [N, ...] alike; keys other than
        image, joints and action pass through unchanged (reward is invariant)."""
        count = len(batch["joints"])
        turns, mirror = self.draw(count, rng)
        out = dict(batch)
        out["joints"] = self.transform_joints(batch["joints"], turns, mirror)
        if "action" in batch:
            sign = np.where(mirror, -1.0, 1.0).astype(batch["action"].dtype)
            out["action"] = batch["action"] * sign.reshape(-1, *([1] * (batch["action"].ndim - 1)))
        if "image" in batch:
            out["image"] = np.stack([self.transform_image(img, int(k), bool(m))
                                     for img, k, m in zip(batch["image"], turns, mirror)])
        return out

    def transform_joints(self, joints: np.ndarray, turns: np.ndarray, mirror: np.ndarray) -> np.ndarray:
        b = self.base_joint
        shape = (-1,) + (1,) * (joints.ndim - 2)  # broadcast one value per window over its steps
        sign = np.where(mirror, -1.0, 1.0).reshape(shape)
        out = joints.astype(np.float64) * sign[..., None]  # mirror negates positions and velocities
        base = np.where(mirror, math.pi, 0.0) + turns * (math.pi / 2)
        out[..., b] += base.reshape(shape)  # mirror: pi - q; rotation: + k pi/2
        return out.astype(joints.dtype)

    @staticmethod
    def transform_image(image: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
        """image [..., H, W, C]: mirror left-right first, then rotate by `turns` quarter turns."""
        if mirror:
            image = image[..., :, ::-1, :]
        return np.ascontiguousarray(np.rot90(image, turns, axes=(-3, -2)))
