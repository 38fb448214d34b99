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

For robots observed by a state vector rather than a camera ("rotation", StateRotation),
the same idea with any angle: a turn by theta about the vertical axis rotates the listed
(cos, sin) pairs of base angles and (x, y) pairs of planar vectors, and leaves the rest,
the actions and the reward alone (gymnasium's Reacher-v5: joint 0's angle, the target
position and the fingertip-to-target vector; tests/test_augment.py checks it against
the env).

For any camera robot, "image_shift_pad" (RandomShift) is the augmentation of DrQ (Kostrikov et
al. 2020) and DrQ-v2: each window's images shifted by one random integer offset of up to that many
pixels per axis (border replicated), the same over the window's time steps so that motion between
frames is unchanged. It claims no symmetry of the scene, only that a few pixels of camera shift do
not change the task; it composes with the symmetries above.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

MODES = ("none", "rot90", "dihedral", "rotation")


class PlanarSymmetry:
    """Draws one symmetry per window (the same over its time steps) and applies it."""

    def __init__(self, mode: str, base_joint: int, joint_dim: int, action_dim: int,
                 image_shape: Optional[tuple[int, ...]]):
        if mode not in ("rot90", "dihedral"):
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


class StateRotation:
    """Turns each window of a state-vector robot by one random angle about the vertical axis."""

    def __init__(self, angle_pairs, vector_pairs, joint_dim: int, image_shape: Optional[tuple[int, ...]]):
        if image_shape is not None:
            raise ValueError("symmetry_augment='rotation' turns state vectors by any angle, which an image "
                             "cannot follow exactly; use 'rot90' or 'dihedral' for a camera robot")
        pairs = [tuple(int(i) for i in p) for p in (*angle_pairs, *vector_pairs)]
        if not pairs or any(len(p) != 2 for p in pairs):
            raise ValueError("symmetry_augment='rotation' needs symmetry_angle_pairs and/or symmetry_vector_pairs "
                             f"as [[i, j], ...] index pairs, got {list(angle_pairs)} and {list(vector_pairs)}")
        used = [i for p in pairs for i in p]
        if any(not 0 <= i < joint_dim for i in used) or len(set(used)) != len(used):
            raise ValueError(f"symmetry pairs {pairs} must be distinct indices into the {joint_dim}-entry joint vector")
        # (cos q, sin q) of an angle about the axis turns exactly like an (x, y) vector
        self.pairs = np.array(pairs, np.int64)

    def __call__(self, batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        joints = batch["joints"]
        theta = rng.uniform(-math.pi, math.pi, size=len(joints)).reshape((-1,) + (1,) * (joints.ndim - 2))
        c, s = np.cos(theta), np.sin(theta)
        out = joints.astype(np.float64)  # a copy
        x, y = joints[..., self.pairs[:, 0]], joints[..., self.pairs[:, 1]]
        out[..., self.pairs[:, 0]] = c[..., None] * x - s[..., None] * y
        out[..., self.pairs[:, 1]] = s[..., None] * x + c[..., None] * y
        return {**batch, "joints": out.astype(joints.dtype)}


class RandomShift:
    """Shifts each window's images (or each frame of an i.i.d. frame batch) by one random offset."""

    def __init__(self, pad: int, image_shape: Optional[tuple[int, ...]]):
        if image_shape is None:
            raise ValueError(f"image_shift_pad={pad} shifts camera images, but the model observes no image")
        self.pad = int(pad)

    def __call__(self, batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        image, pad = batch["image"], self.pad
        dy, dx = rng.integers(-pad, pad + 1, size=(2, len(image)))
        return {**batch, "image": shift_images(image, dy, dx)}


def shift_images(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """`images[i]` ([..., H, W, C]: one frame or a window of frames) shifted by (dy[i], dx[i]) pixels,
    the border repeated: a crop at offset (pad + dy, pad + dx) of the image padded by `pad` with
    its edge pixels, as DrQ does it. The one implementation of the shift (agent/drq.py uses it too)."""
    h, w = images.shape[-3:-1]
    out = np.empty_like(images)
    for i in range(len(images)):  # one offset per item: a window's frames move together
        rows = np.clip(np.arange(h) + int(dy[i]), 0, h - 1)  # source rows/columns; clipping repeats the border
        cols = np.clip(np.arange(w) + int(dx[i]), 0, w - 1)
        out[i] = images[i].take(rows, axis=-3).take(cols, axis=-2)
    return out


class Compose:
    """Several augmentations, applied in order."""

    def __init__(self, *augments):
        self.augments = augments

    def __call__(self, batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        for augment in self.augments:
            batch = augment(batch, rng)
        return batch


def _symmetry(config, obs_spec, action_dim: int):
    mode = config.symmetry_augment
    if mode == "none":
        return None
    if mode == "rotation":
        return StateRotation(config.symmetry_angle_pairs, config.symmetry_vector_pairs, obs_spec.joint_dim,
                             obs_spec.image_shape)
    return PlanarSymmetry(mode, config.symmetry_base_joint, obs_spec.joint_dim, action_dim, obs_spec.image_shape)


def from_config(config, obs_spec, action_dim: int):
    """The augmentation a WorldModelConfig asks for (a callable(batch, rng) -> batch), or None when off."""
    parts = [_symmetry(config, obs_spec, action_dim),
             RandomShift(config.image_shift_pad, obs_spec.image_shape) if config.image_shift_pad > 0 else None]
    parts = [part for part in parts if part is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Compose(*parts)
