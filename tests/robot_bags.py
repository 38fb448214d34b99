"""Recordings of a stand-in robot that is not the package's sim, written with `rosbags` itself.

What a user's `ros2 bag record` of a ros2_control arm looks like: /joint_states in another
joint order with an extra joint, position commands on /forward_position_controller/commands,
an optional bgr8 camera on /camera/color/image_raw, NO reward, episode or terminal topic,
commands at ~20 Hz with a few ms of jitter, and the recorder paused ~2 s between episodes.
The arm is a first-order position servo: q[k+1] = q[k] + 0.5 (command[k] - q[k]).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mbrl_ros.data import ros_messages as rm
from mbrl_ros.spec import ActionSpec
from tests.bag_helpers import write_bag_with_rosbags

MS = 1_000_000
DT = 50 * MS
JOINTS = ("shoulder_joint", "elbow_joint")
PUBLISHED_ORDER = ["elbow_joint", "gripper_joint", "shoulder_joint"]
ACTION_SPEC = ActionSpec(dim=2, low=(-1.5, -1.5), high=(1.5, 1.5), names=JOINTS)
COMMAND_TOPIC = "/forward_position_controller/commands"
IMAGE_TOPIC = "/camera/color/image_raw"


def simulate(rng: np.random.Generator, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions [steps, 2], velocities [steps, 2], commands [steps - 1, 2] in robot units)."""
    commands = rng.uniform(-1.5, 1.5, size=(steps - 1, 2))
    q = np.zeros((steps, 2))
    q[0] = rng.uniform(-0.5, 0.5, size=2)
    for k in range(steps - 1):
        q[k + 1] = q[k] + 0.5 * (commands[k] - q[k])
    v = np.zeros_like(q)
    v[1:] = np.diff(q, axis=0) / (DT / 1e9)
    return q, v, commands


def render(q: np.ndarray, hw=(24, 32)) -> np.ndarray:
    """An RGB frame with a bright block whose place follows the joints."""
    h, w = hw
    img = np.full((h, w, 3), 40, np.uint8)
    row = int(np.clip((q[1] + 1.5) / 3.0 * (h - 4), 0, h - 4))
    col = int(np.clip((q[0] + 1.5) / 3.0 * (w - 4), 0, w - 4))
    img[row:row + 4, col:col + 4] = (250, 120, 10)
    return img


def write_robot_bag(path: Path, storage: str = "mcap", seed: int = 0, episodes: int = 3, steps: int = 40,
                    jitter_ms: float = 5.0, gap_s: float = 2.0, camera_every: int = 0,
                    image_hw=(24, 32)) -> list[dict]:
    """Write the bag; returns per episode {"q", "v", "commands"} (what ingest must recover).

    camera_every: 0 = no camera; n = one bgr8 frame every n control ticks (n = 2: a 10 Hz camera).
    """
    rng = np.random.default_rng(seed)
    messages, truth = [], []
    start = 3_000 * MS
    for _ in range(episodes):
        q, v, commands = simulate(rng, steps)
        truth.append({"q": q, "v": v, "commands": commands})
        for k in range(steps):
            t = start + k * DT
            pos = dict(zip(JOINTS, q[k]), gripper_joint=0.02)
            vel = dict(zip(JOINTS, v[k]), gripper_joint=0.0)
            messages.append(("/joint_states", rm.make_joint_state(
                PUBLISHED_ORDER, [float(pos[n]) for n in PUBLISHED_ORDER],
                [float(vel[n]) for n in PUBLISHED_ORDER], t), t + MS))
            if camera_every and k % camera_every == 0:
                messages.append((IMAGE_TOPIC, rm.make_image(render(q[k], image_hw), t, encoding="bgr8"), t + 3 * MS))
            if k + 1 < steps:  # the command answering obs k, logged 10 +- jitter ms later
                late = int((10 + rng.uniform(-jitter_ms, jitter_ms)) * MS)
                messages.append((COMMAND_TOPIC, rm.make_commands(commands[k]), t + late))
        start += (steps - 1) * DT + int(gap_s * 1e9)
    write_bag_with_rosbags(path, messages, storage)
    return truth


def ingest_dict(**overrides) -> dict:
    """The ingest YAML a user writes for this robot (no reward topic: reward_source none)."""
    d = {"joint_names": list(JOINTS), "action_spec": ACTION_SPEC.to_dict(), "image_size": None,
         "command_topic": COMMAND_TOPIC, "image_topic": IMAGE_TOPIC, "reward_source": "none",
         "active_grace_s": 0.0}
    d.update(overrides)
    return d
