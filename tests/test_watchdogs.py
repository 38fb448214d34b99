"""Watchdogs on the wall clock: a frame stamped in the future, and a /clock that stops.

Real processes over DDS: the controller node, fed by this test process or by the real MuJoCo sim
node. In both cases the inputs stop, and the safe command (on_stale: zero) must go out within
input_timeout_s of wall time; stopping the controller still sends the final safe command.
"""
import json
import os
import re
import signal
import time

import numpy as np
import pytest

from tests.bundles import publish_tiny
from tests.limits_helpers import limit_args

pytestmark = pytest.mark.ros

from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from mbrl_ros.nodes.common import COMMAND_QOS, sec_to_stamp  # noqa: E402
from mbrl_ros.runtime.safety import zero_command  # noqa: E402
from tests.ros_helpers import (ROOT, Robot, diagnostic_values, interrupt, node_process, ros_node, spin_for,  # noqa: E402
                               spin_until, stop)

FAST_CEM = json.dumps({"num_samples": 32, "num_elites": 4, "iterations": 2})
TRANSPORT_SLACK_S = 0.1  # DDS delivery and this test's own spin granularity


@pytest.fixture(scope="module")
def store(tmp_path_factory, reacher_env):
    root = tmp_path_factory.mktemp("watchdog_store")
    publish_tiny(root, reacher_env, fused_horizon=5)
    return root


def first_zero_after(commands, since):
    """Arrival time of the first all-zero command received after `since` (None if none)."""
    return next((t for t, c in commands if t > since and np.allclose(c, 0.0)), None)


def test_a_frame_stamped_in_the_future_is_refused_and_stale_detection_keeps_working(store, tmp_path, reacher_env):
    timeout = 0.3
    log = tmp_path / "controller.log"
    proc = node_process("mbrl_ros.nodes.controller_node", "-p", f"model_store:={store}", "-p", "use_sim_time:=false",
                        "-p", f"input_timeout_s:={timeout}", "-p", "on_stale:=zero", "-p", f"planner_config:='{FAST_CEM}'",
                        "-p", "max_future_stamp_s:=0.5", *limit_args(reacher_env.unwrapped.action_spec),
                        "-r", "mbrl/commands:=/future/commands",
                        params_file=ROOT / "config" / "ros" / "sim.yaml", log_path=log)
    try:
        with ros_node() as node:
            robot = Robot(node, reacher_env, command_topic="/future/commands")
            assert spin_until(node, lambda: robot.pub_js.get_subscription_count() > 0, 30, [proc])
            robot.run(1.5)
            assert spin_until(node, lambda: robot.diag().get("mode") == "plan", 15, [proc]), robot.diag()

            # one camera frame and one joint state stamped +1000 s, then silence
            future = sec_to_stamp(node.get_clock().now().nanoseconds * 1e-9 + 1000.0)
            u = reacher_env.unwrapped
            img = u.render_camera()
            frame = Image(height=img.shape[0], width=img.shape[1], encoding="rgb8", step=img.shape[1] * 3)
            frame.data = img.tobytes()
            frame.header.stamp = future
            vec, n = u.joint_vector(), len(u.joint_names)
            joints = JointState(name=list(u.joint_names), position=[float(x) for x in vec[:n]],
                                velocity=[float(x) for x in vec[n:]])
            joints.header.stamp = future
            robot.pub_img.publish(frame)
            robot.pub_js.publish(joints)
            silent_since = time.monotonic()
            spin_for(node, 2.5)

            zero_at = first_zero_after(robot.commands, silent_since)
            assert zero_at is not None, "the controller kept planning on the frozen frame"
            print(f"first safe command {zero_at - silent_since:.3f} s after the future-stamped frame (input_timeout_s "
                  f"{timeout})")
            assert zero_at - silent_since <= timeout + TRANSPORT_SLACK_S + 0.05, zero_at - silent_since
            late = [c for t, c in robot.commands if t > zero_at]
            assert len(late) > 20 and all(np.allclose(c, 0.0) for c in late)
            assert spin_until(node, lambda: int(robot.diag().get("future_stamps", 0)) >= 2, 5, [proc]), robot.diag()
            assert robot.diag().get("mode") == "stale" and int(robot.diag()["ticks_stale"]) > 10
            assert re.search(r"refused: stamped 99\d\.\d+ s in the future", log.read_text())

            # good inputs again: it plans again (nothing stuck on the future stamp)
            robot.run(1.5)
            assert spin_until(node, lambda: robot.diag().get("mode") == "plan", 10, [proc]), robot.diag()
    finally:
        stop(proc)


def test_when_the_clock_stops_the_safe_command_goes_out_on_wall_time(store, tmp_path, reacher_env):
    """The real sim graph (sim + controller on sim time). SIGSTOP of the sim process stops /clock, the
    camera and the joint states: the controller's sim-time timer stops with them, and the wall-clock
    watchdog must send the safe command within input_timeout_s; SIGCONT and planning resumes."""
    from mbrl_ros.bringup.graph import sim_graph

    timeout = 0.5
    nodes = {n.name: n for n in sim_graph({"model_store": str(store), "record": "false"})}
    nodes["controller"].parameters.update({"planner_config": FAST_CEM, "input_timeout_s": timeout,
                                           "on_stale": "zero"})
    for spec in nodes.values():
        spec.remappings.append(("/mbrl/commands", "/clockstop/commands"))
    procs = {name: node_process(spec.module, *spec.ros_args()[1:], log_path=tmp_path / f"{name}.log")
             for name, spec in nodes.items()}
    sim, controller = procs["sim"], procs["controller"]
    commands, diags = [], []
    try:
        with ros_node() as node:
            from diagnostic_msgs.msg import DiagnosticArray

            node.create_subscription(Float64MultiArray, "/clockstop/commands",
                                     lambda m: commands.append((time.monotonic(), np.array(m.data))), COMMAND_QOS)
            node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
            diag = lambda: diagnostic_values(diags, "mbrl_ros: controller")  # noqa: E731
            plans = lambda: sum(np.abs(c).max() > 1e-6 for _, c in commands[-20:]) >= 5  # noqa: E731
            assert spin_until(node, plans, 90, list(procs.values())), (tmp_path / "controller.log").read_text()[-3000:]

            os.killpg(sim.pid, signal.SIGSTOP)  # /clock stops, and every input with it
            stopped = time.monotonic()
            spin_for(node, 3.0)
            zero_at = first_zero_after(commands, stopped)
            assert zero_at is not None, "no safe command after the clock stopped"
            print(f"first safe command {zero_at - stopped:.3f} s of wall time after SIGSTOP (input_timeout_s "
                  f"{timeout})")
            assert zero_at - stopped <= timeout + TRANSPORT_SLACK_S, \
                [(round(t - stopped, 3), bool(np.allclose(c, 0.0))) for t, c in commands if t > stopped - 0.2][:30]
            late = [c for t, c in commands if t > zero_at]
            # the watchdog keeps commanding (at the control rate, 20 Hz, on a machine with CPU to spare)
            # while the clock stays stopped
            assert len(late) >= 10 and all(np.allclose(c, 0.0) for c in late), len(late)
            assert spin_until(node, lambda: diag().get("mode") == "clock_stalled", 5), diag()
            assert int(diag()["ticks_clock_stalled"]) >= 10

            os.killpg(sim.pid, signal.SIGCONT)
            resumed = time.monotonic()
            assert spin_until(node, lambda: sum(np.abs(c).max() > 1e-6 for t, c in commands if t > resumed) >= 5,
                              30, list(procs.values())), "planning resumes with the clock"

            code = interrupt(controller, node)
            assert np.allclose(commands[-1][1], zero_command(reacher_env.unwrapped.action_spec)), commands[-3:]
        assert code == 0, (tmp_path / "controller.log").read_text()[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
            stop(proc)


def test_messages_stamped_before_the_fresh_ones_held_cannot_stop_the_robot(store, tmp_path, reacher_env):
    """A second publisher floods the camera and joint topics with copies stamped 1 s ago (older than
    input_timeout_s): they are refused (`old_stamps`) instead of replacing the fresh inputs held, so
    the controller keeps planning instead of falling to the safe command on demand."""
    timeout = 0.3
    log = tmp_path / "controller.log"
    proc = node_process("mbrl_ros.nodes.controller_node", "-p", f"model_store:={store}", "-p", "use_sim_time:=false",
                        "-p", f"input_timeout_s:={timeout}", "-p", "on_stale:=zero", "-p", f"planner_config:='{FAST_CEM}'",
                        *limit_args(reacher_env.unwrapped.action_spec), "-r", "mbrl/commands:=/oldstamps/commands",
                        params_file=ROOT / "config" / "ros" / "sim.yaml", log_path=log)
    try:
        with ros_node() as node:
            robot = Robot(node, reacher_env, command_topic="/oldstamps/commands")
            old_img = node.create_publisher(Image, "/camera/image_raw", 10)
            old_js = node.create_publisher(JointState, "/joint_states", 10)
            assert spin_until(node, lambda: robot.pub_js.get_subscription_count() > 0, 30, [proc])
            robot.run(1.5)
            assert spin_until(node, lambda: robot.diag().get("mode") == "plan", 15, [proc]), robot.diag()
            stale_before = int(robot.diag()["ticks_stale"])

            u = reacher_env.unwrapped
            img = u.render_camera()
            frame = Image(height=img.shape[0], width=img.shape[1], encoding="rgb8", step=img.shape[1] * 3)
            frame.data = img.tobytes()
            vec, n = u.joint_vector(), len(u.joint_names)
            joints = JointState(name=list(u.joint_names), position=[float(x) for x in vec[:n]],
                                velocity=[float(x) for x in vec[n:]])
            flood_start = time.monotonic()
            while time.monotonic() - flood_start < 3.0:
                robot.publish()  # fresh inputs, stamped now
                spin_for(node, 0.03)
                old = sec_to_stamp(node.get_clock().now().nanoseconds * 1e-9 - 1.0)
                for _ in range(3):  # then the old copies, after them on the same topics, held half the time
                    frame.header.stamp = joints.header.stamp = old
                    old_img.publish(frame)
                    old_js.publish(joints)
                spin_for(node, 0.03)
            robot.run(0.5)
            flood = [c for t, c in robot.commands if t > flood_start + 0.5]
            assert len(flood) > 30 and sum(np.allclose(c, 0.0) for c in flood) <= 2, \
                ("the old copies made the fresh inputs look stale", sum(np.allclose(c, 0.0) for c in flood), len(flood))
            diag = robot.diag()
            assert int(diag["old_stamps"]) > 50 and diag.get("mode") == "plan", diag
            assert int(diag["ticks_stale"]) - stale_before <= 2, diag
            assert re.search(r"refused: stamped (0\.9|1\.0)\d* s before the one held", log.read_text())
    finally:
        stop(proc)
