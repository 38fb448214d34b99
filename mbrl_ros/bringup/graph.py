"""The node graphs, described once.

`launch/sim.launch.py` / `launch/robot.launch.py` (real ROS 2 installs) and
`mbrl-ros launch` (pip installs, no `ros2 launch` available) both build their
processes from these descriptions, so the two entry points start the same
nodes with the same parameters.  Pure Python: no rclpy, no launch imports.
"""
from __future__ import annotations

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

    @property
    def executable(self) -> str:
        return node_executable(self.name)

    @property
    def module(self) -> str:
        return node_module(self.name)

    @property
    def lifecycle(self) -> bool:
        return self.name in MANAGED_NODES

    def ros_args(self) -> list[str]:
        """The `--ros-args ...` tail that gives this node its name, parameters and remappings."""
        args = ["--ros-args", "-r", f"__node:={self.name}", "--params-file", str(self.params_file)]
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
}

ROBOT_ARGUMENTS: dict[str, LaunchArgument] = {
    "planner": LaunchArgument("cem", "controller planner: cem | mcts | mppi"),
    "model_store": LaunchArgument("", "model bundle store the controller loads"),
    "camera_topic": LaunchArgument("/camera/image_raw", "the robot's camera topic (sensor_msgs/Image)"),
    "joint_states_topic": LaunchArgument("/joint_states", "the robot's joint states topic"),
    "command_topic": LaunchArgument("/forward_command_controller/commands",
                                    "ros2_control forward_command_controller commands topic"),
    "autostart": LaunchArgument("true", "the (lifecycle) controller configures and activates itself; false: it "
                                "waits unconfigured for a lifecycle manager "
                                "(`ros2 lifecycle set /controller configure`)"),
    "record": LaunchArgument("false", "run the logger (rosbag2 MCAP)"),
    "train": LaunchArgument("false", "run the online trainer (off on hardware by default)"),
    "data_dir": LaunchArgument("mbrl_data", "where bags, checkpoints and new models go"),
    "params_file": LaunchArgument("", "parameter YAML (empty: config/ros/robot.yaml)"),
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


def sim_graph(given: dict[str, str] | None = None) -> list[NodeSpec]:
    """sim + controller (+ logger + trainer): the robot learning while it runs."""
    a = _resolve(SIM_ARGUMENTS, given or {})
    params = Path(a["params_file"]) if a["params_file"] else config_dir() / "ros" / "sim.yaml"
    data = Path(a["data_dir"]).expanduser().absolute()
    store = a["model_store"] or str(default_model_store(a["env_id"]))
    common = {"use_sim_time": True}
    nodes = [
        NodeSpec("sim", params,
                 {"use_sim_time": False, "env_id": a["env_id"], "real_time_factor": float(a["real_time_factor"])}),
        NodeSpec("controller", params,
                 {**common, "planner": a["planner"], "model_store": store,
                  "watch_store": str(data / "models") if _truthy(a["train"]) else ""}),
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
    return nodes


def robot_graph(given: dict[str, str] | None = None) -> list[NodeSpec]:
    """controller (+ logger, + trainer) against real robot drivers; wall time, no sim."""
    a = _resolve(ROBOT_ARGUMENTS, given or {})
    params = Path(a["params_file"]) if a["params_file"] else config_dir() / "ros" / "robot.yaml"
    data = Path(a["data_dir"]).expanduser().absolute()
    remap = [("/camera/image_raw", a["camera_topic"]), ("/joint_states", a["joint_states_topic"]),
             ("/mbrl/commands", a["command_topic"])]
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
    return nodes


GRAPHS: dict[str, tuple[dict[str, LaunchArgument], Callable[[dict], list[NodeSpec]]]] = {
    "sim": (SIM_ARGUMENTS, sim_graph),
    "robot": (ROBOT_ARGUMENTS, robot_graph),
}
