"""Shared helper for sim.launch.py and robot.launch.py: mbrl_ros.bringup.graph -> launch_ros Nodes.

A managed node (NodeSpec.lifecycle: the controller, in every graph) becomes a launch_ros
LifecycleNode, so launch event handlers and `ros2 lifecycle` can drive it; with its `autostart`
parameter (default true) it configures and activates itself.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from mbrl_ros.bringup.graph import GRAPHS


def generate(graph: str) -> LaunchDescription:
    arguments, build = GRAPHS[graph]

    def nodes(context):
        given = {name: LaunchConfiguration(name).perform(context) for name in arguments}
        actions = []
        for spec in build(given):
            kwargs = dict(package="mbrl_ros", executable=spec.executable, name=spec.name, output="screen",
                          parameters=[str(spec.params_file), spec.parameters], remappings=spec.remappings,
                          emulate_tty=True)
            # namespace: required by LifecycleNode up to Iron, optional after
            actions.append(LifecycleNode(namespace="", **kwargs) if spec.lifecycle else Node(**kwargs))
        return actions

    declared = [DeclareLaunchArgument(name, default_value=arg.default, description=arg.description)
                for name, arg in arguments.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=nodes)])
