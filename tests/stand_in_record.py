"""Explore a robot and record it: a random teleoperator plus a `ros2 bag record` stand-in.

For the stand-in robot (tests/stand_in_driver.py) where `ros2 bag record` is not installed
(PyPI's ROS 2 wheels have no rosbag2): publishes exploratory position targets on the robot's
command topic at the control rate (a new random target inside the limits every few ticks), and
records the robot's topics, under the robot's own names, as rosbag2 MCAP bags written by
`rosbags`, one bag per run (`<out>/run_001`, ...), like one `ros2 bag record -s mcap` per run:

- message types are discovered on the graph, and each topic is subscribed with the publishers'
  reliability (what rosbag2 does), raw: the CDR bytes go to the bag untouched;
- the log time of a message is its receive time on the wall clock;
- the commands are recorded as received from DDS, like any other publisher's.

    python -m tests.stand_in_record --out bags --runs 2 --seconds 6    # (from the repo root)

No mbrl_ros code is used: this is the user's side of the recipe (docs/stand_in_robot.md).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from std_msgs.msg import Float64MultiArray

from tests.stand_in_driver import COMMAND_JOINTS, LIMITS

TOPICS = ("/camera/color/image_raw", "/joint_states", "/forward_position_controller/commands")
COMMAND_TOPIC = "/forward_position_controller/commands"


class Explorer(Node):
    """Random position targets inside the limits, each held for 2-6 ticks."""

    def __init__(self, rate_hz: float, seed: int, share: float):
        super().__init__("stand_in_explorer")
        self.rng = np.random.default_rng(seed)
        self.low = np.array([LIMITS[n][0] for n in COMMAND_JOINTS]) * share
        self.high = np.array([LIMITS[n][1] for n in COMMAND_JOINTS]) * share
        self.target, self.hold = self.rng.uniform(self.low, self.high), 0
        self.pub = self.create_publisher(Float64MultiArray, COMMAND_TOPIC,
                                         QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.timer = self.create_timer(1.0 / rate_hz, self.tick)
        self.sent = 0

    def tick(self) -> None:
        if self.hold <= 0:
            self.target, self.hold = self.rng.uniform(self.low, self.high), int(self.rng.integers(2, 7))
        self.hold -= 1
        self.pub.publish(Float64MultiArray(data=[float(x) for x in self.target]))
        self.sent += 1


class Recorder:
    """One bag: raw subscriptions to `topics`, written to an MCAP bag as they arrive."""

    def __init__(self, node: Node, path: Path, types: dict[str, str], typestore):
        self.node, self.path, self.counts = node, path, dict.fromkeys(types, 0)
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.subs = []
        for topic, msgtype in types.items():
            conn = self.writer.add_connection(topic, msgtype, typestore=typestore)
            cls = _message_class(msgtype)
            self.subs.append(node.create_subscription(cls, topic, self._writer(topic, conn), _qos_of(node, topic),
                                                      raw=True))

    def _writer(self, topic, conn):
        def write(data: bytes) -> None:
            self.writer.write(conn, time.time_ns(), bytes(data))
            self.counts[topic] += 1
        return write

    def close(self) -> None:
        for sub in self.subs:
            self.node.destroy_subscription(sub)
        self.writer.close()


def _message_class(msgtype: str):
    package, _, name = msgtype.split("/")
    module = __import__(f"{package}.msg", fromlist=[name])
    return getattr(module, name)


def _qos_of(node: Node, topic: str) -> QoSProfile:
    """Reliable if every publisher offers it, else best effort (rosbag2's QoS adaptation)."""
    infos = node.get_publishers_info_by_topic(topic)
    reliable = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)


def discover(node: Node, topics, timeout: float) -> dict[str, str]:
    """{topic: "pkg/msg/Type"} once every topic has a publisher; RuntimeError naming the missing ones."""
    deadline = time.monotonic() + timeout
    while True:
        found = {name: types[0] for name, types in node.get_topic_names_and_types() if name in topics}
        published = {t: found[t] for t in topics if t in found and node.get_publishers_info_by_topic(t)}
        if len(published) == len(topics):
            return published
        if time.monotonic() > deadline:
            raise RuntimeError(f"no publisher for {sorted(set(topics) - set(published))} after {timeout:g} s")
        rclpy.spin_once(node, timeout_sec=0.1)


def spin_for(node: Node, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.01)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the bags (run_001, run_002, ...)")
    parser.add_argument("--runs", type=int, default=2, help="bags to record, one after the other")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each bag")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between bags (still exploring)")
    parser.add_argument("--rate", type=float, default=20.0, help="command rate (Hz)")
    parser.add_argument("--share", type=float, default=0.9, help="explore this share of the joint limits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the robot's topics")
    args = parser.parse_args(argv)

    rclpy.init()
    node = Explorer(args.rate, args.seed, args.share)
    try:
        # The command topic has a publisher as soon as the explorer exists; the others are the robot's.
        types = discover(node, TOPICS, args.wait)
        typestore = get_typestore(Stores.ROS2_JAZZY)
        args.out.mkdir(parents=True, exist_ok=True)
        for run in range(1, args.runs + 1):
            recorder = Recorder(node, args.out / f"run_{run:03d}", types, typestore)
            spin_for(node, args.seconds)
            recorder.close()
            print(f"[stand_in_record] {recorder.path}: " + ", ".join(f"{t} {n}" for t, n in recorder.counts.items()),
                  flush=True)
            spin_for(node, args.pause if run < args.runs else 0.0)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
