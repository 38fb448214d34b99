"""Shared helper for sim.launch.py and robot.launch.py: mbrl_ros.graph -> launch_ros Nodes."""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from mbrl_ros.graph import GRAPHS


def generate(graph: str) -> LaunchDescription:
    arguments, build = GRAPHS[graph]

    def nodes(context):
        given = {name: LaunchConfiguration(name).perform(context) for name in arguments}
        return [
            Node(package="mbrl_ros", executable=spec.executable, name=spec.name, output="screen",
                 parameters=[str(spec.params_file), spec.parameters], remappings=spec.remappings,
                 emulate_tty=True)
            for spec in build(given)
        ]

    declared = [DeclareLaunchArgument(name, default_value=arg.default, description=arg.description)
                for name, arg in arguments.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=nodes)])
