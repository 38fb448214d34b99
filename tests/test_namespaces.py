"""Two robots on one ROS graph: relative names, a `namespace` launch argument, no cross talk.

The graph description is checked first (pure Python); then two simulated robots, /r1 and /r2,
each with its own sim, controller and logger (real processes over real DDS, started from
`sim_graph(namespace=...)` as `mbrl-ros launch sim namespace:=r1` starts them), are controlled at
the same time: each command topic has exactly its own controller as publisher and its own sim as
subscriber, disabling one controller and resetting one sim leave the other robot alone, each
robot has its own clock, diagnostics and data folder, and each logger's bag holds its own
robot's commands under the canonical topic names the ingester expects.
"""
from pathlib import Path

import numpy as np
import pytest
import yaml

from mbrl_ros.bringup.graph import normalize_namespace, robot_graph, sim_graph
from mbrl_ros.bringup.launcher import node_command
from mbrl_ros.paths import config_dir

ROBOTS = ("r1", "r2")


def test_namespace_argument_moves_every_node_and_its_data(tmp_path):
    nodes = sim_graph({"namespace": "r1", "data_dir": str(tmp_path)})
    assert {n.name for n in nodes} == {"sim", "controller", "logger", "trainer"}
    for node in nodes:
        assert node.namespace == "/r1"
        command = " ".join(node_command(node))
        assert "-r __ns:=/r1" in command and "-r /clock:=/r1/clock" in command, command
    by_name = {n.name: n.parameters for n in nodes}
    # the params file's section (keyed `controller:`, which rcl would not match for /r1/controller)
    # travels as explicit parameters; launch arguments still win over it
    assert by_name["controller"]["planner_config"] == '{"use_value": false}'
    assert by_name["sim"]["camera_rate_hz"] == 30.0 and by_name["sim"]["use_sim_time"] is False
    assert by_name["logger"]["output_dir"] == str(tmp_path / "r1" / "bags")
    assert by_name["controller"]["watch_store"] == by_name["trainer"]["model_store"] == str(tmp_path / "r1" / "models")
    assert by_name["trainer"]["work_dir"] == str(tmp_path / "r1" / "trainer")
    # no namespace: the graph is what it always was
    root = sim_graph({"data_dir": str(tmp_path)})
    assert all(n.namespace == "" and not n.remappings for n in root)
    assert "__ns" not in " ".join(node_command(root[0]))
    assert {n.name: n.parameters for n in root}["logger"]["output_dir"] == str(tmp_path / "bags")


def _robot_params(tmp_path: Path) -> str:
    """config/ros/robot.yaml with the robot's command limits (robot_graph requires them)."""
    params = yaml.safe_load((config_dir() / "ros" / "robot.yaml").read_text())
    params["controller"]["ros__parameters"].update(command_joints=["a", "b"], command_min=[-1.0, -1.0],
                                                   command_max=[1.0, 1.0])
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def test_robot_graph_namespace_remaps_resolved_names(tmp_path):
    robot = _robot_params(tmp_path)
    ctl = robot_graph({"namespace": "/arm2/", "command_topic": "/arm2/position_controller/commands",
                       "params_file": robot})[0]
    assert ctl.namespace == "/arm2"
    assert ("/arm2/mbrl/commands", "/arm2/position_controller/commands") in ctl.remappings
    # relative driver defaults land in the robot's namespace
    assert ("/arm2/joint_states", "joint_states") in ctl.remappings
    assert ctl.parameters["command_max"] == [1.0, 1.0]  # the section travels into the namespace
    root = robot_graph({"params_file": robot})[0]
    assert ("/mbrl/commands", "forward_command_controller/commands") in root.remappings
    for bad in ("1robot", "r 1", "r1//x", "r-1"):
        with pytest.raises(ValueError, match="not a valid ROS namespace"):
            normalize_namespace(bad)
    assert normalize_namespace("") == "" and normalize_namespace("/a/b") == "/a/b"


# ---------------------------------------------------------------------------------------------------- live
def _params(tmp_path: Path, robot: str, seed: int) -> Path:
    """sim.yaml with long episodes (no natural episode boundary during the test) and a seed per robot."""
    params = yaml.safe_load((config_dir() / "ros" / "sim.yaml").read_text())
    params["sim"]["ros__parameters"].update(episode_steps=5000, seed=seed)
    path = tmp_path / f"params_{robot}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _endpoints(infos) -> set:
    return {(i.node_namespace, i.node_name) for i in infos}


@pytest.mark.ros
@pytest.mark.slow
def test_two_robots_on_one_graph_without_cross_talk(tmp_path):
    from tests.ros_helpers import call_idempotent, diagnostic_values, node_process, ros_node, spin_for, spin_until, stop

    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Float64MultiArray, Int64
    from std_srvs.srv import SetBool, Trigger

    from mbrl_ros.nodes.common import COMMAND_QOS, EVENT_QOS

    data = tmp_path / "data"
    graphs = {r: sim_graph({"namespace": r, "data_dir": str(data), "train": "false",
                            "params_file": str(_params(tmp_path, r, seed))})
              for r, seed in zip(ROBOTS, (3, 11))}
    procs = {}
    for robot, nodes in graphs.items():
        for n in nodes:
            procs[f"{robot}/{n.name}"] = node_process(n.module, *n.ros_args()[1:],
                                                      log_path=tmp_path / f"{robot}_{n.name}.log")
    logs = lambda: "\n".join(f"--- {k}\n{(tmp_path / (k.replace('/', '_') + '.log')).read_text()[-1500:]}"  # noqa: E731
                             for k in procs)
    try:
        with ros_node() as node:
            commands = {r: [] for r in ROBOTS}
            episodes = {r: [] for r in ROBOTS}
            diags = []
            for r in ROBOTS:
                node.create_subscription(Float64MultiArray, f"/{r}/mbrl/commands",
                                         lambda m, r=r: commands[r].append(np.array(m.data)), COMMAND_QOS)
                node.create_subscription(Int64, f"/{r}/mbrl/episode", lambda m, r=r: episodes[r].append(m.data),
                                         EVENT_QOS)
            node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
            assert spin_until(node, lambda: all(len(commands[r]) > 20 for r in ROBOTS), 180, procs.values()), logs()

            # 1. the graph: each robot's topics have exactly its own nodes at both ends, nothing in the root
            # (polled: discovery of the last-started node may still be on its way)
            def graph_problems() -> list:
                problems = []

                def expect(what, got, want):
                    got = {e for e in got if e[1] != "mbrl_test"}
                    if got != want:
                        problems.append(f"{what}: {sorted(got)} != {sorted(want)}")

                for r in ROBOTS:
                    ns = f"/{r}"
                    expect(f"{ns}/mbrl/commands publishers", _endpoints(node.get_publishers_info_by_topic(
                        f"{ns}/mbrl/commands")), {(ns, "controller")})
                    expect(f"{ns}/mbrl/commands subscribers", _endpoints(node.get_subscriptions_info_by_topic(
                        f"{ns}/mbrl/commands")), {(ns, "sim"), (ns, "logger")})
                    expect(f"{ns}/joint_states publishers", _endpoints(node.get_publishers_info_by_topic(
                        f"{ns}/joint_states")), {(ns, "sim")})
                    expect(f"{ns}/joint_states subscribers", _endpoints(node.get_subscriptions_info_by_topic(
                        f"{ns}/joint_states")), {(ns, "controller"), (ns, "logger")})
                    expect(f"{ns}/clock publishers", _endpoints(node.get_publishers_info_by_topic(f"{ns}/clock")),
                           {(ns, "sim")})
                    expect(f"{ns}/clock subscribers", _endpoints(node.get_subscriptions_info_by_topic(
                        f"{ns}/clock")), {(ns, "controller"), (ns, "logger")})
                for topic in ("/mbrl/commands", "/joint_states", "/camera/image_raw", "/clock", "/mbrl/episode"):
                    expect(f"{topic} publishers", _endpoints(node.get_publishers_info_by_topic(topic)), set())
                    expect(f"{topic} subscribers", _endpoints(node.get_subscriptions_info_by_topic(topic)), set())
                services = {name for name, _ in node.get_service_names_and_types()}
                for r in ROBOTS:
                    missing = {f"/{r}/mbrl/reset", f"/{r}/mbrl/controller/enable",
                               f"/{r}/controller/get_parameters"} - services
                    if missing:
                        problems.append(f"services missing: {sorted(missing)}")
                if {"/mbrl/reset", "/mbrl/controller/enable"} & services:
                    problems.append("services in the root namespace")
                return problems

            assert spin_until(node, lambda: not graph_problems(), 30, procs.values()), graph_problems()

            # 2. disable r2's controller: r2 gets zero commands, r1 keeps planning
            enable_r2 = node.create_client(SetBool, "/r2/mbrl/controller/enable")
            assert call_idempotent(node, enable_r2, SetBool.Request(data=False), procs=procs.values()).success
            spin_for(node, 0.5)
            mark = {r: len(commands[r]) for r in ROBOTS}
            assert spin_until(node, lambda: all(len(commands[r]) > mark[r] + 30 for r in ROBOTS), 30,
                              procs.values()), logs()
            r2_after = np.array(commands["r2"][mark["r2"]:])
            r1_after = np.array(commands["r1"][mark["r1"]:])
            assert np.all(r2_after == 0.0), r2_after
            assert np.any(r1_after != 0.0), "r1 stopped planning when r2 was disabled"

            # 3. reset r1's sim: r1 starts an episode, r2 does not
            seen = {r: len(episodes[r]) for r in ROBOTS}
            reset_r1 = node.create_client(Trigger, "/r1/mbrl/reset")
            assert call_idempotent(node, reset_r1, Trigger.Request(), procs=procs.values()).success
            assert spin_until(node, lambda: len(episodes["r1"]) > seen["r1"], 10, procs.values())
            spin_for(node, 1.0)
            assert len(episodes["r2"]) == seen["r2"], episodes

            # 4. diagnostics on the one absolute /diagnostics, each status naming its robot
            def names():
                return {s.name for m in diags for s in m.status}

            wanted = {f"mbrl_ros: {r}/{n}" for r in ROBOTS for n in ("sim", "controller", "logger")}
            assert spin_until(node, lambda: wanted <= names(), 10, procs.values()), names()
            assert not {"mbrl_ros: sim", "mbrl_ros: controller", "mbrl_ros: logger"} & names()
            assert int(diagnostic_values(diags, "mbrl_ros: r2/controller").get("ticks_disabled", 0)) > 0
            assert int(diagnostic_values(diags, "mbrl_ros: r1/controller").get("ticks_disabled", 0)) == 0
            for r in ROBOTS:
                assert int(diagnostic_values(diags, f"mbrl_ros: {r}/sim").get("commands_accepted", 0)) > 0
    finally:
        order = sorted(procs, key=lambda k: ("controller", "logger", "sim").index(k.split("/")[1]))
        codes = {k: stop(procs[k]) for k in order}
    assert all(code == 0 for code in codes.values()), (codes, logs())

    # 5. each robot's data in its own folder; bags under the canonical names, with its own commands
    from rosbags.highlevel import AnyReader

    from mbrl_ros.data import ros_messages as rm

    recorded = {}
    for r in ROBOTS:
        bags = [p for p in sorted((data / r / "bags").iterdir()) if (p / "metadata.yaml").exists()]
        assert bags, f"no closed bag for {r}"
        values = []
        with AnyReader(bags) as reader:
            topics = {c.topic for c in reader.connections}
            assert {"/mbrl/commands", "/joint_states", "/camera/image_raw"} <= topics, topics
            assert not [t for t in topics if t.startswith(f"/{r}/")], topics
            conns = [c for c in reader.connections if c.topic == "/mbrl/commands"]
            for _, _, raw in reader.messages(connections=conns):
                values.append(np.asarray(rm.deserialize(raw, rm.COMMANDS).data))
        recorded[r] = np.array(values)
    # r2 was disabled for its last >= 1.5 s (30 ticks); r1 planned to the end (its final command is the
    # safe zero the controller sends when it stops)
    assert np.all(recorded["r2"][-30:] == 0.0), recorded["r2"][-30:]
    assert np.any(recorded["r1"][-40:] != 0.0), recorded["r1"][-40:]

    # the ingester's defaults read a namespaced robot's bags as they are
    import mbrl_ros.envs as envs
    from mbrl_ros.data.bags import IngestConfig, ingest_bags
    from mbrl_ros.data.episodes import EpisodeCache

    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=64)
    cache = EpisodeCache(tmp_path / "cache_r1")
    report = ingest_bags([data / "r1" / "bags"], cache, IngestConfig.for_env(env, active_grace_s=0.0), progress=False)
    env.close()
    steps = sum(len(e["action"]) for e in cache.episodes())
    assert steps >= 20, f"{len(cache.episodes())} episodes, {steps} steps ingested from r1's bags:\n{report.summary()}"
