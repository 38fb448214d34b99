"""controller_node: plans in the learned model at the control rate and publishes commands.

Subscribes to the camera (sensor-data QoS) and /joint_states (joints matched by
name), keeps the latest of each with its stamp, and on a timer runs
mbrl_ros.runtime.control.ControlLoop.tick(): belief update, planning (cem | mcts | mppi),
safety (stale/invalid inputs -> hold or zero, rate limit, clamp) and scaling to
the robot's limits (parameters command_joints/command_min/command_max: required, never
a model's). Inputs stamped in the future beyond max_future_stamp_s are refused, and a
wall-clock watchdog sends the safe command when the node clock (/clock) stops. Publishes std_msgs/Float64MultiArray on /mbrl/commands
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
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, Int64
from std_srvs.srv import SetBool

from mbrl_ros.nodes.common import (COMMAND_QOS, EVENT_QOS, SENSOR_QOS, RCLError, accept_live_changes, declare,
                                   parameter_value, publish_status, run, stamp_to_sec)
from mbrl_ros.nodes.observation import image_to_rgb, joint_names_for, joints_from_state, replaces_held
from mbrl_ros.params import Param, table
from mbrl_ros.runtime.control import CONTROL_PARAMETERS, ControlConfig, ControlLoop, Observation, PreferredStore
from mbrl_ros.runtime.model_store import ModelStore
from mbrl_ros.runtime.safety import robot_limits
from mbrl_ros.runtime.goal_task import GoalStore, load_goal_frame
from mbrl_ros.runtime.sessions import SessionConfig

SAFE_ACK_TIMEOUT_S = 0.5  # how long a shutdown waits for the robot to acknowledge the final safe command

# The control parameters (mbrl_ros.runtime.control) and the node's own.
PARAMETERS = table(
    CONTROL_PARAMETERS,
    Param("model_store", "string", "", "model bundle store to start from (a folder with CURRENT), e.g. the "
          "shipped models/reacher2d; required"),
    Param("watch_store", "string", "", "store the online trainer publishes to; its models replace "
          "model_store's once they exist"),
    Param("goal_image", "string", "", "a goal frame (.npz with image and joints, runtime/goal_task.py): plan "
          "toward looking like it instead of with the model's reward head; empty: no goal"),
    Param("resize_images", "bool", False, "resize camera frames to the model's image size instead of refusing "
          "them", live=True),
    Param("providers", "string_array", ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                        "CPUExecutionProvider"], "ONNX Runtime execution providers by preference"),
    Param("model_poll_s", "double", 1.0, "how often to look for a newly published model", range=(0.05, 3600.0),
          unit="s"),
    Param("autostart", "bool", True, "configure and activate at start-up; false: wait unconfigured for a "
          "lifecycle manager (change_state)"),
    # The robot's command limits: required, never taken from a model bundle (a bundle whose
    # action_spec differs is refused). In simulation the sim graph passes the MJCF's.
    Param("command_joints", "string_array", [], "the joint (actuator) each command entry drives, in command "
          "order; a model's action_spec names must be the same; required"),
    Param("command_min", "double_array", [], "lowest command per joint (robot units); required", unit="robot units"),
    Param("command_max", "double_array", [], "highest command per joint (robot units); required",
          unit="robot units"),
    Param("max_future_stamp_s", "double", 0.5, "camera frames / joint states stamped further than this ahead "
          "of the node clock are refused and counted (a future stamp would never go stale)",
          range=(0.0, 60.0), unit="s", live=True),
)

# How often the wall-clock watchdog looks, as a share of input_timeout_s, and after what share of
# it without a control tick (and a node clock that does not advance) it sends the safe command:
# 1/2 + 1/4 leaves the first safe command inside input_timeout_s of wall time.
WATCHDOG_CHECK_SHARE = 0.25
WATCHDOG_STALL_SHARE = 0.5


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
        no commands. A model_store that is not a folder, missing robot command limits or bad
        parameters: FAILURE, stays unconfigured. A current bundle that is refused (e.g. its
        action_spec is not the robot's limits) or absent: configured with no model, and active
        it sends the safe command (on_stale) until a good one is published.
    inactive --activate--> active: fresh belief and plan, control timer started, commands published.
    active --deactivate--> inactive: timer stopped, one safe command (on_stale: zero, or hold the last) published,
        then none.
    inactive --cleanup--> unconfigured: everything from configure destroyed, model store released.
    any --shutdown--> finalized: as deactivate (when active) + cleanup. Ctrl-C, SIGTERM and a fatal
        error end the process through this transition too (close()), so the safe command goes out.
    Live parameters (mbrl_ros.runtime.control.CONTROL_PARAMETERS, resize_images) take effect when set.
    """

    def __init__(self):
        super().__init__("controller")
        self.store = self.loop = self.timer = self.watchdog = self.pub_cmd = None
        self.max_future_s = 0.5
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
        return {name: parameter_value(self, param) for name, param in PARAMETERS.items()}

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
        if "max_future_stamp_s" in changes:
            self.max_future_s = float(changes["max_future_stamp_s"])
        if "input_timeout_s" in changes and self.watchdog is not None:
            self._stop_watchdog()
            self._start_watchdog()

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
        self._publish_safe()  # while the publisher is still enabled
        self.get_logger().info("inactive: published one safe command, control stopped")
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
            self._publish_safe(before_release=True)
        self._release()
        self.get_logger().info(f"shut down from {state.label}")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error in a transition from {state.label}: stopping control, releasing the "
                                "model store; back to unconfigured")
        try:
            if self.active and self.pub_cmd is not None:
                self._stop_control()
                self._publish_safe(before_release=True)
        finally:
            self._release()
        return TransitionCallbackReturn.SUCCESS  # -> unconfigured

    def close(self) -> None:
        """The end of the process (Ctrl-C, SIGTERM, a fatal error; mbrl_ros.nodes.common.run): the
        shutdown transition, so an active controller's last command is the safe command."""
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
        limits = robot_limits(settings["command_joints"], settings["command_min"], settings["command_max"],
                              "parameters command_joints / command_min / command_max (the robot's command limits)")
        if not settings["model_store"]:
            raise ValueError("parameter model_store is required (a folder with a CURRENT file)")
        if not Path(settings["model_store"]).is_dir():
            raise ValueError(f"model_store {settings['model_store']} is not a folder")
        config = ControlConfig.from_parameters(settings)
        sessions = SessionConfig(providers=tuple(settings["providers"]))
        # A bundle that does not fit the robot's limits is refused by the stores; a refused (or
        # missing) current bundle at start-up means no model: the safe command until a good one.
        goal = load_goal_frame(settings["goal_image"]) if settings["goal_image"] else None
        fallback = ModelStore(Path(settings["model_store"]), action_spec=limits, session_config=sessions)
        preferred = ModelStore(Path(settings["watch_store"]), obs_spec=fallback.obs_spec, action_spec=limits,
                               session_config=sessions) if settings["watch_store"] else None
        self.store = PreferredStore(fallback, preferred).start(float(settings["model_poll_s"]))
        if goal is not None:  # a task given at run time (docs/goal_images.md)
            self.store = GoalStore(self.store, goal)
        self.loop = ControlLoop(self.store, config, limits)
        self._input_spec = None  # the obs spec the input conversion below is set up for
        self.joint_names, self.with_velocity, self.image_size = [], False, None
        self.resize = bool(settings["resize_images"])
        self.max_future_s = float(settings["max_future_stamp_s"])
        self.obs = Observation()
        self.input_errors = 0
        self.future_stamps = 0
        self.old_stamps = 0
        self.episode_resets = 0
        self.last_result = None
        self._last_tick_wall = self._last_command_wall = self._clock_moved_wall = time.monotonic()
        self._clock_seen = self._now()
        if self.store.current is None:
            refusal = self.store.refusal()
            self.get_logger().error(
                f"no usable model in {settings['model_store']} "
                f"({refusal.reason if refusal else 'nothing published yet'}); sending the safe command "
                f"(on_stale: {config.on_stale}) until a good one is published")

        # The camera is subscribed whatever the model: without one yet, nothing says it needs none.
        self._own(self.destroy_subscription,
                  self.create_subscription(Image, "camera/image_raw", self._on_image, SENSOR_QOS))
        self._own(self.destroy_subscription,
                  self.create_subscription(JointState, "joint_states", self._on_joints, SENSOR_QOS))
        self._own(self.destroy_subscription,
                  self.create_subscription(Int64, "mbrl/episode", self._on_episode, EVENT_QOS))
        self.pub_cmd = self._own(self.destroy_lifecycle_publisher,
                                 self.create_lifecycle_publisher(Float64MultiArray, "mbrl/commands", COMMAND_QOS))
        self.pub_diag = self._own(self.destroy_publisher, self.create_publisher(DiagnosticArray, "/diagnostics", 10))
        self._own(self.destroy_service, self.create_service(SetBool, "mbrl/controller/enable", self._on_enable))
        # On the wall clock: /diagnostics must keep telling the truth when /clock stops.
        self._own(self.destroy_timer, self.create_timer(1.0, self._publish_diagnostics,
                                                        clock=Clock(clock_type=ClockType.STEADY_TIME)))

    def _own(self, destroy, entity):
        self._entities.append((destroy, entity))
        return entity

    def _describe(self) -> str:
        config = self.loop.config
        bundle = self.store.current
        return (f"{config.planner} at {config.control_rate_hz} Hz on model {bundle.version if bundle else 'none'} "
                f"({self.store.diagnostics().get('providers', 'no model')})")

    def _start_control(self) -> None:
        self.timer = self.create_timer(1.0 / self.loop.config.control_rate_hz, self._on_tick)
        self._last_tick_wall = self._last_command_wall = self._clock_moved_wall = time.monotonic()
        self._clock_seen = self._now()
        self._start_watchdog()
        self.active = True

    def _stop_control(self) -> None:
        """No tick runs after this returns (timer callbacks and transitions share one executor thread)."""
        self.active = False
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None
        self._stop_watchdog()

    def _start_watchdog(self) -> None:
        """A timer on the steady (wall) clock: under use_sim_time the control timer runs on /clock
        and stops with it (sim paused, killed, stopped); this one does not (_on_watchdog)."""
        config = self.loop.config  # looks often enough to stand in for the timer at the control rate
        period = min(WATCHDOG_CHECK_SHARE * config.input_timeout_s, 1.0 / config.control_rate_hz)
        self.watchdog = self.create_timer(period, self._on_watchdog, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _stop_watchdog(self) -> None:
        if self.watchdog is not None:
            self.destroy_timer(self.watchdog)
            self.watchdog = None

    def _publish_safe(self, before_release: bool = False) -> None:
        """The configured safe command (on_stale): zero effort clamped into the limits, or the last command
        held (ControlLoop.safe_command); never a jump a position-controlled arm would make to 0.

        before_release: the publisher is destroyed right after (shutdown, error). A reliable writer
        destroyed before its subscribers acknowledged the sample can drop it, and the robot would
        keep the last planned command, so wait (bounded) for the acknowledgements first.
        """
        self.pub_cmd.publish(Float64MultiArray(data=self.loop.safe_command().astype(float).tolist()))
        if before_release and not self.pub_cmd.wait_for_all_acked(Duration(seconds=SAFE_ACK_TIMEOUT_S)):
            self.get_logger().warning(f"the final safe command was not acknowledged by every subscriber within "
                                      f"{SAFE_ACK_TIMEOUT_S} s")

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
    def _stamp(self, header, what: str):
        """The message's stamp on the node clock, None when it lies in the future beyond
        max_future_stamp_s (refused and counted: a frame stamped ahead never goes stale, and stale
        detection would be off until the clock caught up). A stamp slightly ahead (clock skew,
        within the tolerance) counts as received now, so its age starts now."""
        now = self._now()
        stamped = stamp_to_sec(header.stamp)
        if stamped <= 0:
            return now  # drivers that leave stamps empty: receipt time
        if now <= 0:
            return None  # use_sim_time before the first /clock: no clock to judge it by (and no ticks yet)
        if stamped - now > self.max_future_s:
            self.future_stamps += 1
            self.get_logger().warning(f"{what} refused: stamped {stamped - now:.3f} s in the future (more than "
                                      f"max_future_stamp_s {self.max_future_s} s)", throttle_duration_sec=2.0)
            return None
        return min(stamped, now)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _inputs_for_model(self):
        """The running model's obs spec (None without a model), with the conversion set up for it:
        the joints to look up by name, whether velocities come too, the image size."""
        bundle = self.store.current
        spec = bundle.obs_spec if bundle is not None else None
        if spec != self._input_spec:
            self._input_spec = spec
            self.joint_names, self.with_velocity = joint_names_for(spec) if spec else ([], False)
            self.image_size = spec.image_shape[:2] if spec is not None and spec.has_image else None
        return spec

    def _newer(self, held_stamp: float, stamp: float, what: str) -> bool:
        """Whether a message stamped `stamp` replaces the held one (observation.replaces_held); an older
        one that does not is refused and counted."""
        if replaces_held(held_stamp, stamp, self._now(), self.loop.config.input_timeout_s):
            return True
        self.old_stamps += 1
        self.get_logger().warning(f"{what} refused: stamped {held_stamp - stamp:.3f} s before the one held",
                                  throttle_duration_sec=2.0)
        return False

    def _on_image(self, msg: Image) -> None:
        spec = self._inputs_for_model()
        if spec is None or not spec.has_image:
            return  # no model yet, or one that takes no camera
        try:
            image = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data, self.image_size,
                                 self.resize)
        except ValueError as exc:
            self.input_errors += 1
            self.get_logger().warning(f"camera frame refused: {exc}", throttle_duration_sec=2.0)
            return
        stamp = self._stamp(msg.header, "camera frame")
        if stamp is not None and self._newer(self.obs.image_stamp, stamp, "camera frame"):
            self.obs.image, self.obs.image_stamp = image, stamp

    def _on_joints(self, msg: JointState) -> None:
        if self._inputs_for_model() is None:
            return
        try:
            joints = joints_from_state(self.joint_names, self.with_velocity, msg.name, msg.position, msg.velocity)
        except ValueError as exc:
            self.input_errors += 1
            self.get_logger().warning(f"joint state refused: {exc}", throttle_duration_sec=2.0)
            return
        stamp = self._stamp(msg.header, "joint state")
        if stamp is not None and self._newer(self.obs.joints_stamp, stamp, "joint state"):
            self.obs.joints, self.obs.joints_stamp = joints, stamp

    def _on_episode(self, msg: Int64) -> None:
        self.loop.reset()
        self.obs = Observation()  # frames from the old episode must not seed the new belief
        self.episode_resets += 1
        # Throttled: a publisher flooding the topic must not flood the log too (each reset is counted).
        self.get_logger().info(f"episode {msg.data}: belief and plan reset", throttle_duration_sec=1.0)

    def _on_enable(self, request, response):
        self.loop.enabled = bool(request.data)
        response.success = True
        response.message = "enabled" if request.data else "disabled: publishing the safe command (on_stale)"
        return response

    # ------------------------------------------------------------------ tick
    def _on_tick(self) -> None:
        self._last_tick_wall = time.monotonic()
        self._publish(self.loop.tick(self._now(), self.obs))

    def _on_watchdog(self) -> None:
        """Wall-clock watchdog: when neither the control timer ran nor the node clock moved for
        WATCHDOG_STALL_SHARE of input_timeout_s of wall time (/clock stopped: sim paused, stopped or
        dead), send the safe command (on_stale) at the control rate until ticks resume. A clock
        that moves (a sim below real time, /clock still coming) is left to the control timer: its
        ticks follow sim time."""
        if not self.active or self.loop is None:
            return
        wall, config, clock = time.monotonic(), self.loop.config, self._now()
        if clock != self._clock_seen:  # the clock moved since the last look (the last /clock messages
            self._clock_seen, self._clock_moved_wall = clock, wall  # may land after the last tick)
        stall = WATCHDOG_STALL_SHARE * config.input_timeout_s
        since_tick = wall - self._last_tick_wall
        if since_tick < stall or wall - self._clock_moved_wall < stall:
            return
        if wall - self._last_command_wall < 0.9 / config.control_rate_hz:  # 0.9: timer jitter
            return
        self._publish(self.loop.safe_tick("clock_stalled", f"no control tick for {since_tick:.2f} s of wall time "
                                          f"and the node clock stopped (/clock silent?): safe command "
                                          f"({config.on_stale})"))

    def _publish(self, result) -> None:
        self.pub_cmd.publish(Float64MultiArray(data=result.command.astype(float).tolist()))
        self._last_command_wall = time.monotonic()
        self.last_result = result
        if result.mode != "plan":
            self.get_logger().warning(f"{result.mode}: {result.reason}", throttle_duration_sec=2.0)
        if result.latency_s > 1.0 / self.loop.config.control_rate_hz:
            version = self.loop.belief.bundle.version if self.loop.belief is not None else "none"
            self.get_logger().warning(f"tick took {result.latency_s * 1e3:.0f} ms (> control period; model "
                                      f"{version})", throttle_duration_sec=1.0)

    def _publish_diagnostics(self) -> None:
        now = self._now()
        counts = {"stale": 0, "clock_stalled": 0, "no_model": 0, **self.loop.counts}
        values = {**self.loop.stats(), **{f"ticks_{k}": v for k, v in counts.items()},
                  **self.store.diagnostics(), "input_errors": self.input_errors, "future_stamps": self.future_stamps, "old_stamps": self.old_stamps,
                  "episode_resets": self.episode_resets,
                  "joint_age_s": f"{now - self.obs.joints_stamp:.3f}", "image_age_s": f"{now - self.obs.image_stamp:.3f}",
                  "planner": self.loop.config.planner, "max_delta": self.loop.config.max_delta,
                  "control_rate_hz": self.loop.config.control_rate_hz,
                  "command_limits": ", ".join(f"{n} [{lo:g}, {hi:g}]" for n, lo, hi in zip(
                      self.loop.action_spec.names, self.loop.action_spec.low, self.loop.action_spec.high))}
        bundle = self.store.current  # the true running version: none when the loop would not run it
        values["model_version"] = bundle.version if self.loop.runs(bundle) else "none"
        refusal = self.store.refusal()
        values["refusing_version"] = refusal.version if refusal else ""
        values["refusal_reason"] = refusal.reason if refusal else ""
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
        if refusal is not None:  # the published model is not the one running: never an OK
            level = max(level, DiagnosticStatus.WARN)
            message = (f"refusing model {refusal.version}: {refusal.reason}; running "
                       f"{values['model_version']}; {message}")
        publish_status(self, self.pub_diag, "mbrl_ros: controller", level, message, values)


def main() -> int:
    return run(ControllerNode, stop_in_context=True)


if __name__ == "__main__":
    raise SystemExit(main())
