"""Helpers for tests over real DDS between real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (PyPI ROS 2 wheels or a ROS 2 install) is needed")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from mbrl_ros.nodes.common import COMMAND_QOS, SENSOR_QOS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def diagnostic_statuses(messages: list, status_name: str) -> list[dict]:
    """Key/values of every status called `status_name` among received DiagnosticArrays, oldest first."""
    return [{kv.key: kv.value for kv in status.values}
            for msg in messages for status in msg.status if status.name == status_name]


def diagnostic_values(messages: list, status_name: str) -> dict:
    """Key/values of the newest status called `status_name` among received DiagnosticArrays ({} if none)."""
    statuses = diagnostic_statuses(messages, status_name)
    return statuses[-1] if statuses else {}


def node_process(module: str, *ros_args: str, params_file: Path | None = None, log_path: Path | None = None,
                 env: dict | None = None) -> subprocess.Popen:
    """Start `python -m module --ros-args ...` as a separate process (own process group)."""
    args = [sys.executable, "-m", module, "--ros-args"]
    if params_file:
        args += ["--params-file", str(params_file)]
    args += list(ros_args)
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    return subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **(env or {})})


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGINT like Ctrl-C, then kill; returns the exit code."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


@contextmanager
def ros_node(name: str = "mbrl_test"):
    """An rclpy context + node for the test process; torn down afterwards."""
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(name, context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.executor_for_test = executor
    try:
        yield node
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def spin_until(node, predicate, timeout: float, procs=()) -> bool:
    """Spin `node` until predicate() is true or timeout; fail fast if a watched process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        node.executor_for_test.spin_once(timeout_sec=0.05)
        if predicate():
            return True
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"process {proc.args[2]} exited with {proc.returncode}")
    return predicate()


def call_idempotent(node, client, request, timeout: float = 20.0, procs=(), resend_after: float = 2.0):
    """The reply to a service request that may safely be repeated, resending it when no reply came
    within `resend_after` s. One request can wait forever: a server that answers before its reply
    writer has matched this client's reply reader loses the reply (ROS 2's service-discovery race;
    rmw_fastrtps waits only 100 ms for that match, which a loaded machine can miss), and
    `service_is_ready` does not cover that half of the match."""
    assert spin_until(node, client.service_is_ready, timeout, procs), f"{client.srv_name} not offered"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        future = client.call_async(request)
        if spin_until(node, future.done, min(resend_after, deadline - time.monotonic()), procs):
            return future.result()
        client.remove_pending_request(future)
    raise AssertionError(f"{client.srv_name}: no reply in {timeout} s")


def spin_for(node, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        node.executor_for_test.spin_once(timeout_sec=0.02)


class Robot:
    """Plays the robot: publishes camera + joints from the env, records commands and diagnostics."""

    def __init__(self, node, env, command_topic: str = "/mbrl/commands"):
        self.node, self.u = node, env.unwrapped
        self.commands, self.diags = [], []
        self.pub_img = node.create_publisher(Image, "/camera/image_raw", SENSOR_QOS)
        self.pub_js = node.create_publisher(JointState, "/joint_states", SENSOR_QOS)
        node.create_subscription(Float64MultiArray, command_topic, lambda m: self.commands.append(
            (time.monotonic(), np.array(m.data))), COMMAND_QOS)
        node.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 10)

    def stamp(self, msg):
        msg.header.stamp = self.node.get_clock().now().to_msg()
        return msg

    def publish(self, camera=True, image=None, joints=None, names=None, encoding="rgb8"):
        vec = self.u.joint_vector() if joints is None else joints
        n = len(self.u.joint_names)
        js = JointState(name=list(names or self.u.joint_names), position=[float(x) for x in vec[:n]],
                        velocity=[float(x) for x in vec[n:]])
        self.pub_js.publish(self.stamp(js))
        if camera:
            img = self.u.render_camera() if image is None else image
            msg = Image(height=img.shape[0], width=img.shape[1], encoding=encoding, step=img.shape[1] * 3)
            msg.data = img.tobytes()
            self.pub_img.publish(self.stamp(msg))

    def run(self, seconds, **kwargs):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.publish(**kwargs)
            spin_for(self.node, 0.03)

    def diag(self):
        return diagnostic_values(self.diags, "mbrl_ros: controller")


class ParameterService:
    """`ros2 param get/set/describe` for one node, over its standard parameter services."""

    def __init__(self, node, name: str, procs=()):
        from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters

        self.node, self.procs = node, procs
        self.get_client = node.create_client(GetParameters, f"/{name}/get_parameters")
        self.set_client = node.create_client(SetParameters, f"/{name}/set_parameters")
        self.describe_client = node.create_client(DescribeParameters, f"/{name}/describe_parameters")

    def _call(self, client, **fields):
        return call_idempotent(self.node, client, client.srv_type.Request(**fields), procs=self.procs)

    def get(self, *names: str) -> dict:
        from rclpy.parameter import parameter_value_to_python

        reply = self._call(self.get_client, names=list(names))
        return {name: parameter_value_to_python(value) for name, value in zip(names, reply.values)}

    def set(self, name: str, value):
        """The SetParametersResult (successful, reason) of setting one parameter."""
        from rclpy.parameter import Parameter

        return self._call(self.set_client, parameters=[Parameter(name, value=value).to_parameter_msg()]).results[0]

    def describe(self, name: str):
        return self._call(self.describe_client, names=[name]).descriptors[0]


def interrupt(proc: subprocess.Popen, node, sig=signal.SIGINT, timeout: float = 30.0, while_waiting=None) -> int:
    """Signal a process group and wait for its exit while this test keeps spinning (and feeding
    the robot with `while_waiting()`), so messages sent on the way out are received."""
    os.killpg(proc.pid, sig)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        (while_waiting or (lambda: spin_for(node, 0.05)))()
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    spin_for(node, 0.3)  # whatever was in flight arrives
    return proc.returncode
