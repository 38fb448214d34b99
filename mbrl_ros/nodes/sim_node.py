"""sim_node: a MuJoCo robot on ROS 2 topics, paced against the wall clock.

Publishes camera/image_raw (sensor_msgs/Image rgb8, sensor-data QoS), joint_states,
mbrl/reward, mbrl/episode, mbrl/terminal and /clock; applies mbrl/commands
(std_msgs/Float64MultiArray, robot units); mbrl/reset (std_srvs/Trigger) starts a
new episode. Topic and service names are relative, so a namespace (`-r __ns:=/r1`,
`mbrl-ros launch sim namespace:=r1`) moves the whole robot; /clock is absolute as
ROS's use_sim_time requires (a namespaced graph remaps it per robot), and so is
/diagnostics (aggregated; the status name carries the namespace). The schedule lives
in mbrl_ros.envs.sim_loop.SimLoop; this file only moves data between it and ROS.
"""
from __future__ import annotations

import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray, Int64
from std_srvs.srv import Trigger

from mbrl_ros.nodes.common import (COMMAND_QOS, EVENT_QOS, SENSOR_QOS, BackgroundSpinner, declare,
                                   publish_status, run, sec_to_stamp)
from mbrl_ros.params import Param, table
from mbrl_ros.runtime.safety import CommandGate
from mbrl_ros.envs.sim_loop import SimLoop, SimRates

PARAMETERS = table(
    Param("env_id", "string", "mbrl_ros/Reacher2D-v0", "simulated robot (one of mbrl_ros.envs.ENV_IDS)"),
    Param("image_size", "integer", 64, "camera image height and width", range=(8, 1024), unit="px"),
    Param("real_time_factor", "double", 1.0, "sim seconds per wall second; 0 runs as fast as possible",
          range=(0.0, 1000.0)),
    Param("camera_rate_hz", "double", 30.0, "camera publish rate (sim time)", range=(0.1, 1000.0), unit="Hz"),
    Param("joint_state_rate_hz", "double", 100.0, "joint state publish rate (sim time)", range=(0.1, 10000.0),
          unit="Hz"),
    Param("clock_rate_hz", "double", 100.0, "/clock publish rate (sim time); a multiple of the control rate keeps "
          "sim-time timers even, and every use_sim_time node pays per message (docs/nodes.md, /clock)",
          range=(1.0, 10000.0), unit="Hz"),
    Param("command_timeout_s", "double", 0.5, "zero the actuators when no valid command arrived for this long "
          "(sim time)", range=(0.001, 60.0), unit="s"),
    Param("episode_steps", "integer", 0, "control steps per episode; 0 keeps the env's default",
          range=(0, 10_000_000)),
    Param("seed", "integer", 0, "episode i uses seed + i; -1 for unseeded", range=(-1, 2**31 - 1)),
    Param("camera_frame_id", "string", "camera", "frame_id of the camera images"),
    Param("publish_camera", "bool", True, "render and publish the camera"),
)


class SimNode(Node):
    def __init__(self):
        super().__init__("sim")
        p = declare(self, PARAMETERS)
        import mbrl_ros.envs as envs  # mujoco import is slow: only when the node starts

        kwargs = {"image_size": int(p["image_size"])}
        if p["episode_steps"] > 0:
            kwargs["episode_steps"] = int(p["episode_steps"])
        self.env = envs.make(p["env_id"], **kwargs)
        u = self.env.unwrapped
        self.gate = CommandGate(u.action_spec, timeout_s=float(p["command_timeout_s"]))
        self.loop = SimLoop(self.env, SimRates(p["joint_state_rate_hz"], p["camera_rate_hz"], p["clock_rate_hz"]),
                            self.gate, seed=None if p["seed"] < 0 else int(p["seed"]),
                            render_camera=bool(p["publish_camera"]))
        self.rtf = p["real_time_factor"]
        self.frame_id = p["camera_frame_id"]
        self.joint_names = list(u.joint_names)
        self.lock = threading.Lock()

        self.pub_image = self.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
        self.pub_joints = self.create_publisher(JointState, "joint_states", SENSOR_QOS)
        self.pub_reward = self.create_publisher(Float64, "mbrl/reward", EVENT_QOS)
        self.pub_episode = self.create_publisher(Int64, "mbrl/episode", EVENT_QOS)
        self.pub_terminal = self.create_publisher(Bool, "mbrl/terminal", EVENT_QOS)
        self.pub_clock = self.create_publisher(Clock, "/clock", 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Float64MultiArray, "mbrl/commands", self._on_command, COMMAND_QOS)
        self.create_service(Trigger, "mbrl/reset", self._on_reset)
        self.counts = {"images": 0, "joint_states": 0, "episodes": 0}
        self.get_logger().info(
            f"simulating {p['env_id']}: physics {1 / u.physics_dt:.0f} Hz, control {1 / u.control_dt:.0f} Hz, "
            f"camera {p['camera_rate_hz']} Hz, joints {p['joint_state_rate_hz']} Hz, real-time factor {self.rtf}")

    # ------------------------------------------------------------ callbacks
    def _on_command(self, msg: Float64MultiArray) -> None:
        with self.lock:
            warning = self.gate.submit(msg.data, now=self.loop.time)
        if warning:
            self.get_logger().warning(f"{warning} (counts: {dict(self.gate.counts)})", throttle_duration_sec=2.0)

    def _on_reset(self, _request, response):
        self.loop.request_reset()
        response.success = True
        response.message = f"episode {self.loop.episode + 1} starts at the next physics step"
        return response

    # ----------------------------------------------------------- main loop
    def spin_simulation(self) -> None:
        with BackgroundSpinner(self):  # commands and reset requests arrive on the spinner thread
            self._run_paced()

    def _run_paced(self) -> None:
        wall0, sim0 = time.monotonic(), self.loop.time
        next_diag = wall0
        while rclpy.ok():
            with self.lock:
                events = self.loop.advance()
            self._publish(events)
            now = time.monotonic()
            if self.rtf > 0:  # pace: sim time elapsed must not run ahead of wall time * rtf
                ahead = (events.time - sim0) / self.rtf - (now - wall0)
                if ahead > 0:
                    time.sleep(ahead)
                elif ahead < -0.5:  # fell far behind (e.g. machine busy): don't try to catch up in a burst
                    wall0, sim0 = now, events.time
            if now >= next_diag:
                self._publish_diagnostics(events.time)
                next_diag = now + 1.0

    def _publish(self, ev) -> None:
        stamp = sec_to_stamp(ev.time)
        if ev.clock:
            self.pub_clock.publish(Clock(clock=stamp))
        if ev.episode_end is not None:
            self.pub_terminal.publish(Bool(data=bool(ev.episode_end)))
        if ev.reward is not None:
            self.pub_reward.publish(Float64(data=ev.reward))
        if ev.episode_start is not None:
            self.pub_episode.publish(Int64(data=int(ev.episode_start)))
            self.counts["episodes"] += 1
        if ev.joints is not None:
            n = len(self.joint_names)
            msg = JointState(name=self.joint_names, position=ev.joints[:n].astype(float).tolist(),
                             velocity=ev.joints[n:].astype(float).tolist())
            msg.header.stamp = stamp
            self.pub_joints.publish(msg)
            self.counts["joint_states"] += 1
        if ev.image is not None:
            h, w, _ = ev.image.shape
            msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
            msg.data = ev.image.tobytes()
            msg.header.stamp = stamp
            msg.header.frame_id = self.frame_id
            self.pub_image.publish(msg)
            self.counts["images"] += 1

    def _publish_diagnostics(self, sim_time: float) -> None:
        values = {**{k: str(v) for k, v in self.counts.items()},
                  **{f"commands_{k}": str(v) for k, v in self.gate.counts.items()},
                  "sim_time": f"{sim_time:.3f}", "episode": str(self.loop.episode),
                  # the oldest command the actuators held since the last report (sim s; ~1 control
                  # period when the controller keeps its rate)
                  "command_age_max_s": f"{self._pop_command_age():.3f}",
                  "command_timed_out": str(self.gate.timed_out)}
        level = DiagnosticStatus.WARN if self.gate.timed_out else DiagnosticStatus.OK
        publish_status(self, self.pub_diag, "mbrl_ros: sim", level,
                       "commands timed out: actuators zeroed" if self.gate.timed_out else "running", values)

    def _pop_command_age(self) -> float:
        with self.lock:
            return self.gate.pop_max_age()

    def close(self) -> None:
        self.env.close()


def main() -> int:
    return run(SimNode, spin=lambda node: node.spin_simulation())


if __name__ == "__main__":
    raise SystemExit(main())
