"""ros2 launch mbrl_ros sim.launch.py [env_id:=...] [planner:=cem|mcts|mppi] [record:=true] [train:=true]

Simulated robot + controller (+ logger + online trainer), use_sim_time. The
node set and parameters come from mbrl_ros.graph, the same description
`mbrl-ros launch sim` uses on pip installs.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from graph_launch import generate  # noqa: E402


def generate_launch_description():
    return generate("sim")
