"""Shared helper for sim.launch.py and robot.launch.py: mbrl_ros.bringup.graph -> launch_ros Nodes.

A managed node (NodeSpec.lifecycle: the controller, in every graph) becomes a launch_ros
LifecycleNode, so launch event handlers and `ros2 lifecycle` can drive it; with its `autostart`
parameter (default true) it configures and activates itself.

Supervision is the one `mbrl-ros launch` applies (mbrl_ros.bringup.supervision): a required node
(NodeSpec.required: controller, sim) that exits shuts the whole launch down (OnProcessExit ->
Shutdown, like `required="true"` in ROS 1); every other node gets `respawn=True` with the policy's
first delay (launch has no backoff), and background nodes start under `nice` with capped thread
pools (`additional_env`).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from mbrl_ros.bringup.graph import GRAPHS, check_startable
from mbrl_ros.bringup.supervision import launch_node_options


def generate(graph: str) -> LaunchDescription:
    arguments, build = GRAPHS[graph]

    def nodes(context):
        given = {name: LaunchConfiguration(name).perform(context) for name in arguments}
        actions = []
        specs = build(given)
        check_startable(specs)  # e.g. no controller without the robot's command limits (one-line error)
        for spec in specs:
            kwargs = dict(package="mbrl_ros", executable=spec.executable, name=spec.name, output="screen",
                          parameters=[str(spec.params_file), spec.parameters], remappings=spec.remappings,
                          emulate_tty=True, **launch_node_options(spec))
            if spec.namespace:
                kwargs["namespace"] = spec.namespace
            # namespace: required by LifecycleNode up to Iron, optional after
            node = LifecycleNode(**{"namespace": "", **kwargs}) if spec.lifecycle else Node(**kwargs)
            actions.append(node)
            if spec.required:
                actions.append(RegisterEventHandler(OnProcessExit(target_action=node, on_exit=[
                    LogInfo(msg=f"required node {spec.name} exited; shutting the graph down"),
                    EmitEvent(event=Shutdown(reason=f"required node {spec.name} exited")),
                ])))
        return actions

    declared = [DeclareLaunchArgument(name, default_value=arg.default, description=arg.description)
                for name, arg in arguments.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=nodes)])
