"""The controller node over real DDS, fed by this test process: commands, stale camera, garbage inputs,
parameters set on the running node, and the last command when the process is stopped."""
import signal
import time

import numpy as np
import pytest
import rclpy

from tests.bundles import publish_tiny
from tests.limits_helpers import limit_args
from tests.ros_helpers import (ROOT, ParameterService, Robot, call_idempotent, interrupt, node_process, ros_node,
                               spin_until, stop)

pytestmark = pytest.mark.ros

from std_srvs.srv import SetBool  # noqa: E402

from mbrl_ros.runtime.safety import zero_command  # noqa: E402


SMALL_CEM = """planner_config:='{"num_samples": 64, "num_elites": 8, "iterations": 2}'"""


@pytest.fixture(scope="module")
def store(tmp_path_factory, reacher_env):
    store = tmp_path_factory.mktemp("store")
    publish_tiny(store, reacher_env, fused_horizon=5)
    return store


@pytest.fixture(scope="module")
def controller(store, reacher_env):
    log = store.parent / "controller.log"
    proc = node_process("mbrl_ros.nodes.controller_node", "-p", f"model_store:={store}", "-p", "use_sim_time:=false",
                        *limit_args(reacher_env.unwrapped.action_spec),
                        "-p", SMALL_CEM, "-p", "input_timeout_s:=0.3", "-p", "on_stale:=zero",
                        params_file=ROOT / "config" / "ros" / "sim.yaml", log_path=log)
    yield proc, log
    assert stop(proc) == 0, log.read_text()[-3000:]


def test_plans_then_zeroes_when_camera_stops_and_survives_garbage(controller, reacher_env):
    proc, log = controller
    with ros_node() as node:
        robot = Robot(node, reacher_env)
        assert spin_until(node, lambda: robot.pub_js.get_subscription_count() > 0, 30, [proc])
        robot.run(2.0)
        assert spin_until(node, lambda: robot.diag().get("mode") == "plan", 10, [proc]), robot.diag()
        planned = [c for t, c in robot.commands[-10:]]
        assert any(np.abs(c).max() > 1e-6 for c in planned), "a planning controller commands something"
        limits = np.array(reacher_env.unwrapped.action_spec.high)
        assert all(np.all(np.abs(c) <= limits + 1e-9) for c in planned)

        # camera stops: within the timeout the controller publishes zero
        robot.commands.clear()
        robot.run(1.5, camera=False)
        late = [c for t, c in robot.commands if t > robot.commands[0][0] + 0.8]
        assert late and all(np.allclose(c, 0.0) for c in late), late[-3:]
        assert spin_until(node, lambda: robot.diag().get("mode") == "stale", 5, [proc])

        # garbage: NaN joints, a wrong-size image, an unknown encoding, missing joints
        nan = np.full(4, np.nan)
        robot.run(0.5, joints=nan)
        robot.run(0.5, image=np.zeros((32, 32, 3), np.uint8))
        robot.run(0.5, encoding="yuv422")
        robot.run(0.5, names=["x", "y"])
        assert spin_until(node, lambda: int(robot.diag().get("input_errors", 0)) >= 4, 5, [proc]), robot.diag()
        assert proc.poll() is None
        text = log.read_text()
        assert "joint state refused" in text and "camera frame refused" in text

        # good inputs again: planning resumes
        robot.run(1.5)
        assert spin_until(node, lambda: robot.diag().get("mode") == "plan", 10, [proc]), robot.diag()


def test_enable_service_disables_commands(controller, reacher_env):
    proc, _ = controller
    with ros_node() as node:
        robot = Robot(node, reacher_env)
        client = node.create_client(SetBool, "/mbrl/controller/enable")
        assert call_idempotent(node, client, SetBool.Request(data=False), procs=[proc]).success
        # Commands published before the service answered may still arrive: a topic and a service
        # reply are separate DDS streams with no order between them. Drain them, then demand zeros.
        robot.run(0.3)
        robot.commands.clear()
        robot.run(1.0)
        assert robot.commands and all(np.allclose(c, 0.0) for _, c in robot.commands)
        assert call_idempotent(node, client, SetBool.Request(data=True), procs=[proc]).success


def test_live_parameters_change_the_running_controller_and_bad_values_are_refused(controller, reacher_env):
    """`ros2 param set` over the parameter service: a live parameter changes the commands, a
    read-only one, one out of range, outside its choices or of the wrong type is refused with a reason."""
    proc, _ = controller
    spec = reacher_env.unwrapped.action_spec
    half_range = (np.asarray(spec.high) - np.asarray(spec.low)) / 2

    def largest_step(commands) -> float:
        """The largest change between consecutive commands, in normalised [-1, 1] units."""
        values = [c for _, c in commands]
        return max(float(np.max(np.abs(b - a) / half_range)) for a, b in zip(values, values[1:]))

    with ros_node() as node:
        robot = Robot(node, reacher_env)
        params = ParameterService(node, "controller", [proc])
        described = params.describe("max_delta")
        assert not described.read_only and described.floating_point_range[0].to_value == 2.0
        assert params.describe("planner").read_only and "read-only" in params.describe("planner").description

        assert spin_until(node, lambda: robot.pub_js.get_subscription_count() > 0, 30, [proc])
        robot.run(1.0)
        assert spin_until(node, lambda: robot.diag().get("mode") == "plan", 10, [proc]), robot.diag()
        robot.commands.clear()
        robot.run(2.0)
        assert largest_step(robot.commands) > 0.2, "unlimited, the planner's commands jump"

        # live: max_delta limits the step between consecutive commands from the next tick on
        result = params.set("max_delta", 0.05)
        assert result.successful, result.reason
        robot.run(0.3)
        robot.commands.clear()
        robot.run(2.0)
        assert len(robot.commands) > 15 and largest_step(robot.commands) <= 0.05 + 1e-6, largest_step(robot.commands)

        # live: a new control rate restarts the control timer
        assert params.set("control_rate_hz", 5.0).successful
        robot.run(0.5)
        robot.commands.clear()
        robot.run(2.0)
        assert 5 <= len(robot.commands) <= 15, len(robot.commands)  # 20 Hz would give ~40
        assert spin_until(node, lambda: robot.diag().get("control_rate_hz") == "5.0", 5, [proc]), robot.diag()

        # refused, with a reason, and nothing changed
        for name, value, reason in [("max_delta", 5.0, "out of range"), ("max_delta", 1, "Wrong parameter type"),
                                    ("on_stale", "coast", "on_stale must be one of zero | hold"),
                                    ("planner", "mcts", "read-only"), ("model_store", "/elsewhere", "read-only"),
                                    ("input_timeout_s", 0.0, "out of range")]:
            result = params.set(name, value)
            assert not result.successful and reason in result.reason, (name, value, result.reason)
        assert params.get("max_delta", "planner", "on_stale") == {"max_delta": 0.05, "planner": "cem",
                                                                  "on_stale": "zero"}

        assert params.set("max_delta", 2.0).successful and params.set("control_rate_hz", 20.0).successful
    assert proc.poll() is None


@pytest.mark.parametrize("sig,on_stale", [(signal.SIGINT, "zero"), (signal.SIGTERM, "hold")],
                         ids=["SIGINT-zero", "SIGTERM-hold"])
def test_the_last_command_is_the_safe_command_when_the_process_is_stopped(store, reacher_env, sig, on_stale):
    """Ctrl-C or SIGTERM on `controller_node` (autostart, the default): the shutdown transition
    sends the safe command (on_stale) before the publisher goes, and the process exits 0.
    zero: zero effort; hold: the last command again (a position-controlled arm must not jump to 0)."""
    log = store.parent / f"controller_{sig.name}.log"
    # Its own command topic: the module's other controller (fixture `controller`) is still running.
    proc = node_process("mbrl_ros.nodes.controller_node", "-p", f"model_store:={store}", "-p", "use_sim_time:=false",
                        *limit_args(reacher_env.unwrapped.action_spec),
                        "-p", SMALL_CEM, "-p", f"on_stale:={on_stale}",
                        "-r", "/mbrl/commands:=/stopping/commands",
                        params_file=ROOT / "config" / "ros" / "sim.yaml", log_path=log)
    try:
        with ros_node() as node:
            robot = Robot(node, reacher_env, command_topic="/stopping/commands")
            assert spin_until(node, lambda: robot.pub_js.get_subscription_count() > 0, 30, [proc])
            deadline = time.monotonic() + 20
            while sum(np.abs(c).max() > 1e-6 for _, c in robot.commands) < 5 and time.monotonic() < deadline:
                robot.run(0.1)  # until it plans (the first ticks, before any input, are the safe command)
            code = interrupt(proc, node, sig, while_waiting=lambda: robot.run(0.05))
            last, before = robot.commands[-1][1], robot.commands[-2][1]
            zero = zero_command(reacher_env.unwrapped.action_spec)
            assert not np.allclose(before, zero), ("still planning when stopped", robot.commands[-3:])
            if on_stale == "zero":
                assert np.allclose(last, zero), robot.commands[-3:]
            else:
                assert np.allclose(last, before), ("hold: the last command again", robot.commands[-3:])
    finally:
        stop(proc)
    assert code == 0, log.read_text()[-3000:]
    assert "shut down from active" in log.read_text()


def test_node_main_treats_the_sigint_shutdown_race_as_a_clean_exit():
    """rclpy's SIGINT handler can shut the context down while spin builds its wait set; spin then
    raises RCLError instead of ExternalShutdownException. run() must exit 0 then, and 1 for the
    same error while the context is still up (a real failure)."""
    from rclpy.node import Node

    from mbrl_ros.nodes.common import RCLError, run

    def shut_down_mid_spin(node):
        rclpy.shutdown()
        raise RCLError("failed to initialize wait set: the given context is not valid")

    def fail_mid_spin(node):
        raise RCLError("failed to initialize wait set: some other reason")

    assert run(lambda: Node("race_ok"), shut_down_mid_spin) == 0
    assert run(lambda: Node("race_fail"), fail_mid_spin) == 1
    assert not rclpy.ok()  # run() always leaves the default context shut down

    # The SIGINT landing inside a ctypes call: ctypes reports the KeyboardInterrupt as an
    # ArgumentError (a real ctypes call here, whose argument conversion is interrupted).
    import ctypes

    def call_with(error):
        class Arg:
            @classmethod
            def from_param(cls, value):
                raise error

        labs = ctypes.CDLL(None).labs
        labs.argtypes = [Arg]
        return lambda node: labs(1)

    assert run(lambda: Node("ctypes_sigint"), call_with(KeyboardInterrupt)) == 0
    assert run(lambda: Node("ctypes_fail"), call_with(TypeError("not a long"))) == 1
