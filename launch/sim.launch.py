"""ros2 launch mbrl_ros sim.launch.py [env_id:=...] [planner:=cem|mcts|mppi] [record:=true] [train:=true]

Simulated robot + controller (+ logger + online trainer), use_sim_time. The
node set and parameters come from mbrl_ros.bringup.graph, the same description
`mbrl-ros launch sim` uses on pip installs.
"""
from mbrl_ros.bringup.launch_description import generate


def generate_launch_description():
    return generate("sim")
