"""The observation/action contract shared by envs, data, model, bundles and nodes.

Observation: {"image": uint8[H, W, 3], "joints": float32[J]} (image optional).
Action: float32[A] in [-1, 1]; scaled to the robot's limits at the edge (nodes),
never inside the model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class ObsSpec:
    """What the robot observes. `image_shape` is None for joints-only robots."""

    joint_dim: int
    image_shape: Optional[tuple[int, int, int]] = (64, 64, 3)
    # Names for each entry of the joint vector, e.g. ["shoulder.pos", ..., "shoulder.vel", ...].
    joint_names: tuple[str, ...] = ()
    # Entries of the joint vector that are angles of unlimited revolute joints (URDF
    # "continuous", MuJoCo hinges without a range). Their raw value winds past +-pi, so
    # the world model reads and predicts them as (sin, cos); see WorldModel.joint_features.
    angle_joints: tuple[int, ...] = ()

    def __post_init__(self):
        if self.joint_dim < 0:
            raise ValueError(f"joint_dim must be >= 0, got {self.joint_dim}")
        angles = tuple(sorted(set(int(i) for i in self.angle_joints)))
        if any(i < 0 or i >= self.joint_dim for i in angles):
            raise ValueError(f"angle_joints {list(angles)} must index the {self.joint_dim}-entry joint vector")
        object.__setattr__(self, "angle_joints", angles)
        if self.image_shape is not None:
            object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
            if len(self.image_shape) != 3 or self.image_shape[2] != 3:
                raise ValueError(f"image_shape must be (H, W, 3), got {self.image_shape}")
        object.__setattr__(self, "joint_names", tuple(self.joint_names))

    @property
    def has_image(self) -> bool:
        return self.image_shape is not None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape) if self.image_shape else None
        d["joint_names"] = list(self.joint_names)
        d["angle_joints"] = list(self.angle_joints)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ObsSpec":
        shape = d.get("image_shape")
        return cls(
            joint_dim=int(d["joint_dim"]),
            image_shape=tuple(shape) if shape else None,
            joint_names=tuple(d.get("joint_names", ())),
            angle_joints=tuple(d.get("angle_joints", ())),
        )

    def require_joint_names(self, where: str) -> "ObsSpec":
        """This spec, or ValueError if its joint entries are not all named: a robot matches
        JointState entries to the model's vector by these names, and a spec without them would
        make a controller wait for joints that never come (or read the wrong ones)."""
        if self.joint_dim and len(self.joint_names) != self.joint_dim:
            raise ValueError(f"{where}: the observation spec names {len(self.joint_names)} of its {self.joint_dim} "
                             "joint entries; every entry needs a name (ingest with joint_names set)")
        return self

    def validate(self, obs: dict) -> None:
        """Raise ValueError naming the problem if `obs` does not fit this spec."""
        joints = np.asarray(obs.get("joints"))
        if joints.shape != (self.joint_dim,):
            raise ValueError(f"joints: expected shape ({self.joint_dim},), got {joints.shape}")
        if not np.all(np.isfinite(joints)):
            raise ValueError("joints: contains NaN or inf")
        if self.has_image:
            image = obs.get("image")
            if image is None:
                raise ValueError("image: missing")
            image = np.asarray(image)
            if image.dtype != np.uint8 or image.shape != self.image_shape:
                raise ValueError(
                    f"image: expected uint8{list(self.image_shape)}, got {image.dtype}{list(image.shape)}"
                )


@dataclass(frozen=True)
class ActionSpec:
    """Normalised actions in [-1, 1]; `low`/`high` are the robot's command limits."""

    dim: int
    low: tuple[float, ...] = field(default=())
    high: tuple[float, ...] = field(default=())
    names: tuple[str, ...] = ()

    def __post_init__(self):
        low = tuple(float(x) for x in (self.low or (-1.0,) * self.dim))
        high = tuple(float(x) for x in (self.high or (1.0,) * self.dim))
        if len(low) != self.dim or len(high) != self.dim:
            raise ValueError(f"action limits must have {self.dim} entries")
        if any(h <= l for l, h in zip(low, high)):
            raise ValueError(f"action limits must satisfy low < high, got {low} / {high}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "names", tuple(self.names))

    def to_robot(self, action: Sequence[float]) -> np.ndarray:
        """[-1, 1] -> robot units, clipping first so nothing outside the limits escapes."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        low, high = np.asarray(self.low), np.asarray(self.high)
        return low + (a + 1.0) * 0.5 * (high - low)

    def from_robot(self, command: Sequence[float]) -> np.ndarray:
        """Robot units -> [-1, 1] (clipped)."""
        c = np.asarray(command, dtype=np.float64)
        low, high = np.asarray(self.low), np.asarray(self.high)
        return np.clip(2.0 * (c - low) / (high - low) - 1.0, -1.0, 1.0).astype(np.float32)

    def to_dict(self) -> dict:
        return {"dim": self.dim, "low": list(self.low), "high": list(self.high), "names": list(self.names)}

    @classmethod
    def from_dict(cls, d: dict) -> "ActionSpec":
        return cls(dim=int(d["dim"]), low=tuple(d.get("low", ())), high=tuple(d.get("high", ())),
                   names=tuple(d.get("names", ())))
