"""The robot owns its command limits: a bundle whose manifest says otherwise is refused, never obeyed.

The hostile bundle is the real exported graphs with only `action_spec` edited to +-10 and the
manifest re-sealed (so its checksum is right and nothing but the limits differs). As the store's
current bundle at start-up the controller runs with no model (the safe command); published later it
is refused and the running model stays; /diagnostics says so with the reason; no command ever leaves
the robot's limits; and stopping the controller still sends the final safe command.
"""
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from mbrl_ros.fileio import atomic_write_text
from mbrl_ros.params import Param, check_ros_parameters
from mbrl_ros.runtime.control import ControlConfig, ControlLoop, Observation, PreferredStore
from mbrl_ros.runtime.manifest import seal
from mbrl_ros.runtime.model_store import ModelStore
from mbrl_ros.runtime.safety import action_spec_mismatch, robot_limits
from mbrl_ros.runtime.store_layout import list_versions, read_current, version_name, version_sequence
from tests.bundles import publish_tiny
from tests.limits_helpers import limit_args

FAST_CEM = {"num_samples": 32, "num_elites": 4, "iterations": 2}


def publish_widened(store, bound: float = 10.0, low=None) -> str:
    """Copy the newest bundle as the next version with action limits +-bound (re-sealed) and publish it."""
    versions = list_versions(store)
    source = store / versions[-1]
    name = version_name(version_sequence(versions[-1]) + 1, 1)
    shutil.copytree(source, store / name)
    raw = json.loads((store / name / "manifest.json").read_text())
    raw.pop("manifest_sha256")
    raw["version"] = name
    dim = raw["action_spec"]["dim"]
    raw["action_spec"]["low"] = list(low) if low is not None else [-bound] * dim
    raw["action_spec"]["high"] = [bound] * dim
    (store / name / "manifest.json").write_text(json.dumps(seal(raw)))
    atomic_write_text(store / "CURRENT", name + "\n")
    return name


@pytest.fixture(scope="module")
def good_store(tmp_path_factory, reacher_env):
    root = tmp_path_factory.mktemp("limits_store")
    publish_tiny(root, reacher_env, fused_horizon=5)
    return root


def fresh_obs(env, now):
    o = env.unwrapped.observe()
    return Observation(joints=o["joints"], joints_stamp=now, image=o["image"], image_stamp=now)


# ------------------------------------------------------------------ the pieces, without ROS
def test_robot_limits_are_checked_and_bundles_must_match_them_exactly(reacher_env):
    spec = reacher_env.unwrapped.action_spec
    robot = robot_limits(spec.names, spec.low, spec.high)
    assert robot == spec
    assert action_spec_mismatch(robot, spec) is None
    for bad, reason in [(([], [], []), "all required"), ((["a"], [0.0, 1.0], [1.0]), "1 joint names but 2 minima"),
                        ((["a", "a"], [0.0, 0.0], [1.0, 1.0]), "distinct"),
                        ((["a"], [1.0], [1.0]), "minimum must be below maximum"),
                        ((["a"], [float("nan")], [1.0]), "finite")]:
        with pytest.raises(ValueError, match=reason):
            robot_limits(*bad)
    wide = type(spec)(spec.dim, (-10.0,) * spec.dim, (10.0,) * spec.dim, spec.names)
    assert "command minimum [-10.0, -10.0], robot's is [-0.08, -0.05]" in action_spec_mismatch(robot, wide)
    narrow = type(spec)(spec.dim, spec.low, tuple(h / 2 for h in spec.high), spec.names)
    assert "command maximum" in action_spec_mismatch(robot, narrow)  # narrower is a mismatch too: never rescaled
    renamed = type(spec)(spec.dim, spec.low, spec.high, ("elbow", "shoulder"))
    assert "actuators ['elbow', 'shoulder']" in action_spec_mismatch(robot, renamed)

    # the parameter type that carries them: a list of floats, checked in parameter files too
    param = Param("command_min", "double_array", [], "lowest command")
    assert param.check([-1.0, 2.5]) == [-1.0, 2.5]
    with pytest.raises(ValueError, match="write 1.0, not 1"):
        param.check([-1, 1])
    with pytest.raises(ValueError, match="finite"):
        param.check([float("inf")])
    problems = check_ros_parameters({"controller": {"command_min": param}},
                                    {"controller": {"ros__parameters": {"command_min": ["x"]}}})
    assert problems and "command_min must be a list of floating-point numbers" in problems[0]


def test_a_widened_bundle_is_refused_by_the_store_and_the_loop_runs_without_a_model(good_store, tmp_path,
                                                                                     reacher_env):
    """Start-up with a refused current bundle: no model, the safe command; a good one later is taken."""
    spec = reacher_env.unwrapped.action_spec
    root = tmp_path / "store"
    shutil.copytree(good_store, root)
    good = read_current(root)
    wide = publish_widened(root)
    store = ModelStore(root, action_spec=spec)
    assert store.current is None and store.refusing.version == wide
    assert "does not fit the robot's command limits: command minimum [-10.0, -10.0]" in store.refusing.reason
    for on_stale in ("zero", "hold"):
        loop = ControlLoop(PreferredStore(store), ControlConfig(planner_config=FAST_CEM, on_stale=on_stale), spec)
        result = loop.tick(1.0, fresh_obs(reacher_env, 1.0))
        assert result.mode == "no_model"
        np.testing.assert_allclose(result.command, 0.0)  # zero, or hold the zero the robot last got
    atomic_write_text(root / "CURRENT", good + "\n")
    assert store.poll() and store.version == good and store.refusing is None
    assert loop.tick(2.0, fresh_obs(reacher_env, 2.0)).mode == "plan"

    # a store that does not know the robot (tools) loads it; swapped in, the loop still never runs it
    from mbrl_ros.agent.common import BundleStore

    holder = BundleStore(store.current)
    loop = ControlLoop(holder, ControlConfig(planner_config=FAST_CEM), spec)
    assert loop.tick(3.0, fresh_obs(reacher_env, 3.0)).mode == "plan"
    publish_widened(root)
    holder.current = ModelStore(root).current
    assert holder.current.action_spec.high[0] == 10.0
    result = loop.tick(3.05, fresh_obs(reacher_env, 3.05))
    assert result.mode == "no_model" and "refused: command minimum" in result.reason, result.reason
    np.testing.assert_allclose(result.command, 0.0)
    with pytest.raises(ValueError, match="does not fit the robot"):
        ControlLoop(holder, ControlConfig(planner_config=FAST_CEM), spec)


def test_launch_refuses_a_robot_controller_without_limits(tmp_path):
    """`mbrl-ros launch robot` on the shipped robot.yaml (limits left to the user): one line, exit 2,
    nothing started."""
    from mbrl_ros.bringup.graph import check_startable, robot_graph, sim_graph

    out = subprocess.run([sys.executable, "-m", "mbrl_ros.cli", "launch", "robot", "model_store:=/nowhere"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "command_joints, command_min, command_max" in lines[0], out.stderr
    with pytest.raises(ValueError, match="joint names, command minimum and maximum are all required"):
        check_startable(robot_graph())
    # the sim graph passes the MJCF's limits (actuator names and ctrlrange)
    controller = [n for n in sim_graph() if n.name == "controller"][0]
    assert controller.parameters["command_joints"] == ["shoulder", "elbow"]
    assert controller.parameters["command_min"] == [-0.08, -0.05]
    check_startable(sim_graph())


# ------------------------------------------------------------------ the controller node over DDS
@pytest.mark.ros
def test_no_command_ever_leaves_the_robot_limits_whatever_the_bundle_says(good_store, tmp_path, reacher_env):
    from tests.ros_helpers import ROOT, Robot, interrupt, node_process, ros_node, spin_until, stop

    from mbrl_ros.runtime.safety import zero_command

    spec = reacher_env.unwrapped.action_spec
    low, high = np.asarray(spec.low), np.asarray(spec.high)
    root = tmp_path / "store"
    shutil.copytree(good_store, root)
    good = read_current(root)
    wide = publish_widened(root)  # the current bundle at start-up
    log = tmp_path / "controller.log"
    proc = node_process("mbrl_ros.nodes.controller_node", "-p", f"model_store:={root}", "-p", "use_sim_time:=false",
                        "-p", "model_poll_s:=0.2", "-p", "input_timeout_s:=0.3", "-p", "on_stale:=zero",
                        "-p", "planner_config:='" + json.dumps(FAST_CEM) + "'", *limit_args(spec),
                        "-r", "mbrl/commands:=/limits/commands",
                        params_file=ROOT / "config" / "ros" / "sim.yaml", log_path=log)
    try:
        with ros_node() as node:
            robot = Robot(node, reacher_env, command_topic="/limits/commands")
            assert spin_until(node, lambda: robot.pub_js.get_subscription_count() > 0, 30, [proc]), log.read_text()

            def diag_says(**wanted):
                return lambda: all(robot.diag().get(k, "") == v for k, v in wanted.items())

            def feed_until(predicate, timeout):
                """Keep the robot's inputs coming until predicate() (a model swap takes a while)."""
                deadline = time.monotonic() + timeout
                while not predicate() and time.monotonic() < deadline and proc.poll() is None:
                    robot.run(0.2)
                return predicate()

            def within_limits():
                commands = np.array([c for _, c in robot.commands])
                return bool(np.all(commands >= low - 1e-12) and np.all(commands <= high + 1e-12))

            # start-up on the +-10 bundle: no model, the safe command, WARN with the reason
            robot.run(2.0)
            assert robot.commands and within_limits(), np.abs([c for _, c in robot.commands]).max(axis=0)
            assert spin_until(node, diag_says(model_version="none", refusing_version=wide), 10, [proc]), robot.diag()
            assert "command minimum [-10.0, -10.0]" in robot.diag()["refusal_reason"]
            status = [s for m in robot.diags for s in m.status if s.name == "mbrl_ros: controller"][-1]
            assert status.level == b"\x01" and status.message.startswith(f"refusing model {wide}:"), status
            assert robot.commands and all(np.allclose(c, 0.0) for _, c in robot.commands)

            # a good bundle: it runs and plans
            atomic_write_text(root / "CURRENT", good + "\n")
            assert feed_until(diag_says(model_version=good, refusing_version="", mode="plan"), 30), robot.diag()
            robot.run(1.0)
            assert any(np.abs(c).max() > 1e-6 for _, c in robot.commands[-10:]), "it plans: non-zero commands"

            # a +-10 bundle published later: refused with the reason; the good one keeps running
            later = publish_widened(root, low=[-10.0, -3.0])
            assert feed_until(diag_says(model_version=good, refusing_version=later, mode="plan"), 30), robot.diag()
            assert "command minimum [-10.0, -3.0]" in robot.diag()["refusal_reason"]

            # never, at any point, a command outside the robot's limits
            commands = np.array([c for _, c in robot.commands])
            assert len(commands) > 40 and within_limits(), (commands.min(axis=0), commands.max(axis=0))
            assert np.abs(commands).max(axis=0).max() > 0.5 * high.min(), "the planner used its range"

            # the final safe command on stop still holds
            code = interrupt(proc, node, while_waiting=lambda: robot.run(0.05))
            assert np.allclose(robot.commands[-1][1], zero_command(spec)), robot.commands[-3:]
        assert code == 0, log.read_text()[-3000:]
        assert f"refused {wide}" in log.read_text() and f"refused {later}" in log.read_text()
    finally:
        stop(proc)


def test_a_bundle_without_joint_names_is_refused_by_a_robot_store(good_store, tmp_path, reacher_env):
    """A robot feeds the model its JointState entries by name: a bundle whose observation spec does not
    name them (re-sealed, so only the names differ) would be fed by position and is refused on load."""
    root = tmp_path / "store"
    shutil.copytree(good_store, root)
    source = root / read_current(root)
    name = version_name(version_sequence(source.name) + 1, 1)
    shutil.copytree(source, root / name)
    raw = json.loads((root / name / "manifest.json").read_text())
    raw.pop("manifest_sha256")
    raw["version"] = name
    assert raw["obs_spec"]["joint_names"], "the good bundle names its joints"
    raw["obs_spec"]["joint_names"] = []
    (root / name / "manifest.json").write_text(json.dumps(seal(raw)))
    atomic_write_text(root / "CURRENT", name + "\n")
    store = ModelStore(root, action_spec=reacher_env.unwrapped.action_spec)
    assert store.current is None and store.refusing.version == name
    assert "names 0 of its" in store.refusing.reason and "every entry needs a name" in store.refusing.reason
    # Without the robot's limits (an offline tool looking at one bundle) it still loads.
    assert ModelStore(root).current.version == name
