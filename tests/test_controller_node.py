"""The controller node over real DDS, fed by this test process: commands, stale camera, garbage inputs."""
import numpy as np
import pytest
import rclpy

from tests.bundles import publish_tiny
from tests.ros_helpers import ROOT, Robot, call_idempotent, node_process, ros_node, spin_until, stop

pytestmark = pytest.mark.ros

from std_srvs.srv import SetBool  # noqa: E402


@pytest.fixture(scope="module")
def controller(tmp_path_factory, reacher_env):
    store = tmp_path_factory.mktemp("store")
    publish_tiny(store, reacher_env, horizon=5)
    log = store.parent / "controller.log"
    proc = node_process("mbrl_ros.nodes.controller_node", "-p", f"model_store:={store}", "-p", "use_sim_time:=false",
                        "-p", """planner_config:='{"num_samples": 64, "num_elites": 8, "iterations": 2}'""",
                        "-p", "input_timeout_s:=0.3", "-p", "on_stale:=zero",
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
