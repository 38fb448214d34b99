"""A stand-in robot: a fake ros2_control arm that is NOT the package's sim node.

What a user's robot looks like to mbrl_ros, with no mbrl_ros code in it (only rclpy, MuJoCo
and numpy): the planar two-link arm of sim/reacher2d.xml, loaded with MuJoCo directly, its
torque motors swapped for position servos (what a `forward_position_controller` drives), run
on the wall clock (no /clock), talking ros2_control's topics:

  /joint_states                         sensor_msgs/JointState at 50 Hz, joint_state_broadcaster
                                        style: reliable, joints in the broadcaster's (alphabetical)
                                        order with an extra joint the model never sees:
                                        [elbow_joint, gripper_joint, shoulder_joint]
  /camera/color/image_raw               sensor_msgs/Image, 640x480 bgr8 at 30 Hz, reliable (as many
                                        camera drivers publish by default; best effort lost most 0.9 MB
                                        frames to fragment loss on a loaded machine)
  /forward_position_controller/commands std_msgs/Float64MultiArray, [shoulder_joint, elbow_joint]
                                        position targets in rad; a message of another length or
                                        with a non-finite entry is ignored (as ros2_control does)

and no reward topic. The servo clamps targets to its joint limits (LIMITS) like a real arm's
controller would; commands outside them are counted, not obeyed.

    python tests/stand_in_driver.py --log /tmp/driver.npz    # Ctrl-C to stop

On exit (SIGINT/SIGTERM) --log gets an .npz of every command received: receive time (wall
clock, s), the command, and the joint positions at that moment; plus counts of malformed and
out-of-limit commands. Topic names can be remapped as usual (`--ros-args -r from:=to`).
"""
from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco
import rclpy
import rclpy.signals
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

MJCF = Path(__file__).resolve().parent.parent / "sim" / "reacher2d.xml"
# The commanded joints, in the forward_position_controller's `joints` order, and their limits (rad).
COMMAND_JOINTS = ("shoulder_joint", "elbow_joint")
LIMITS = {"shoulder_joint": (-1.5, 1.5), "elbow_joint": (-2.0, 2.0)}
# joint_state_broadcaster publishes its interfaces' joints sorted, here with a gripper the model ignores.
PUBLISHED_ORDER = ("elbow_joint", "gripper_joint", "shoulder_joint")
GRIPPER_POSITION = 0.02
# Position servo gains (N*m/rad, N*m*s/rad): the arm (~3e-3 kg*m^2 about the shoulder) settles on a
# target in ~0.3 s, so a 20 Hz command stream matters from tick to tick.
KP, KV = 0.5, 0.06
CAMERA = "top"
RELIABLE_10 = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # rclcpp SystemDefaultsQoS


def build_model(width: int, height: int) -> mujoco.MjModel:
    """reacher2d.xml with ros2_control joint names, position servos and a camera buffer of width x height."""
    spec = mujoco.MjSpec.from_file(str(MJCF))
    spec.visual.global_.offwidth, spec.visual.global_.offheight = width, height
    for actuator in list(spec.actuators):
        spec.delete(actuator)
    renamed = {"shoulder": "shoulder_joint", "elbow": "elbow_joint"}
    for joint in spec.joints:
        joint.name = renamed[joint.name]
        joint.range = LIMITS[joint.name]
        joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE
    for name in COMMAND_JOINTS:
        servo = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        servo.set_to_position(kp=KP, kv=KV)
        servo.ctrlrange = LIMITS[name]
        servo.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    return spec.compile()


class StandInDriver(Node):
    def __init__(self, width: int, height: int, camera_hz: float, joint_hz: float, seed: int):
        super().__init__("stand_in_driver")
        self.model = build_model(width, height)
        self.data = mujoco.MjData(self.model)
        rng = np.random.default_rng(seed)
        self.qadr = [self.model.joint(n).qposadr[0] for n in COMMAND_JOINTS]
        self.vadr = [self.model.joint(n).dofadr[0] for n in COMMAND_JOINTS]
        for adr, name in zip(self.qadr, COMMAND_JOINTS):
            self.data.qpos[adr] = rng.uniform(*LIMITS[name]) * 0.5
        self.data.ctrl[:] = [self.data.qpos[a] for a in self.qadr]  # hold where it starts
        mujoco.mj_forward(self.model, self.data)
        self.renderer = mujoco.Renderer(self.model, height, width)
        self.sim_time0 = time.monotonic()  # the physics follows the wall clock
        self.received: list[tuple[float, list[float], list[float]]] = []
        self.malformed = self.out_of_limits = 0
        self.published = {"joint_states": 0, "camera": 0}
        self.low = np.array([LIMITS[n][0] for n in COMMAND_JOINTS])
        self.high = np.array([LIMITS[n][1] for n in COMMAND_JOINTS])

        self.pub_js = self.create_publisher(JointState, "/joint_states", RELIABLE_10)
        self.pub_img = self.create_publisher(Image, "/camera/color/image_raw", RELIABLE_10)
        self.create_subscription(Float64MultiArray, "/forward_position_controller/commands", self.on_command,
                                 RELIABLE_10)
        self.create_timer(1.0 / joint_hz, self.publish_joint_states)
        self.create_timer(1.0 / camera_hz, self.publish_camera)
        self.get_logger().info(f"stand-in arm up: joints {PUBLISHED_ORDER} at {joint_hz:g} Hz, "
                               f"{width}x{height} bgr8 camera at {camera_hz:g} Hz, commands {COMMAND_JOINTS}")

    def positions(self) -> np.ndarray:
        return np.array([self.data.qpos[a] for a in self.qadr])

    def step_to_now(self) -> None:
        """Advance the physics to the wall clock (at most 0.1 s at once: a stalled process does not jump)."""
        target = time.monotonic() - self.sim_time0
        steps = int((target - self.data.time) / self.model.opt.timestep)
        if steps > 50:
            self.data.time = target - 50 * self.model.opt.timestep
            steps = 50
        for _ in range(max(steps, 0)):
            mujoco.mj_step(self.model, self.data)

    def on_command(self, msg: Float64MultiArray) -> None:
        command = np.asarray(msg.data, dtype=float)
        if command.shape != (len(COMMAND_JOINTS),) or not np.all(np.isfinite(command)):
            self.malformed += 1
            self.get_logger().error(f"command ignored: expected {len(COMMAND_JOINTS)} finite positions for "
                                    f"{COMMAND_JOINTS}, got {list(msg.data)}", throttle_duration_sec=1.0)
            return
        if np.any(command < self.low) or np.any(command > self.high):
            self.out_of_limits += 1
        self.step_to_now()
        self.received.append((time.time(), command.tolist(), self.positions().tolist()))
        self.data.ctrl[:] = np.clip(command, self.low, self.high)

    def publish_joint_states(self) -> None:
        self.step_to_now()
        pos = dict(zip(COMMAND_JOINTS, self.positions()), gripper_joint=GRIPPER_POSITION)
        vel = dict(zip(COMMAND_JOINTS, (self.data.qvel[a] for a in self.vadr)), gripper_joint=0.0)
        eff = dict(zip(COMMAND_JOINTS, self.data.actuator_force), gripper_joint=0.0)
        msg = JointState(name=list(PUBLISHED_ORDER), position=[float(pos[n]) for n in PUBLISHED_ORDER],
                         velocity=[float(vel[n]) for n in PUBLISHED_ORDER],
                         effort=[float(eff[n]) for n in PUBLISHED_ORDER])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_js.publish(msg)
        self.published["joint_states"] += 1

    def publish_camera(self) -> None:
        self.step_to_now()
        stamp = self.get_clock().now().to_msg()
        self.renderer.update_scene(self.data, CAMERA)
        bgr = np.ascontiguousarray(self.renderer.render()[:, :, ::-1])
        msg = Image(height=bgr.shape[0], width=bgr.shape[1], encoding="bgr8", step=bgr.shape[1] * 3)
        msg.header.stamp, msg.header.frame_id = stamp, "camera_color_optical_frame"
        msg.data = bgr.tobytes()
        self.pub_img.publish(msg)
        self.published["camera"] += 1

    def save_log(self, path: Path) -> None:
        times = np.array([r[0] for r in self.received], float)
        commands = np.array([r[1] for r in self.received], float).reshape(-1, len(COMMAND_JOINTS))
        positions = np.array([r[2] for r in self.received], float).reshape(-1, len(COMMAND_JOINTS))
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, times=times, commands=commands, positions=positions, malformed=self.malformed,
                 out_of_limits=self.out_of_limits, low=self.low, high=self.high,
                 joints=np.array(COMMAND_JOINTS))
        os.replace(tmp, path)  # a reader never sees half a log


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", type=Path, help="write the received commands here (.npz) on exit")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--camera-hz", type=float, default=30.0)
    parser.add_argument("--joint-hz", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=0, help="start pose")
    args, ros_args = parser.parse_known_args(argv)
    rclpy.init(args=ros_args, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = StandInDriver(args.width, args.height, args.camera_hz, args.joint_hz, args.seed)
    stopping = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.append(True))
    try:
        while rclpy.ok() and not stopping:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        if args.log:
            node.save_log(args.log)
        print(f"[stand_in_driver] {len(node.received)} commands received, {node.malformed} malformed, "
              f"{node.out_of_limits} outside the limits; published {node.published}", flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
