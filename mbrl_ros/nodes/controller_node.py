"""controller_node: plans in the learned model at the control rate and publishes commands.

Subscribes to the camera (sensor-data QoS) and /joint_states (joints matched by
name), keeps the latest of each with its stamp, and on a timer runs
mbrl_ros.control.ControlLoop.tick(): belief update, planning (cem | mcts | mppi),
safety (stale/invalid inputs -> hold or zero, rate limit, clamp) and scaling to
the robot's limits. Publishes std_msgs/Float64MultiArray on /mbrl/commands
(remap onto a ros2_control forward_command_controller), diagnostics on
/diagnostics, and offers /mbrl/controller/enable (std_srvs/SetBool).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, Int64
from std_srvs.srv import SetBool

from mbrl_ros.control import ControlConfig, ControlLoop, Observation, PreferredStore
from mbrl_ros.nodes.common import (COMMAND_QOS, EVENT_QOS, SENSOR_QOS, declare, publish_status, run,
                                   stamp_to_sec)
from mbrl_ros.observation import image_to_rgb, joint_names_for, joints_from_state
from mbrl_ros.runtime.model_store import ModelStore
from mbrl_ros.runtime.sessions import SessionConfig

PARAMETERS = {
    "model_store": ("", "model bundle store to start from (a folder with CURRENT), e.g. the shipped models/reacher2d"),
    "watch_store": ("", "store the online trainer publishes to; its models replace model_store's once they exist"),
    "planner": ("cem", "cem | mcts | mppi"),
    "planner_config": ("{}", "JSON object of planner config fields, e.g. {\"horizon\": 12}"),
    "control_rate_hz": (20.0, "planning / command rate (node clock: sim time under use_sim_time)"),
    "input_timeout_s": (0.25, "camera/joint inputs older than this are stale"),
    "on_stale": ("zero", "command on stale or invalid inputs: zero | hold"),
    "max_delta": (2.0, "largest change of the normalised [-1,1] action per tick (2: unlimited)"),
    "planning_budget_s": (0.0, "planner deadline per tick; 0: 80% of the control period"),
    "resize_images": (False, "resize camera frames to the model's image size instead of refusing them"),
    "providers": (["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                  "ONNX Runtime execution providers by preference"),
    "model_poll_s": (1.0, "how often to look for a newly published model"),
    "seed": (0, "planner random seed"),
}


class ControllerNode(Node):
    def __init__(self):
        super().__init__("controller")
        p = declare(self, PARAMETERS)
        logging.basicConfig(level=logging.INFO)  # the runtime logs model swaps/refusals through `logging`
        if not p["model_store"]:
            raise ValueError("parameter model_store is required (a folder with a CURRENT file)")
        sessions = SessionConfig(providers=tuple(p["providers"]))
        fallback = ModelStore(Path(p["model_store"]), session_config=sessions, required=True)
        preferred = ModelStore(Path(p["watch_store"]), obs_spec=fallback.obs_spec, action_spec=fallback.action_spec,
                               session_config=sessions) if p["watch_store"] else None
        self.store = PreferredStore(fallback, preferred).start(float(p["model_poll_s"]))
        try:
            planner_config = json.loads(p["planner_config"] or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"planner_config is not JSON: {exc}") from exc
        self.config = ControlConfig(planner=p["planner"], planner_config=planner_config,
                                    control_rate_hz=float(p["control_rate_hz"]),
                                    input_timeout_s=float(p["input_timeout_s"]), on_stale=p["on_stale"],
                                    max_delta=float(p["max_delta"]), planning_budget_s=float(p["planning_budget_s"]),
                                    seed=int(p["seed"]))
        self.loop = ControlLoop(self.store, self.config)
        spec = self.store.current.obs_spec
        self.joint_names, self.with_velocity = joint_names_for(spec)
        self.image_size = spec.image_shape[:2] if spec.has_image else None
        self.resize = bool(p["resize_images"])
        self.obs = Observation()
        self.input_errors = 0

        if spec.has_image:
            self.create_subscription(Image, "/camera/image_raw", self._on_image, SENSOR_QOS)
        self.create_subscription(JointState, "/joint_states", self._on_joints, SENSOR_QOS)
        self.create_subscription(Int64, "/mbrl/episode", self._on_episode, EVENT_QOS)
        self.pub_cmd = self.create_publisher(Float64MultiArray, "/mbrl/commands", COMMAND_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(SetBool, "/mbrl/controller/enable", self._on_enable)
        self.timer = self.create_timer(1.0 / self.config.control_rate_hz, self._on_tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self.last_result = None
        self.get_logger().info(f"controlling with {p['planner']} at {self.config.control_rate_hz} Hz on model "
                               f"{self.store.current.version} ({self.store.diagnostics().get('providers')})")

    # ---------------------------------------------------------------- inputs
    def _stamp(self, header) -> float:
        stamped = stamp_to_sec(header.stamp)
        return stamped if stamped > 0 else self._now()  # drivers that leave stamps empty: receipt time

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_image(self, msg: Image) -> None:
        try:
            self.obs.image = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                                          self.image_size, self.resize)
            self.obs.image_stamp = self._stamp(msg.header)
        except ValueError as exc:
            self.input_errors += 1
            self.get_logger().warning(f"camera frame refused: {exc}", throttle_duration_sec=2.0)

    def _on_joints(self, msg: JointState) -> None:
        try:
            self.obs.joints = joints_from_state(self.joint_names, self.with_velocity, msg.name, msg.position,
                                                msg.velocity)
            self.obs.joints_stamp = self._stamp(msg.header)
        except ValueError as exc:
            self.input_errors += 1
            self.get_logger().warning(f"joint state refused: {exc}", throttle_duration_sec=2.0)

    def _on_episode(self, msg: Int64) -> None:
        self.loop.reset()
        self.obs = Observation()  # frames from the old episode must not seed the new belief
        self.get_logger().info(f"episode {msg.data}: belief and plan reset")

    def _on_enable(self, request, response):
        self.loop.enabled = bool(request.data)
        response.success = True
        response.message = "enabled" if request.data else "disabled: publishing zero commands"
        return response

    # ------------------------------------------------------------------ tick
    def _on_tick(self) -> None:
        result = self.loop.tick(self._now(), self.obs)
        self.pub_cmd.publish(Float64MultiArray(data=result.command.astype(float).tolist()))
        self.last_result = result
        if result.mode != "plan":
            self.get_logger().warning(f"{result.mode}: {result.reason}", throttle_duration_sec=2.0)
        if result.latency_s > self.timer.timer_period_ns * 1e-9:
            self.get_logger().warning(f"tick took {result.latency_s * 1e3:.0f} ms (> control period; model "
                                      f"{self.loop.belief.bundle.version})", throttle_duration_sec=1.0)

    def _publish_diagnostics(self) -> None:
        now = self._now()
        values = {**self.loop.stats(), **{f"ticks_{k}": v for k, v in self.loop.counts.items()},
                  **self.store.diagnostics(), "input_errors": self.input_errors,
                  "joint_age_s": f"{now - self.obs.joints_stamp:.3f}", "image_age_s": f"{now - self.obs.image_stamp:.3f}",
                  "planner": self.config.planner}
        if self.last_result is not None:
            values["mode"] = self.last_result.mode
            values["transitions_per_tick"] = self.last_result.info.get("transitions", "")
        level = DiagnosticStatus.OK if self.last_result is None or self.last_result.mode == "plan" \
            else DiagnosticStatus.WARN
        message = self.last_result.reason if self.last_result and self.last_result.reason else "planning"
        publish_status(self, self.pub_diag, "mbrl_ros: controller", level, message, values)

    def close(self) -> None:
        self.store.stop()


def main() -> int:
    return run(ControllerNode)


if __name__ == "__main__":
    raise SystemExit(main())
