"""The controller as a managed (lifecycle) node over real DDS (autostart:=false), driven from this
test process through the standard lifecycle services (/controller/change_state,
/controller/get_state), on the shipped model store (models/reacher2d). `mbrl-ros launch robot`,
where it starts itself: tests/test_launch.py."""
import time

import numpy as np
import pytest

from tests.limits_helpers import limit_args  # noqa: E402
from tests.ros_helpers import ROOT, ParameterService, Robot, node_process, ros_node, spin_until, stop

pytestmark = pytest.mark.ros

from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402

from mbrl_ros.runtime.safety import zero_command  # noqa: E402

SHIPPED = ROOT / "models" / "reacher2d"
# Small CEM so a tick fits the 50 ms period on a busy 2-core machine.
FAST_PLANNER = """planner_config:='{"use_value": false, "num_samples": 64, "num_elites": 8, "iterations": 2}'"""


class Lifecycle:
    """A `ros2 lifecycle` for one node: get_state and change_state over its standard services."""

    def __init__(self, node, name: str, robot: Robot, procs=()):
        self.node, self.robot, self.procs = node, robot, procs
        self.get = node.create_client(GetState, f"/{name}/get_state")
        self.change = node.create_client(ChangeState, f"/{name}/change_state")

    def _call(self, client, request, timeout=20.0):
        assert spin_until(self.node, client.service_is_ready, 20, self.procs), f"{client.srv_name} not offered"
        future = client.call_async(request)
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            self.robot.run(0.03)  # keep the robot's inputs fresh while the node transitions
        assert future.done(), f"{client.srv_name}: no answer in {timeout} s"
        return future.result()

    def state(self) -> str:
        return self._call(self.get, GetState.Request()).current_state.label

    def set(self, transition_id: int) -> bool:
        return self._call(self.change, ChangeState.Request(transition=Transition(id=transition_id))).success


def test_lifecycle_transitions_gate_commands(tmp_path, reacher_env):
    store = tmp_path / "store"  # missing at first: configure must fail cleanly
    log = tmp_path / "controller.log"
    proc = node_process("mbrl_ros.nodes.controller_node", "-p", f"model_store:={store}", "-p", "autostart:=false",
                        "-p", "use_sim_time:=false", "-p", FAST_PLANNER, "-p", "on_stale:=hold",
                        *limit_args(reacher_env.unwrapped.action_spec),  # the robot's limits: required
                        params_file=ROOT / "config" / "ros" / "robot.yaml", log_path=log)
    try:
        with ros_node() as node:
            robot = Robot(node, reacher_env)
            lc = Lifecycle(node, "controller", robot, [proc])
            assert lc.state() == "unconfigured"

            # live parameters are checked while unconfigured too; read-only ones stay as started
            params = ParameterService(node, "controller", [proc])
            assert params.set("max_delta", 0.5).successful
            refused = params.set("on_stale", "coast")
            assert not refused.successful and "on_stale must be one of zero | hold" in refused.reason
            assert not params.set("model_store", "/elsewhere").successful

            # configure on a missing model store: FAILURE, a clear log line, still unconfigured, still running
            assert lc.set(Transition.TRANSITION_CONFIGURE) is False
            assert lc.state() == "unconfigured" and proc.poll() is None
            text = log.read_text()
            assert "configure failed" in text and str(store) in text, text[-2000:]

            # the store appears: configure succeeds; inactive means subscribed but silent
            store.symlink_to(SHIPPED, target_is_directory=True)
            assert lc.set(Transition.TRANSITION_CONFIGURE) is True
            assert lc.state() == "inactive"
            assert spin_until(node, lambda: robot.pub_js.get_subscription_count() > 0, 10, [proc])
            robot.run(1.0)
            assert robot.commands == [], "no commands before activate"
            assert spin_until(node, lambda: robot.diag().get("mode") == "inactive", 3, [proc]), robot.diag()

            # active: planned commands inside the limits
            assert lc.set(Transition.TRANSITION_ACTIVATE) is True
            assert lc.state() == "active"
            robot.run(1.5)
            assert len(robot.commands) >= 10, len(robot.commands)
            planned = [c for _, c in robot.commands]
            assert any(np.abs(c).max() > 1e-6 for c in planned), "an active controller commands something"
            limits = np.array(reacher_env.unwrapped.action_spec.high)
            assert all(np.all(np.abs(c) <= limits + 1e-9) for c in planned)

            # deactivate: one safe command after the last planned one, then silence. on_stale:=hold (a
            # position-controlled arm): the last command again, never a jump to zero
            zero = zero_command(reacher_env.unwrapped.action_spec)
            assert lc.set(Transition.TRANSITION_DEACTIVATE) is True
            robot.run(0.5)  # whatever was in flight arrives
            count = len(robot.commands)
            assert not np.allclose(robot.commands[-1][1], zero), ("hold, not zero", robot.commands[-3:])
            assert np.allclose(robot.commands[-1][1], robot.commands[-2][1]), robot.commands[-3:]
            robot.run(1.0)
            assert len(robot.commands) == count, ("no commands after deactivate", robot.commands[count:])
            assert lc.state() == "inactive"

            # clean up (store released), configure and activate again: commands resume
            assert lc.set(Transition.TRANSITION_CLEANUP) is True
            assert lc.state() == "unconfigured"
            assert "model store released" in log.read_text()
            count = len(robot.commands)
            assert lc.set(Transition.TRANSITION_CONFIGURE) is True
            assert lc.set(Transition.TRANSITION_ACTIVATE) is True
            robot.run(0.8)
            assert len(robot.commands) > count + 5, ("commands resume after re-activation", len(robot.commands) - count)

            # shutdown straight from active: the safe command (hold) goes out first
            assert lc.set(Transition.TRANSITION_ACTIVE_SHUTDOWN) is True
            robot.run(0.5)
            count = len(robot.commands)
            assert np.allclose(robot.commands[-1][1], robot.commands[-2][1]), robot.commands[-3:]
            assert not np.allclose(robot.commands[-1][1], zero), ("hold, not zero", robot.commands[-3:])
            assert lc.state() == "finalized"
            robot.run(0.5)
            assert len(robot.commands) == count, ("no commands after shutdown", robot.commands[count:])
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()[-3000:]
