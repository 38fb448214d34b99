"""logger_node: records what the robot lived through as rosbag2 (MCAP) in rolling segments.

Subscribes (raw CDR, no deserialisation) to the camera, joint states, commands,
reward and episode topics and hands the bytes to
mbrl_ros.data.bag_writer.SegmentedBagWriter. Each segment is a complete bag
once closed, so a crash loses at most the open segment; segments roll at
episode starts where possible. Log times are the node clock (sim time under
use_sim_time), the same clock that stamps the messages.
"""
from __future__ import annotations

from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray, Int64

from mbrl_ros.data.bag_writer import ON_FULL, STORAGE, SegmentedBagWriter
from mbrl_ros.nodes.common import COMMAND_QOS, EVENT_QOS, SENSOR_QOS, declare, run, publish_status
from mbrl_ros.nodes.cpu_share import cpu_share_parameters, yield_cpu
from mbrl_ros.params import Param, table

# topic -> (message class, ROS type name, QoS)
TOPICS = {
    "/camera/image_raw": (Image, "sensor_msgs/msg/Image", SENSOR_QOS),
    "/joint_states": (JointState, "sensor_msgs/msg/JointState", SENSOR_QOS),
    "/mbrl/commands": (Float64MultiArray, "std_msgs/msg/Float64MultiArray", COMMAND_QOS),
    "/mbrl/reward": (Float64, "std_msgs/msg/Float64", EVENT_QOS),
    "/mbrl/episode": (Int64, "std_msgs/msg/Int64", EVENT_QOS),
    "/mbrl/terminal": (Bool, "std_msgs/msg/Bool", EVENT_QOS),
}

PARAMETERS = table(
    Param("output_dir", "string", "mbrl_data/bags", "folder for the rolling bag segments"),
    Param("prefix", "string", "segment", "segment folder name prefix: `<output_dir>/<prefix>_NNNN`"),
    Param("storage", "string", "mcap", "rosbag2 storage plugin", choices=tuple(STORAGE)),
    Param("segment_duration_s", "double", 60.0, "close a segment after this much log time (rolls at the next "
          "episode start)", range=(1.0, 86400.0), unit="s"),
    Param("segment_max_mb", "double", 256.0, "close a segment after this size", range=(1.0, 1e6), unit="MiB"),
    Param("max_total_mb", "double", 4096.0, "disk cap for all segments; 0: no cap", range=(0.0, 1e9), unit="MiB"),
    Param("on_full", "string", "stop", "at the cap: stop recording (closed segments kept), or delete the oldest "
          "segments", choices=ON_FULL),
    Param("record_camera", "bool", True, "record the camera topic"),
    *cpu_share_parameters(niceness=5, threads=1),  # a background node: control first
)


class LoggerNode(Node):
    def __init__(self):
        super().__init__("logger")
        p = declare(self, PARAMETERS)
        self.cpu = yield_cpu(p["niceness"], p["threads"])
        self.writer = SegmentedBagWriter(
            Path(p["output_dir"]), prefix=p["prefix"], storage=p["storage"],
            max_segment_s=float(p["segment_duration_s"]), max_segment_bytes=int(p["segment_max_mb"] * 2**20),
            max_total_bytes=int(p["max_total_mb"] * 2**20) if p["max_total_mb"] > 0 else None,
            on_full=p["on_full"], split_topic="/mbrl/episode", on_segment_closed=self._on_closed)
        self.counts = {topic: 0 for topic in TOPICS}
        for topic, (cls, type_name, qos) in TOPICS.items():
            if topic == "/camera/image_raw" and not p["record_camera"]:
                continue
            # Subscribed by the relative name, so a namespace and remappings choose the robot's topic;
            # recorded under the canonical root name (`/joint_states`, not `/r1/joint_states`): what
            # the ingester expects by default, whatever namespace the robot ran in.
            self.create_subscription(cls, topic.lstrip("/"), self._writer_for(topic, type_name), qos, raw=True)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(2.0, self._publish_diagnostics)
        self._warned_full = False
        self.get_logger().info(f"recording {len(TOPICS)} topics to {p['output_dir']} ({p['storage']}): " + ", ".join(
            f"{self.resolve_topic_name(t.lstrip('/'))} as {t}" for t in TOPICS))

    def _writer_for(self, topic: str, type_name: str):
        def write(data: bytes) -> None:
            stamp = self.get_clock().now().nanoseconds
            if self.writer.write_raw(topic, type_name, stamp, data):
                self.counts[topic] += 1
            elif self.writer.stopped and not self._warned_full:
                self._warned_full = True
                self.get_logger().error("disk cap reached: recording stopped (raise max_total_mb or set "
                                        "on_full:=delete_oldest); closed segments are intact")
        return write

    def _on_closed(self, path: Path) -> None:
        if self.context.ok():
            self.get_logger().info(f"segment closed: {path}")
        else:  # closing at shutdown: rosout is gone already
            print(f"[logger] segment closed: {path}", flush=True)

    def _publish_diagnostics(self) -> None:
        values = {**{f"messages{t.replace('/', '_')}": str(c) for t, c in self.counts.items()},
                  "segments_closed": str(len(self.writer.closed_segments)),
                  "open_segment": str(self.writer.current_path or ""), "disk_mb": f"{self.writer.disk_usage() / 2**20:.1f}",
                  "dropped_messages": str(self.writer.dropped_messages), **self.cpu}
        level = DiagnosticStatus.ERROR if self.writer.stopped else DiagnosticStatus.OK
        publish_status(self, self.pub_diag, "mbrl_ros: logger", level,
                       "recording stopped: disk cap" if self.writer.stopped else "recording", values)

    def close(self) -> None:
        self.writer.close()  # closes and fsyncs the open segment: a clean stop loses nothing


def main() -> int:
    return run(LoggerNode)


if __name__ == "__main__":
    raise SystemExit(main())
