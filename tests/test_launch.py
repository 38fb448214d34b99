"""One node graph, two entry points: the launch files and `mbrl-ros launch` start the same nodes."""
import subprocess
import sys
import time

import pytest

from mbrl_ros.bringup.graph import GRAPHS, robot_graph, sim_graph
from mbrl_ros.bringup.launcher import node_command, parse_launch_arguments
from mbrl_ros.paths import config_dir


def test_sim_graph_nodes_and_arguments():
    nodes = {n.name: n for n in sim_graph()}
    assert set(nodes) == {"sim", "controller", "logger", "trainer"}
    assert nodes["controller"].parameters["use_sim_time"] is True
    assert nodes["sim"].parameters["use_sim_time"] is False  # the sim is the clock
    assert nodes["logger"].parameters["use_sim_time"] is True  # log times on the clock that stamps messages
    assert nodes["trainer"].parameters["use_sim_time"] is False  # reads bags: /clock would only cost CPU
    assert nodes["controller"].parameters["model_store"].endswith("models/reacher2d")
    assert nodes["controller"].parameters["watch_store"] == nodes["trainer"].parameters["model_store"]
    assert {n.name for n in sim_graph({"record": "false"})} == {"sim", "controller"}
    assert {n.name for n in sim_graph({"train": "false"})} == {"sim", "controller", "logger"}
    assert sim_graph({"planner": "mcts"})[1].parameters["planner"] == "mcts"
    with pytest.raises(ValueError, match="unknown launch arguments"):
        sim_graph({"plannr": "cem"})


def test_robot_graph_remaps_onto_drivers():
    nodes = robot_graph({"command_topic": "/arm_controller/commands", "model_store": "/m"})
    assert [n.name for n in nodes] == ["controller"]  # training and recording off on hardware
    ctl = nodes[0]
    assert ("/mbrl/commands", "/arm_controller/commands") in ctl.remappings
    assert ctl.parameters["use_sim_time"] is False
    assert ctl.params_file == config_dir() / "ros" / "robot.yaml"


def test_the_controller_is_one_managed_node_that_starts_itself_by_default():
    ctl = robot_graph()[0]
    assert ctl.lifecycle and ctl.executable == "controller_node" and ctl.module == "mbrl_ros.nodes.controller_node"
    assert ctl.parameters["autostart"] is True
    assert robot_graph({"autostart": "false"})[0].parameters["autostart"] is False
    sim_controller = [n for n in sim_graph() if n.name == "controller"][0]
    assert sim_controller.lifecycle and "autostart" not in sim_controller.parameters  # the default: true
    assert [n.name for n in sim_graph() if n.lifecycle] == ["controller"]
    with pytest.raises(ValueError, match="unknown launch arguments \\['lifecycle'\\]"):
        robot_graph({"lifecycle": "false"})  # one controller: nothing to choose
    assert "autostart:=true" in " ".join(node_command(ctl))


def test_every_graph_executable_is_an_installed_console_script_of_its_module():
    """`ros2 launch` starts executables, `mbrl-ros launch` runs `python -m module`: the same main()."""
    import importlib
    from importlib.metadata import entry_points

    scripts = {ep.name: ep for ep in entry_points(group="console_scripts") if ep.value.startswith("mbrl_ros.")}
    variants = [{}, {"record": "true", "train": "true"}]
    seen = set()
    for graph, (arguments, build) in GRAPHS.items():
        for given in variants:
            for node in build({k: v for k, v in given.items() if k in arguments}):
                assert node.executable in scripts, f"{node.executable} is not an installed console script"
                assert scripts[node.executable].load() is importlib.import_module(node.module).main
                seen.add(node.executable)
    assert seen == {"sim_node", "controller_node", "logger_node", "trainer_node"}
    for name, ep in scripts.items():  # no installed script points at a module that is gone
        assert callable(ep.load()), name


def test_every_node_section_exists_in_the_params_file():
    import yaml

    for graph, (_, build) in GRAPHS.items():
        for node in build({}):
            sections = yaml.safe_load(node.params_file.read_text())
            assert node.name in sections, f"{node.params_file} lacks a '{node.name}:' section"
            assert "ros__parameters" in sections[node.name]


def test_launcher_dry_run_prints_the_graph_node_commands():
    out = subprocess.run([sys.executable, "-m", "mbrl_ros.cli", "launch", "sim", "planner:=mppi", "--dry-run"],
                         capture_output=True, text=True, check=True).stdout
    expected = [" ".join(node_command(spec)) for spec in sim_graph({"planner": "mppi"})]
    assert out.strip().splitlines() == expected
    assert any("mbrl_ros.nodes.controller_node" in line and "planner:=mppi" in line for line in expected)
    assert parse_launch_arguments(["a:=1", "b:=x:=y"]) == {"a": "1", "b": "x:=y"}
    assert node_command(sim_graph()[0])[1:3] == ["-m", "mbrl_ros.nodes.sim_node"]


@pytest.mark.ros
def test_mbrl_ros_launch_starts_the_graph_nodes_with_their_parameters(tmp_path, reacher_env):
    """`mbrl-ros launch robot` over real DDS: the graph's nodes run under their names, with the graph's
    overrides on top of the parameter file; the controller starts itself (autostart, no lifecycle
    manager) and commands the robot; on Ctrl-C its last command is the zero command."""
    import numpy as np
    import yaml
    from lifecycle_msgs.srv import GetState

    from mbrl_ros.runtime.safety import zero_command
    from tests.ros_helpers import ROOT, ParameterService, Robot, call_idempotent, interrupt, ros_node, spin_until

    from tests.limits_helpers import limit_parameters

    # robot.yaml leaves the robot's command limits to the user (launch refuses to start without them)
    params = yaml.safe_load((ROOT / "config" / "ros" / "robot.yaml").read_text())
    params["controller"]["ros__parameters"].update(limit_parameters(reacher_env.unwrapped.action_spec))
    (tmp_path / "robot.yaml").write_text(yaml.safe_dump(params))
    given = {"model_store": str(ROOT / "models" / "reacher2d"), "record": "true", "data_dir": str(tmp_path / "data"),
             "params_file": str(tmp_path / "robot.yaml")}
    expected = robot_graph(given)
    assert [n.name for n in expected] == ["controller", "logger"]
    log = tmp_path / "launch.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mbrl_ros.cli", "launch", "robot",
                                 *[f"{k}:={v}" for k, v in given.items()]],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with ros_node() as node:
            robot = Robot(node, reacher_env, command_topic="/forward_command_controller/commands")
            names = lambda: {n for n, ns in node.get_node_names_and_namespaces() if ns == "/"}  # noqa: E731
            assert spin_until(node, lambda: {"controller", "logger"} <= names(), 60, [proc]), log.read_text()[-3000:]
            for spec in expected:
                params = ParameterService(node, spec.name, [proc])
                assert params.get(*spec.parameters) == spec.parameters, spec.name
                from_file = yaml.safe_load(spec.params_file.read_text())[spec.name]["ros__parameters"]
                kept = {k: v for k, v in from_file.items() if k not in spec.parameters}
                assert params.get(*kept) == kept, spec.name  # e.g. robot.yaml's max_delta 0.2

            deadline = time.monotonic() + 60
            while len(robot.commands) < 5 and time.monotonic() < deadline and proc.poll() is None:
                robot.run(0.1)
            assert len(robot.commands) >= 5, log.read_text()[-3000:]
            state = call_idempotent(node, node.create_client(GetState, "/controller/get_state"), GetState.Request(),
                                    procs=[proc])
            assert state.current_state.label == "active"
            code = interrupt(proc, node, while_waiting=lambda: robot.run(0.05))
            zero = zero_command(reacher_env.unwrapped.action_spec)
            assert np.allclose(robot.commands[-1][1], zero), robot.commands[-3:]
    finally:
        if proc.poll() is None:
            from tests.ros_helpers import stop

            stop(proc)
    assert code == 0, log.read_text()[-3000:]
