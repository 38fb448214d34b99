"""ros2 launch mbrl_ros robot.launch.py model_store:=... [camera_topic:=...] [command_topic:=...]

Hardware: no sim node, wall time, the controller remapped onto the robot's
drivers (ros2_control forward_command_controller), training off by default.
The controller is a managed (lifecycle) node that configures and activates itself;
with autostart:=false it waits for a lifecycle manager or
`ros2 lifecycle set /controller configure` / `activate`.
Node set and parameters from mbrl_ros.bringup.graph (shared with `mbrl-ros launch robot`).
"""
from mbrl_ros.bringup.launch_description import generate


def generate_launch_description():
    return generate("robot")
