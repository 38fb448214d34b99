"""Small rclpy helpers shared by the nodes: parameters from their tables, QoS, stamps, main()."""
from __future__ import annotations

import ctypes
import signal
import sys
import threading
from typing import Any, Callable, Mapping

import rclpy
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType,
                                SetParametersResult)
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy_impl
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy, DurabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions

from mbrl_ros.params import ARRAY_TYPES, Param

ROS_TYPES = {
    "bool": ParameterType.PARAMETER_BOOL,
    "integer": ParameterType.PARAMETER_INTEGER,
    "double": ParameterType.PARAMETER_DOUBLE,
    "string": ParameterType.PARAMETER_STRING,
    "string_array": ParameterType.PARAMETER_STRING_ARRAY,
    "double_array": ParameterType.PARAMETER_DOUBLE_ARRAY,
}

SENSOR_QOS = qos_profile_sensor_data  # best effort, keep last 5: cameras and joint states
COMMAND_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
EVENT_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                       durability=DurabilityPolicy.VOLATILE)


def descriptor_for(param: Param) -> ParameterDescriptor:
    """The rclpy descriptor of a parameter: type, description with unit and choices, range, and
    read_only unless it is live (so `ros2 param set` on it is refused with a reason)."""
    descriptor = ParameterDescriptor(name=param.name, type=ROS_TYPES[param.type], description=param.summary(),
                                     read_only=not param.live)
    if param.choices:
        descriptor.additional_constraints = "one of: " + " | ".join(param.choices)
    if param.range is not None and param.type == "double":
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(param.range[0]),
                                                              to_value=float(param.range[1]), step=0.0)]
    elif param.range is not None:
        descriptor.integer_range = [IntegerRange(from_value=int(param.range[0]), to_value=int(param.range[1]),
                                                 step=1)]
    return descriptor


def declare(node: Node, params: Mapping[str, Param]) -> dict[str, Any]:
    """Declare the parameters of a table with their descriptors; return their values.

    The values given at start-up (parameter file, -p) are checked against the table: a wrong type
    or a value outside the range is refused by rclpy, one outside the choices here (ValueError).
    """
    values = {}
    for name, param in params.items():
        # An empty list has no element type for rclpy to infer (it guesses BYTE_ARRAY and then refuses
        # [1.0, 2.0]): declare such a parameter by its type, unset until a file or -p gives it a value.
        default = param.default if param.default or param.type not in ARRAY_TYPES else \
            Parameter.Type.STRING_ARRAY if param.type == "string_array" else Parameter.Type.DOUBLE_ARRAY
        node.declare_parameter(name, default, descriptor_for(param))
        values[name] = parameter_value(node, param)
    return values


def parameter_value(node: Node, param: Param) -> Any:
    """The checked value of a declared parameter (arrays as lists; an unset array is its default)."""
    try:
        value = node.get_parameter(param.name).value
    except ParameterUninitializedException:
        return list(param.default)
    return param.check(list(value) if param.type in ARRAY_TYPES else value)


def accept_live_changes(node: Node, params: Mapping[str, Param], apply: Callable[[dict[str, Any]], None]) -> None:
    """Make the table's live parameters take effect when set on the running node (`ros2 param set`,
    the SetParameters service): `apply({name: value})` applies them, or raises ValueError to refuse
    them all with its message as the reason. rclpy refuses read-only ones, wrong types and values
    out of range before this callback runs; values outside the choices are refused here."""

    def on_set(parameters) -> SetParametersResult:
        changes = {}
        for parameter in parameters:
            param = params.get(parameter.name)
            if param is None:
                continue  # rclpy's own (use_sim_time): not ours to judge
            if not param.live:
                return SetParametersResult(successful=False, reason=f"{param.name} is read-only: set it at start-up")
            try:
                changes[param.name] = param.check(list(parameter.value) if param.type in ARRAY_TYPES
                                                  else parameter.value)
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        if changes:
            try:
                apply(changes)
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            node.get_logger().info("parameters set: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def status_name(node: Node, name: str) -> str:
    """The diagnostic status name `name` ("mbrl_ros: controller") as `node` reports it.

    /diagnostics stays absolute (the diagnostic_aggregator's convention: one topic for the whole
    graph), so a node in a namespace puts its robot in front of its name ("mbrl_ros: r1/controller")
    and two robots' statuses never overwrite each other. In the root namespace the name is unchanged.
    """
    namespace = node.get_namespace().strip("/")
    if not namespace:
        return name
    prefix, sep, rest = name.rpartition(": ")
    return f"{prefix}{sep}{namespace}/{rest}"


def publish_status(node: Node, publisher, name: str, level: int, message: str, values: dict) -> None:
    """One diagnostic_msgs/DiagnosticStatus named `name` (status_name: with the node's namespace) on
    `publisher` (/diagnostics)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=level, name=status_name(node, name), hardware_id="mbrl_ros", message=message,
                              values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(msg)


def stamp_to_sec(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_stamp(seconds: float):
    from builtin_interfaces.msg import Time

    sec, nanosec = divmod(int(round(seconds * 1e9)), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


RCLError = _rclpy_impl.RCLError  # rclpy's error type from the C layer (not exported elsewhere)


class BackgroundSpinner:
    """Runs a node's callbacks on a thread while the main thread does its own loop (`with` block).

    On exit the thread is stopped and *joined* before the executor is shut down, so nothing the
    thread may be waiting on is destroyed under it. Why: rclpy's Executor.shutdown() destroys its
    guard conditions without waiting for a spin in progress on another thread, and tearing those
    (or the node) down under a running rcl_wait killed the sim node with SIGSEGV on Ctrl-C.
    """

    def __init__(self, node: Node, poll_s: float = 0.1, join_timeout_s: float = 10.0):
        self.node, self.poll_s, self.join_timeout_s = node, poll_s, join_timeout_s
        self.executor = rclpy.executors.SingleThreadedExecutor(context=node.context)
        self.executor.add_node(node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="mbrl-spinner", daemon=True)

    def _spin(self) -> None:
        try:
            while not self._stop.is_set() and self.node.context.ok():
                self.executor.spin_once(timeout_sec=self.poll_s)
        except (rclpy.executors.ExternalShutdownException, rclpy.executors.ShutdownException, KeyboardInterrupt):
            pass  # Ctrl-C / SIGTERM shut the context down: a requested stop
        except RCLError:
            if self.node.context.ok():
                raise
            # the context went invalid while the wait set was built: also a requested stop

    def __enter__(self) -> "BackgroundSpinner":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.node.context.ok():
            self.executor.wake()  # end the wait now rather than after poll_s
        self._thread.join(self.join_timeout_s)
        if self._thread.is_alive():
            # A callback is stuck: leave the executor alone (destroying it under the thread can
            # crash the process) and let the daemon thread die with it.
            self.node.get_logger().error(f"callback thread did not stop within {self.join_timeout_s} s")
            return
        self.executor.shutdown(timeout_sec=0)


def run(node_factory: Callable[[], Node], spin: Callable[[Node], None] | None = None,
        stop_in_context: bool = False) -> int:
    """main() body for a node: init, build, spin until Ctrl-C / shutdown, clean up, exit code.

    stop_in_context: SIGINT and SIGTERM end the spin while the ROS context is still up, so the
    node's close() can still talk (the controller's final zero command). rclpy's own signal
    handlers shut the context down first, after which nothing can be published.
    """
    stop = threading.Event()
    previous = {}
    if stop_in_context:
        rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
        spin = spin or (lambda node: spin_until(node, stop))
    else:
        rclpy.init(args=sys.argv)
    node = None
    try:
        node = node_factory()
        if not stop.is_set():  # a signal during construction: stop right away
            (spin or rclpy.spin)(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    except RCLError as exc:
        # Ctrl-C / SIGINT makes rclpy's signal handler shut the context down; if that lands while
        # the executor builds its wait set, spin raises RCLError ("context is not valid") instead of
        # ExternalShutdownException. That is a requested shutdown, not a failure.
        if rclpy.ok():
            return _fatal(node, exc)
    except ctypes.ArgumentError as exc:
        # The same SIGINT landing while a ctypes call converts its arguments (the sim renders
        # through OpenGL bindings built on ctypes): ctypes turns the KeyboardInterrupt into
        # ArgumentError("argument N: KeyboardInterrupt: "), keeping only its name.
        if "KeyboardInterrupt" not in str(exc):
            return _fatal(node, exc)
    except Exception as exc:  # noqa: BLE001 - report and exit non-zero, never a silent death
        return _fatal(node, exc)
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def spin_until(node: Node, stop: threading.Event, poll_s: float = 0.1) -> None:
    """Spin `node` until `stop` is set (checked every `poll_s`) or its context ends."""
    executor = rclpy.executors.SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        while not stop.is_set() and node.context.ok():
            executor.spin_once(timeout_sec=poll_s)
    finally:
        executor.remove_node(node)
        executor.shutdown(timeout_sec=0)


def _fatal(node: Node | None, exc: Exception) -> int:
    """Report an exception that ended the node (on its logger once it exists); the exit code 1."""
    if node is not None:
        node.get_logger().fatal(f"{type(exc).__name__}: {exc}")
    else:
        print(f"fatal: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1
