"""controller_node: plans in the learned model at the control rate and publishes commands.

Subscribes to the camera (sensor-data QoS) and /joint_states (joints matched by
name), keeps the latest of each with its stamp, and on a timer runs
mbrl_ros.runtime.control.ControlLoop.tick(): belief update, planning (cem | mcts | mppi),
safety (stale/invalid inputs -> hold or zero, rate limit, clamp) and scaling to
the robot's limits. Publishes std_msgs/Float64MultiArray on /mbrl/commands
(remap onto a ros2_control forward_command_controller), diagnostics on
/diagnostics, and offers /mbrl/controller/enable (std_srvs/SetBool).

A managed (lifecycle) node. With `autostart` (the default) it configures and
activates itself at start-up, so `ros2 run mbrl_ros controller_node` controls
straight away; with autostart:=false it waits for a lifecycle manager or
`ros2 lifecycle set /controller configure|activate` (docs/nodes.md).
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, Int64
from std_srvs.srv import SetBool

from mbrl_ros.nodes.common import (COMMAND_QOS, EVENT_QOS, SENSOR_QOS, RCLError, accept_live_changes, declare,
                                   publish_status, run, stamp_to_sec)
from mbrl_ros.nodes.observation import image_to_rgb, joint_names_for, joints_from_state
from mbrl_ros.params import Param, table
from mbrl_ros.runtime.control import CONTROL_PARAMETERS, ControlConfig, ControlLoop, Observation, PreferredStore
from mbrl_ros.runtime.model_store import ModelStore
from mbrl_ros.runtime.safety import zero_command
from mbrl_ros.runtime.sessions import SessionConfig

ZERO_ACK_TIMEOUT_S = 0.5  # how long a shutdown waits for the robot to acknowledge the final zero command

# The control parameters (mbrl_ros.runtime.control) and the node's own.
PARAMETERS = table(
    CONTROL_PARAMETERS,
    Param("model_store", "string", "", "model bundle store to start from (a folder with CURRENT), e.g. the "
          "shipped models/reacher2d; required"),
    Param("watch_store", "string", "", "store the online trainer publishes to; its models replace "
          "model_store's once they exist"),
    Param("resize_images", "bool", False, "resize camera frames to the model's image size instead of refusing "
          "them", live=True),
    Param("providers", "string_array", ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                        "CPUExecutionProvider"], "ONNX Runtime execution providers by preference"),
    Param("model_poll_s", "double", 1.0, "how often to look for a newly published model", range=(0.05, 3600.0),
          unit="s"),
    Param("autostart", "bool", True, "configure and activate at start-up; false: wait unconfigured for a "
          "lifecycle manager (change_state)"),
)


def _transition(name: str):
    """Wrap a lifecycle callback so that an exception is logged before it becomes ERROR
    (rclpy turns it into ERROR without a word; on_error then releases everything)."""
    def wrap(callback):
        @functools.wraps(callback)
        def wrapped(self, state):
            try:
                return callback(self, state)
            except Exception as exc:  # noqa: BLE001 - report, never crash the node
                self.get_logger().error(f"{name} failed: {type(exc).__name__}: {exc}")
                return TransitionCallbackReturn.ERROR
        return wrapped
    return wrap


class ControllerNode(LifecycleNode):
    """The controller, a managed node.

    unconfigured --configure--> inactive: parameters read, model store loaded, subscriptions,
        the (lifecycle) command publisher, /mbrl/controller/enable and diagnostics created;
        no commands. A missing/unusable store or bad parameters: FAILURE, stays unconfigured.
    inactive --activate--> active: fresh belief and plan, control timer started, commands published.
    active --deactivate--> inactive: timer stopped, one zero command (zero_command) published, then none.
    inactive --cleanup--> unconfigured: everything from configure destroyed, model store released.
    any --shutdown--> finalized: as deactivate (when active) + cleanup. Ctrl-C, SIGTERM and a fatal
        error end the process through this transition too (close()), so the zero command goes out.
    Live parameters (mbrl_ros.runtime.control.CONTROL_PARAMETERS, resize_images) take effect when set.
    """

    def __init__(self):
        super().__init__("controller")
        self.store = self.loop = self.timer = self.pub_cmd = None
        self.active = False  # commands are being published
        self.finalized = False
        self.resize = False
        self._entities = []  # (destroy function, entity) created by configure, undone by _release
        settings = declare(self, PARAMETERS)
        ControlConfig.from_parameters(settings)  # bad values end the node here, whatever autostart says
        accept_live_changes(self, PARAMETERS, self._apply_live)
        if settings["autostart"]:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise RuntimeError("autostart: configure failed (see the error above)")
            if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                raise RuntimeError("autostart: activate failed (see the error above)")
        else:
            self.get_logger().info("unconfigured; waiting for configure (lifecycle change_state)")

    def _settings(self) -> dict:
        return {name: self.get_parameter(name).value for name in PARAMETERS}

    # ------------------------------------------------------------ parameters
    def _apply_live(self, changes: dict) -> None:
        """Live parameter changes (on the executor thread, between ticks); ValueError refuses them."""
        control = {name: value for name, value in changes.items() if name in CONTROL_PARAMETERS}
        if self.loop is None:  # unconfigured: check now, configure reads them
            ControlConfig.from_parameters({**self._settings(), **control})
        else:
            rate = self.loop.config.control_rate_hz
            config = self.loop.reconfigure(control)
            if config.control_rate_hz != rate and self.timer is not None:
                self._stop_control()
                self._start_control()
        if "resize_images" in changes:
            self.resize = bool(changes["resize_images"])

    # ------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure(self._settings())
        except Exception as exc:  # noqa: BLE001 - a bad store/parameter is a failed transition, not a crash
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured ({self._describe()}); inactive: no commands until activated")
        return super().on_configure(state)

    @_transition("activate")
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.loop.reset()  # fresh belief and plan; the rate limit starts from the zero the robot last got
        result = super().on_activate(state)  # enables the command publisher
        if result == TransitionCallbackReturn.SUCCESS:
            self._start_control()
            self.get_logger().info(f"active: controlling with {self._describe()}")
        return result

    @_transition("deactivate")
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_control()
        self._publish_zero()  # while the publisher is still enabled
        self.get_logger().info("inactive: published one zero command, control stopped")
        return super().on_deactivate(state)

    @_transition("cleanup")
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("cleaned up: model store released")
        return super().on_cleanup(state)

    @_transition("shutdown")
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.finalized = True
        if self.active:
            self._stop_control()
            self._publish_zero(before_release=True)
        self._release()
        self.get_logger().info(f"shut down from {state.label}")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error in a transition from {state.label}: stopping control, releasing the "
                                "model store; back to unconfigured")
        try:
            if self.active and self.pub_cmd is not None:
                self._stop_control()
                self._publish_zero(before_release=True)
        finally:
            self._release()
        return TransitionCallbackReturn.SUCCESS  # -> unconfigured

    def close(self) -> None:
        """The end of the process (Ctrl-C, SIGTERM, a fatal error; mbrl_ros.nodes.common.run): the
        shutdown transition, so an active controller's last command is the zero command."""
        if self.finalized:
            return
        try:
            self.trigger_shutdown()
        except RCLError as exc:  # no shutdown transition from here (the context is gone): release anyway
            self.get_logger().error(f"shutdown transition failed ({exc}); releasing without it")
            self._stop_control()
            self._release_store()

    # ------------------------------------------------------------ configure / release
    def _configure(self, settings: dict) -> None:
        """Load the model store, build the control loop and the node's ROS interfaces.

        Raises (ValueError, BundleError, ...) before creating any ROS entity when the
        parameters or the model store are unusable; nothing is left running then.
        """
        logging.basicConfig(level=logging.INFO)  # the runtime logs model swaps/refusals through `logging`
        if not settings["model_store"]:
            raise ValueError("parameter model_store is required (a folder with a CURRENT file)")
        config = ControlConfig.from_parameters(settings)
        sessions = SessionConfig(providers=tuple(settings["providers"]))
        fallback = ModelStore(Path(settings["model_store"]), session_config=sessions, required=True)
        preferred = ModelStore(Path(settings["watch_store"]), obs_spec=fallback.obs_spec,
                               action_spec=fallback.action_spec, session_config=sessions) \
            if settings["watch_store"] else None
        self.store = PreferredStore(fallback, preferred).start(float(settings["model_poll_s"]))
        self.loop = ControlLoop(self.store, config)
        spec = self.store.current.obs_spec
        self.joint_names, self.with_velocity = joint_names_for(spec)
        self.image_size = spec.image_shape[:2] if spec.has_image else None
        self.resize = bool(settings["resize_images"])
        self.obs = Observation()
        self.input_errors = 0
        self.last_result = None

        if spec.has_image:
            self._own(self.destroy_subscription,
                      self.create_subscription(Image, "/camera/image_raw", self._on_image, SENSOR_QOS))
        self._own(self.destroy_subscription,
                  self.create_subscription(JointState, "/joint_states", self._on_joints, SENSOR_QOS))
        self._own(self.destroy_subscription,
                  self.create_subscription(Int64, "/mbrl/episode", self._on_episode, EVENT_QOS))
        self.pub_cmd = self._own(self.destroy_lifecycle_publisher,
                                 self.create_lifecycle_publisher(Float64MultiArray, "/mbrl/commands", COMMAND_QOS))
        self.pub_diag = self._own(self.destroy_publisher, self.create_publisher(DiagnosticArray, "/diagnostics", 10))
        self._own(self.destroy_service, self.create_service(SetBool, "/mbrl/controller/enable", self._on_enable))
        self._own(self.destroy_timer, self.create_timer(1.0, self._publish_diagnostics))

    def _own(self, destroy, entity):
        self._entities.append((destroy, entity))
        return entity

    def _describe(self) -> str:
        config = self.loop.config
        return (f"{config.planner} at {config.control_rate_hz} Hz on model {self.store.current.version} "
                f"({self.store.diagnostics().get('providers')})")

    def _start_control(self) -> None:
        self.timer = self.create_timer(1.0 / self.loop.config.control_rate_hz, self._on_tick)
        self.active = True

    def _stop_control(self) -> None:
        """No tick runs after this returns (timer callbacks and transitions share one executor thread)."""
        self.active = False
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None

    def _publish_zero(self, before_release: bool = False) -> None:
        """The configured safe command: zero effort clamped into the limits (mbrl_ros.runtime.safety.zero_command).

        before_release: the publisher is destroyed right after (shutdown, error). A reliable writer
        destroyed before its subscribers acknowledged the sample can drop it, and the robot would
        keep the last planned command, so wait (bounded) for the acknowledgements first.
        """
        self.pub_cmd.publish(Float64MultiArray(data=zero_command(self.loop.action_spec).astype(float).tolist()))
        if before_release and not self.pub_cmd.wait_for_all_acked(Duration(seconds=ZERO_ACK_TIMEOUT_S)):
            self.get_logger().warning(f"the final zero command was not acknowledged by every subscriber within "
                                      f"{ZERO_ACK_TIMEOUT_S} s")

    def _release(self) -> None:
        """Undo `_configure`: stop control, destroy the ROS entities, stop and drop the model store."""
        self._stop_control()
        for destroy, entity in reversed(self._entities):
            destroy(entity)
        self._entities = []
        self.pub_cmd = None
        self.loop = None
        self.last_result = None
        self._release_store()

    def _release_store(self) -> None:
        if self.store is not None:
            self.store.stop()
            self.store = None

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
        if result.latency_s > 1.0 / self.loop.config.control_rate_hz:
            self.get_logger().warning(f"tick took {result.latency_s * 1e3:.0f} ms (> control period; model "
                                      f"{self.loop.belief.bundle.version})", throttle_duration_sec=1.0)

    def _publish_diagnostics(self) -> None:
        now = self._now()
        values = {**self.loop.stats(), **{f"ticks_{k}": v for k, v in self.loop.counts.items()},
                  **self.store.diagnostics(), "input_errors": self.input_errors,
                  "joint_age_s": f"{now - self.obs.joints_stamp:.3f}", "image_age_s": f"{now - self.obs.image_stamp:.3f}",
                  "planner": self.loop.config.planner, "max_delta": self.loop.config.max_delta,
                  "control_rate_hz": self.loop.config.control_rate_hz}
        if not self.active:  # configured, not activated: no commands
            values["mode"] = "inactive"
            level, message = DiagnosticStatus.OK, "inactive (lifecycle): no commands until activated"
        else:
            if self.last_result is not None:
                values["mode"] = self.last_result.mode
                values["transitions_per_tick"] = self.last_result.info.get("transitions", "")
            level = DiagnosticStatus.OK if self.last_result is None or self.last_result.mode == "plan" \
                else DiagnosticStatus.WARN
            message = self.last_result.reason if self.last_result and self.last_result.reason else "planning"
        publish_status(self, self.pub_diag, "mbrl_ros: controller", level, message, values)


def main() -> int:
    return run(ControllerNode, stop_in_context=True)


if __name__ == "__main__":
    raise SystemExit(main())
