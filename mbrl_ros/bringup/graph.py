"""The node graphs, described once.

`launch/sim.launch.py` / `launch/robot.launch.py` (real ROS 2 installs) and
`mbrl-ros launch` (pip installs, no `ros2 launch` available) both build their
processes from these descriptions, so the two entry points start the same
nodes with the same parameters.  Pure Python: no rclpy, no launch imports.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mbrl_ros.paths import config_dir, models_dir


@dataclass(frozen=True)
class LaunchArgument:
    default: str
    description: str


NODE_NAMES = ("sim", "controller", "logger", "trainer")
# Managed (lifecycle) nodes: the launch files start them as launch_ros LifecycleNode.
MANAGED_NODES = frozenset({"controller"})
# Supervision (mbrl_ros.bringup.supervision, docs/nodes.md "Supervision"). Required nodes stop the
# whole graph when they die (launch's `required`): the controller is what keeps the robot safe, and
# in simulation the sim is both the robot and the clock. Every other node is respawned with backoff
# and never stops control: a recorder or trainer crash must not stop a robot's controller.
REQUIRED_NODES = frozenset({"sim", "controller"})
RESPAWNED_NODES = frozenset(NODE_NAMES) - REQUIRED_NODES
# Background nodes yield the CPU to control: started niced with capped thread pools, from their
# `niceness` / `threads` parameters (mbrl_ros.nodes.cpu_share).
BACKGROUND_NODES = frozenset({"logger", "trainer"})


def node_executable(name: str) -> str:
    """The console script of node `name` (`ros2 run mbrl_ros <executable>`)."""
    return f"{name}_node"


def node_module(name: str) -> str:
    """The module of node `name`: its main() and its PARAMETERS table (mbrl_ros.params)."""
    return f"mbrl_ros.nodes.{node_executable(name)}"


@dataclass
class NodeSpec:
    """One node process: which node, which parameters, which remappings.

    The node name is also its section in the params file; its console script (`ros2 run`) is
    `<name>_node` and its module (`python -m`) `mbrl_ros.nodes.<name>_node`.
    """

    name: str
    params_file: Path
    parameters: dict = field(default_factory=dict)  # overrides on top of params_file
    remappings: list[tuple[str, str]] = field(default_factory=list)
    namespace: str = ""  # "" (root) or "/r1": where the node's relative topic/service names land

    @property
    def executable(self) -> str:
        return node_executable(self.name)

    @property
    def module(self) -> str:
        return node_module(self.name)

    @property
    def lifecycle(self) -> bool:
        return self.name in MANAGED_NODES

    @property
    def required(self) -> bool:
        """Its death stops the graph (otherwise it is respawned with backoff)."""
        return self.name in REQUIRED_NODES

    @property
    def background(self) -> bool:
        """Runs niced, with capped thread pools: it must never take the controller's CPU."""
        return self.name in BACKGROUND_NODES

    def ros_args(self) -> list[str]:
        """The `--ros-args ...` tail that gives this node its name, parameters and remappings."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        args += ["--params-file", str(self.params_file)]
        for key, value in self.parameters.items():
            args += ["-p", f"{key}:={_param_literal(value)}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args


def _param_literal(value) -> str:
    """`-p name:=value` text. rcl parses the value as YAML, so strings that YAML would read as
    something else (JSON objects, "true", numbers, empty) are single-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        import yaml

        try:
            plain = yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain = False
        return value if plain and value else "'" + value.replace("'", "''") + "'"
    return str(value)


def _truthy(text: str) -> bool:
    return str(text).strip().lower() in ("1", "true", "yes", "on")


_NAMESPACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$")


def normalize_namespace(text: str) -> str:
    """`r1`, `/r1`, `/r1/` -> `/r1`; empty -> `` (the root namespace). A ROS-invalid name is refused."""
    body = str(text).strip().strip("/")
    if not body:
        return ""
    if not _NAMESPACE_RE.match(body):
        raise ValueError(f"namespace {text!r} is not a valid ROS namespace (letters, digits, _ and /, each "
                         "part starting with a letter)")
    return "/" + body


def _namespaced(nodes: list[NodeSpec], namespace: str) -> list[NodeSpec]:
    """Push a graph's nodes into `namespace`.

    The params files are keyed by plain node names (`controller:`), which rcl matches only against
    `/controller`; a node in /r1 is `/r1/controller` and would get none of its section. So each
    node's section becomes explicit overrides (under the launch arguments' own), which both
    `mbrl-ros launch` (-p) and launch_ros (a parameters dict) pass to the node whatever its
    namespace. A file keyed `/r1/controller:` or `/**/controller:` still matches through rcl.
    """
    if not namespace:
        return nodes
    import yaml

    for node in nodes:
        sections = yaml.safe_load(node.params_file.read_text()) or {}
        section = (sections.get(node.name) or {}).get("ros__parameters") or {}
        node.parameters = {**_flatten(section), **node.parameters}
        node.namespace = namespace
    return nodes


def _flatten(section: dict, prefix: str = "") -> dict:
    """Nested YAML parameter groups as ROS's dotted names (`a: {b: 1}` -> `a.b: 1`)."""
    out = {}
    for key, value in section.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _data_dir(a: dict[str, str], namespace: str) -> Path:
    """The data folder; in a namespace its own subfolder (`mbrl_data/r1`), so robots never share
    bags, an episode cache or a model store."""
    data = Path(a["data_dir"]).expanduser().absolute()
    return data / namespace.strip("/") if namespace else data


NAMESPACE_ARGUMENT = LaunchArgument("", "ROS namespace for the whole robot (e.g. r1): its topics and services "
                                    "resolve under /r1, its data under data_dir/r1; empty: the root namespace")


SIM_ARGUMENTS: dict[str, LaunchArgument] = {
    "env_id": LaunchArgument("mbrl_ros/Reacher2D-v0", "simulated robot/task (gymnasium id); "
                             "a shipped model exists for mbrl_ros/Reacher2D-v0 (models/reacher2d)"),
    "planner": LaunchArgument("cem", "controller planner: cem | mcts | mppi"),
    "model_store": LaunchArgument("", "model bundle store the controller loads (empty: the shipped default for env_id)"),
    "record": LaunchArgument("true", "run the logger (rosbag2 MCAP) and feed the trainer"),
    "train": LaunchArgument("true", "run the online trainer (needs record)"),
    "data_dir": LaunchArgument("mbrl_data", "where bags, the episode cache, checkpoints and new models go"),
    "real_time_factor": LaunchArgument("1.0", "sim speed vs wall clock (0: as fast as possible)"),
    "headless": LaunchArgument("true", "no viewer window (the camera still renders offscreen)"),
    "params_file": LaunchArgument("", "parameter YAML (empty: config/ros/sim.yaml)"),
    "namespace": NAMESPACE_ARGUMENT,
}

ROBOT_ARGUMENTS: dict[str, LaunchArgument] = {
    "planner": LaunchArgument("cem", "controller planner: cem | mcts | mppi"),
    "model_store": LaunchArgument("", "model bundle store the controller loads"),
    # Relative defaults: they resolve in the robot's namespace (/camera/image_raw in the root one).
    "camera_topic": LaunchArgument("camera/image_raw", "the robot's camera topic (sensor_msgs/Image)"),
    "joint_states_topic": LaunchArgument("joint_states", "the robot's joint states topic"),
    "command_topic": LaunchArgument("forward_command_controller/commands",
                                    "ros2_control forward_command_controller commands topic"),
    "autostart": LaunchArgument("true", "the (lifecycle) controller configures and activates itself; false: it "
                                "waits unconfigured for a lifecycle manager "
                                "(`ros2 lifecycle set /controller configure`)"),
    "record": LaunchArgument("false", "run the logger (rosbag2 MCAP)"),
    "train": LaunchArgument("false", "run the online trainer (off on hardware by default)"),
    "data_dir": LaunchArgument("mbrl_data", "where bags, checkpoints and new models go"),
    "params_file": LaunchArgument("", "parameter YAML (empty: config/ros/robot.yaml)"),
    "namespace": NAMESPACE_ARGUMENT,
}


def _resolve(arguments: dict[str, LaunchArgument], given: dict[str, str]) -> dict[str, str]:
    unknown = set(given) - set(arguments)
    if unknown:
        raise ValueError(f"unknown launch arguments {sorted(unknown)}; known: {sorted(arguments)}")
    return {name: str(given.get(name, arg.default)) for name, arg in arguments.items()}


def default_model_store(env_id: str) -> Path:
    """The shipped model store for a simulated task, e.g. models/reacher2d."""
    from mbrl_ros.runtime.store_layout import store_name_for_env  # tiny pure helper

    return models_dir() / store_name_for_env(env_id)


COMMAND_LIMIT_PARAMETERS = ("command_joints", "command_min", "command_max")


def sim_command_limits(env_id: str) -> dict:
    """The simulated robot's command limits as controller parameters: its actuators' names and
    ctrlrange from the MJCF (the env's action_spec), so the controller never takes them from a model."""
    import mbrl_ros.envs as envs  # MuJoCo: only the sim graph pays for it

    env = envs.make(env_id)
    try:
        spec = env.unwrapped.action_spec
    finally:
        env.close()
    return {"command_joints": list(spec.names), "command_min": [float(x) for x in spec.low],
            "command_max": [float(x) for x in spec.high]}


def check_startable(nodes: list[NodeSpec]) -> None:
    """What must hold before a graph starts (`mbrl-ros launch`, the launch files; the graph
    functions themselves only describe): every controller gets the robot's command limits."""
    for node in nodes:
        if node.name == "controller":
            require_command_limits(node)


def require_command_limits(node: NodeSpec) -> None:
    """ValueError (one line) unless the controller gets the robot's command limits, from its params
    file section or its overrides: on hardware nothing else may say how far an actuator is driven.
    (The controller refuses to configure without them too; this says so before anything starts.)"""
    import yaml

    from mbrl_ros.runtime.safety import robot_limits

    sections = yaml.safe_load(node.params_file.read_text()) or {}
    values = {**((sections.get(node.name) or {}).get("ros__parameters") or {}), **node.parameters}
    try:
        robot_limits(values.get("command_joints") or [], values.get("command_min") or [],
                     values.get("command_max") or [], f"{node.params_file}: {node.name}")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{exc}; set {', '.join(COMMAND_LIMIT_PARAMETERS)} (the robot's own, robot units) "
                         "before starting a controller on hardware") from None


def sim_graph(given: dict[str, str] | None = None) -> list[NodeSpec]:
    """sim + controller (+ logger + trainer): the robot learning while it runs."""
    a = _resolve(SIM_ARGUMENTS, given or {})
    params = Path(a["params_file"]) if a["params_file"] else config_dir() / "ros" / "sim.yaml"
    namespace = normalize_namespace(a["namespace"])
    data = _data_dir(a, namespace)
    store = a["model_store"] or str(default_model_store(a["env_id"]))
    common = {"use_sim_time": True}
    nodes = [
        NodeSpec("sim", params,
                 {"use_sim_time": False, "env_id": a["env_id"], "real_time_factor": float(a["real_time_factor"])}),
        NodeSpec("controller", params,
                 {**common, "planner": a["planner"], "model_store": store,
                  "watch_store": str(data / "models") if _truthy(a["train"]) else "",
                  **sim_command_limits(a["env_id"])}),
    ]
    if _truthy(a["record"]):
        nodes.append(NodeSpec("logger", params, {**common, "output_dir": str(data / "bags")}))
        if _truthy(a["train"]):
            # The trainer reads bags and needs no sim time; subscribed to /clock it would pay
            # for every message (docs/nodes.md, "/clock").
            nodes.append(NodeSpec("trainer", params,
                                  {"use_sim_time": False, "env_id": a["env_id"], "bag_dir": str(data / "bags"),
                                   "work_dir": str(data / "trainer"), "model_store": str(data / "models"),
                                   "init_from": store}))
    if namespace:
        # /clock is absolute (use_sim_time subscribes to it by that name): each robot's sim time
        # goes on its own /r1/clock, or two sims would interleave their clocks on one topic.
        for node in nodes:
            node.remappings.append(("/clock", f"{namespace}/clock"))
    return _namespaced(nodes, namespace)


def robot_graph(given: dict[str, str] | None = None) -> list[NodeSpec]:
    """controller (+ logger, + trainer) against real robot drivers; wall time, no sim."""
    a = _resolve(ROBOT_ARGUMENTS, given or {})
    params = Path(a["params_file"]) if a["params_file"] else config_dir() / "ros" / "robot.yaml"
    namespace = normalize_namespace(a["namespace"])
    data = _data_dir(a, namespace)
    # The nodes' names are relative; a rule matches a name as resolved in the node's namespace.
    remap = [(f"{namespace}/camera/image_raw", a["camera_topic"]),
             (f"{namespace}/joint_states", a["joint_states_topic"]),
             (f"{namespace}/mbrl/commands", a["command_topic"])]
    nodes = [NodeSpec("controller", params,
                      {"use_sim_time": False, "planner": a["planner"],
                       **({"model_store": a["model_store"]} if a["model_store"] else {}),
                       "watch_store": str(data / "models") if _truthy(a["train"]) else "",
                       "autostart": _truthy(a["autostart"])},
                      remap)]
    if _truthy(a["record"]):
        nodes.append(NodeSpec("logger", params,
                              {"use_sim_time": False, "output_dir": str(data / "bags")}, remap))
        if _truthy(a["train"]):
            nodes.append(NodeSpec("trainer", params,
                                  {"use_sim_time": False, "bag_dir": str(data / "bags"),
                                   "work_dir": str(data / "trainer"), "model_store": str(data / "models")}))
    return _namespaced(nodes, namespace)


GRAPHS: dict[str, tuple[dict[str, LaunchArgument], Callable[[dict], list[NodeSpec]]]] = {
    "sim": (SIM_ARGUMENTS, sim_graph),
    "robot": (ROBOT_ARGUMENTS, robot_graph),
}
