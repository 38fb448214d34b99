"""Bring-up: the node graphs described once (graph.py), started as processes without
`ros2 launch` (launcher.py, the `mbrl-ros launch` command), as launch_ros actions for real
ROS 2 installs (launch_description.py, used by launch/*.launch.py), and the demo (demo.py)."""
