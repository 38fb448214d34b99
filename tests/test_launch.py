"""One node graph, two entry points: the launch files and `mbrl-ros launch` start the same nodes."""
import importlib.util
import subprocess
import sys

import pytest

from mbrl_ros.bringup.graph import GRAPHS, robot_graph, sim_graph
from mbrl_ros.bringup.launcher import node_command, parse_launch_arguments
from mbrl_ros.paths import config_dir, launch_dir


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


def test_robot_controller_is_managed_and_starts_itself_by_default():
    ctl = robot_graph()[0]
    assert ctl.lifecycle and ctl.executable == "controller_lifecycle_node"
    assert ctl.module == "mbrl_ros.nodes.controller_lifecycle_node" and ctl.parameters["autostart"] is True
    assert robot_graph({"autostart": "false"})[0].parameters["autostart"] is False
    plain = robot_graph({"lifecycle": "false"})[0]
    assert not plain.lifecycle and plain.module == "mbrl_ros.nodes.controller_node" and "autostart" not in plain.parameters
    assert not any(n.lifecycle for n in sim_graph())  # the sim graph keeps the plain controller
    assert "autostart:=true" in " ".join(node_command(ctl))


def test_every_graph_executable_is_a_console_script_of_its_module():
    """`ros2 launch` starts executables, `mbrl-ros launch` runs `python -m module`: the same code."""
    setup = (launch_dir().parent / "setup.py").read_text()
    variants = [{}, {"lifecycle": "false", "record": "true", "train": "true"}]
    for graph, (_, build) in GRAPHS.items():
        for given in variants:
            for node in build({k: v for k, v in given.items() if k in GRAPHS[graph][0]}):
                assert f'"{node.executable} = {node.module}:main"' in setup, (graph, node.executable)


def test_every_node_section_exists_in_the_params_file():
    import yaml

    for graph, (_, build) in GRAPHS.items():
        for node in build({}):
            sections = yaml.safe_load(node.params_file.read_text())
            assert node.name in sections, f"{node.params_file} lacks a '{node.name}:' section"
            assert "ros__parameters" in sections[node.name]


def test_launcher_dry_run_prints_node_commands():
    out = subprocess.run([sys.executable, "-m", "mbrl_ros.cli", "launch", "sim", "planner:=mppi", "--dry-run"],
                         capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 4
    assert any("mbrl_ros.nodes.controller_node" in line and "planner:=mppi" in line for line in lines)
    assert all("--params-file" in line for line in lines)
    assert parse_launch_arguments(["a:=1", "b:=x:=y"]) == {"a": "1", "b": "x:=y"}
    assert node_command(sim_graph()[0])[1:3] == ["-m", "mbrl_ros.nodes.sim_node"]


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None,
                    reason="`launch`/`launch_ros` are not on PyPI: needs a ROS 2 install")
@pytest.mark.parametrize("graph", ["sim", "robot"])
def test_launch_file_starts_the_same_nodes(graph):  # pragma: no cover - runs on ROS 2 installs
    from launch import LaunchContext
    from launch.actions import OpaqueFunction

    spec = importlib.util.spec_from_file_location(f"{graph}_launch", launch_dir() / f"{graph}.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    for entity in description.entities:
        if not isinstance(entity, OpaqueFunction):
            entity.visit(context)
    opaque = [e for e in description.entities if isinstance(e, OpaqueFunction)][0]
    nodes = opaque.execute(context)
    expected = GRAPHS[graph][1]({})
    # launch_ros.actions.Node keeps what it was given; compare executables, names and parameters
    assert [n.node_executable for n in nodes] == [e.executable for e in expected]
    assert [n._Node__node_name for n in nodes] == [e.name for e in expected]
    assert [n._Node__parameters[-1] for n in nodes] == [e.parameters for e in expected]
    from launch_ros.actions import LifecycleNode

    assert [isinstance(n, LifecycleNode) for n in nodes] == [e.lifecycle for e in expected]


@pytest.mark.ros
def test_every_node_parameter_is_documented():
    import importlib

    text = (launch_dir().parent / "docs" / "nodes.md").read_text()
    for module in ("sim_node", "controller_node", "logger_node", "trainer_node"):
        imported = importlib.import_module(f"mbrl_ros.nodes.{module}")
        params = {**imported.PARAMETERS, **getattr(imported, "LIFECYCLE_PARAMETERS", {})}
        missing = [p for p in params if f"| `{p}` |" not in text]
        assert not missing, f"docs/nodes.md does not document {module} parameters {missing}"
