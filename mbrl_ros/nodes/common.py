"""Small rclpy helpers shared by the nodes: parameters with descriptors, QoS, stamps, main()."""
from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any, Callable

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy_impl
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy, DurabilityPolicy, qos_profile_sensor_data

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}

SENSOR_QOS = qos_profile_sensor_data  # best effort, keep last 5: cameras and joint states
COMMAND_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
EVENT_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                       durability=DurabilityPolicy.VOLATILE)


def declare(node: Node, spec: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """Declare parameters {name: (default, description)} with typed descriptors; return their values.

    A list default declares a string/double/integer array by its first element's type.
    """
    values = {}
    for name, (default, description) in spec.items():
        if isinstance(default, list):
            kind = {str: ParameterType.PARAMETER_STRING_ARRAY, float: ParameterType.PARAMETER_DOUBLE_ARRAY,
                    int: ParameterType.PARAMETER_INTEGER_ARRAY}[type(default[0]) if default else str]
        else:
            kind = _TYPES[type(default)]
        descriptor = ParameterDescriptor(description=description, type=kind)
        if name == "use_sim_time":
            continue  # declared by rclpy itself
        node.declare_parameter(name, default, descriptor)
        values[name] = node.get_parameter(name).value
    return values


def publish_status(node: Node, publisher, name: str, level: int, message: str, values: dict) -> None:
    """One diagnostic_msgs/DiagnosticStatus named `name` on `publisher` (/diagnostics)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=level, name=name, hardware_id="mbrl_ros", message=message,
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


def run(node_factory: Callable[[], Node], spin: Callable[[Node], None] | None = None) -> int:
    """main() body for a node: init, build, spin until Ctrl-C / shutdown, clean up, exit code."""
    rclpy.init(args=sys.argv)
    node = None
    try:
        node = node_factory()
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
    return 0


def _fatal(node: Node | None, exc: Exception) -> int:
    """Report an exception that ended the node (on its logger once it exists); the exit code 1."""
    if node is not None:
        node.get_logger().fatal(f"{type(exc).__name__}: {exc}")
    else:
        print(f"fatal: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1
