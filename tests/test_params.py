"""Parameters declared once (mbrl_ros.params): checks, ControlConfig's defaults, the parameter files,
the launch overrides and the generated doc tables all follow the node tables."""
import copy
import math
import shutil
import subprocess
import sys

import pytest
import yaml

from mbrl_ros.params import Param, check_ros_parameters, check_values, markdown_table, replace_between_markers, table
from mbrl_ros.runtime.control import CONTROL_PARAMETERS, ControlConfig
from tests.ros_helpers import ROOT

pytest.importorskip("rclpy", reason="the node tables live in the node modules, which import rclpy")

from mbrl_ros.bringup.graph import GRAPHS, NODE_NAMES  # noqa: E402
from mbrl_ros.bringup.params_cli import (DOC_FILES, node_parameters, params_file_problems,  # noqa: E402
                                         ros_parameter_files, stale_docs)


def test_param_checks_type_range_and_choices_with_one_line_reasons():
    rate = Param("rate_hz", "double", 20.0, "rate", range=(0.1, 100.0), unit="Hz")
    assert rate.check(0.1) == 0.1 and rate.check(100.0) == 100.0  # inclusive, like ROS ranges
    with pytest.raises(ValueError, match=r"rate_hz must be in \[0.1, 100.0\] Hz, got 100.5"):
        rate.check(100.5)
    with pytest.raises(ValueError, match="rate_hz must be a double, got 20 \\(integer\\)"):
        rate.check(20)  # ROS refuses an integer for a double parameter, and so does a file check
    assert rate.check(20, strict=False) == 20.0  # Python callers may pass an int
    with pytest.raises(ValueError, match="finite"):
        rate.check(math.nan)
    assert Param("budget", "double", 0.0, "", range=(0.0, math.inf)).check(math.inf) == math.inf
    with pytest.raises(ValueError, match="finite"):
        Param("x", "double", 0.0, "").check(math.inf)  # inf only where the range allows it
    count = Param("count", "integer", 1, "", range=(0, 5))
    with pytest.raises(ValueError, match="count must be an integer, got True"):
        count.check(True)
    mode = Param("mode", "string", "zero", "", choices=("zero", "hold"))
    with pytest.raises(ValueError, match="mode must be one of zero \\| hold, got 'sideways'"):
        mode.check("sideways")
    with pytest.raises(ValueError, match="list of strings"):
        Param("providers", "string_array", ["a"], "").check(["a", 1])


def test_tables_refuse_bad_declarations():
    with pytest.raises(ValueError, match="in \\[0, 5\\]"):
        Param("n", "integer", 9, "", range=(0, 5))  # a default outside its own range
    with pytest.raises(ValueError, match="choices need a string"):
        Param("n", "integer", 1, "", choices=("a",))
    with pytest.raises(ValueError, match="declared twice"):
        table(Param("a", "bool", True, ""), {"a": Param("a", "bool", False, "")})
    with pytest.raises(ValueError, match="unknown parameter b"):
        check_values(table(Param("a", "bool", True, "")), {"b": 1})


def test_control_config_defaults_and_limits_come_from_the_table():
    config = ControlConfig()
    for name, param in CONTROL_PARAMETERS.items():
        expected = {} if name == "planner_config" else param.default
        assert getattr(config, name) == expected, name
    with pytest.raises(ValueError, match="max_delta must be in"):
        ControlConfig(max_delta=0.0)
    with pytest.raises(ValueError, match="control_rate_hz must be in"):
        ControlConfig(control_rate_hz=-5.0)
    with pytest.raises(ValueError, match="on_stale must be one of zero \\| hold"):
        ControlConfig(on_stale="coast")
    with pytest.raises(ValueError, match="planner must be one of"):
        ControlConfig(planner="astar")
    assert ControlConfig(planning_budget_s=math.inf).budget_s is None  # no deadline stays possible
    assert ControlConfig(seed=None).seed is None  # unseeded, for Python callers

    from_ros = ControlConfig.from_parameters({"planner_config": '{"horizon": 7}', "max_delta": 0.5, "autostart": True})
    assert from_ros.planner_config == {"horizon": 7} and from_ros.max_delta == 0.5
    with pytest.raises(ValueError, match="planner_config is not JSON"):
        ControlConfig.from_parameters({"planner_config": "{horizon: 7"})

    assert config.live_update({"max_delta": 0.2}).max_delta == 0.2
    with pytest.raises(ValueError, match="planner cannot change while running"):
        config.live_update({"planner": "mcts"})
    with pytest.raises(ValueError, match="input_timeout_s must be in"):
        config.live_update({"input_timeout_s": 0.0})


def test_the_shipped_parameter_files_set_only_declared_parameters_in_range():
    files = ros_parameter_files()
    assert {p.name for p in files} == {"sim.yaml", "robot.yaml"}  # the IngestConfig example is not one
    nodes = node_parameters()
    for path in files:
        assert params_file_problems(path, nodes) == [], path


def test_the_parameter_file_check_names_each_problem():
    nodes = node_parameters()
    document = yaml.safe_load((ROOT / "config" / "ros" / "robot.yaml").read_text())
    assert check_ros_parameters(nodes, document) == []
    bad = copy.deepcopy(document)
    controller = bad["controller"]["ros__parameters"]
    controller["max_delta"] = 5.0  # out of range
    controller["control_rate_hz"] = 20  # an integer: rclpy would refuse it for a double
    controller["on_stale"] = "coast"  # not a choice
    controller["max_detla"] = 0.1  # a typo: silently ignored by rclpy, caught here
    controller["use_sim_time"] = False  # rclpy's own: allowed everywhere
    bad["planer"] = {"ros__parameters": {}}
    problems = check_ros_parameters(nodes, bad, "robot.yaml")
    assert len(problems) == 5, problems
    text = "\n".join(problems)
    for expected in ("max_delta must be in [0.001, 2.0], got 5.0", "control_rate_hz must be a double, got 20",
                     "on_stale must be one of zero | hold", "'max_detla' is not a parameter of controller",
                     "unknown node 'planer'"):
        assert expected in text, (expected, problems)


def test_every_launch_override_is_a_declared_parameter_in_range():
    nodes = node_parameters()
    variants = [{}, {"record": "true", "train": "true", "autostart": "false", "planner": "mcts"}]
    for graph, (arguments, build) in GRAPHS.items():
        for given in variants:
            for spec in build({k: v for k, v in given.items() if k in arguments}):
                document = {spec.name: {"ros__parameters": spec.parameters}}
                assert check_ros_parameters(nodes, document, f"{graph} graph") == []


def test_every_graph_node_has_a_table():
    assert set(node_parameters()) == set(NODE_NAMES)
    assert set(CONTROL_PARAMETERS) <= set(node_parameters()["controller"])


def test_the_doc_tables_are_generated_from_the_declarations():
    """CI fails when a table in docs/nodes.md or README.md is stale (`mbrl-ros params --write`)."""
    nodes = node_parameters()
    assert stale_docs(ROOT, nodes) == [], "run `mbrl-ros params --write`"
    nodes_md = (ROOT / "docs" / "nodes.md").read_text()
    for name, params in nodes.items():
        assert f"<!-- params:{name} -->\n{markdown_table(params.values())}\n<!-- /params:{name} -->" in nodes_md
    assert "<!-- params:controller.live -->" in (ROOT / "README.md").read_text()


def test_the_docs_check_catches_a_stale_table_and_write_fixes_it(tmp_path):
    for relative in DOC_FILES:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    path = tmp_path / "docs" / "nodes.md"
    text = path.read_text()
    path.write_text(text.replace("| `max_delta` | double | `2.0` |", "| `max_delta` | double | `0.5` |"))
    readme = tmp_path / "README.md"
    readme.write_text(replace_between_markers(readme.read_text(), "controller.live", "hand-written"))
    nodes = node_parameters()
    assert stale_docs(tmp_path, nodes) == ["docs/nodes.md", "README.md"]
    proc = subprocess.run([sys.executable, "-m", "mbrl_ros.cli", "params", "--check", "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "docs/nodes.md is out of date" in proc.stdout, proc.stdout + proc.stderr
    assert stale_docs(tmp_path, nodes, write=True) == ["docs/nodes.md", "README.md"]
    assert stale_docs(tmp_path, nodes) == [] and path.read_text() == text


def test_params_module_needs_only_the_standard_library():
    """A base module like mbrl_ros.spec: importable by every layer, with nothing installed."""
    code = ("import sys; before = set(sys.modules); import mbrl_ros.params; "
            "extra = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "print(sorted(extra - set(sys.stdlib_module_names) - {'mbrl_ros'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout
