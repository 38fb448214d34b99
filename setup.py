"""ament_python package for mbrl_ros.

Works two ways: `colcon build` on a ROS 2 install (rclpy and messages from apt),
and `pip install -e .` into a virtual environment that gets rclpy and the
messages from PyPI's ROS 2 wheels (see requirements/ros-pypi.txt).  The Python
dependencies are listed in requirements/*.txt rather than install_requires so
that colcon never pulls PyPI copies of ROS packages over an apt install.
"""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "mbrl_ros"


def tree(src: str):
    """data_files entries that install `src/**` under share/mbrl_ros/src."""
    entries = {}
    for path in glob(os.path.join(src, "**", "*"), recursive=True):
        if os.path.isfile(path) and "__pycache__" not in path:
            dest = os.path.join("share", PACKAGE, os.path.dirname(path))
            entries.setdefault(dest, []).append(path)
    return sorted(entries.items())


CONSOLE_SCRIPTS = [
    # The CLI (train, evaluate, export, collect, launch the node graph, benchmarks).
    "mbrl-ros = mbrl_ros.cli:main",
    # One executable per node, `<name>_node`, so `ros2 run mbrl_ros <name>_node` works
    # (mbrl_ros.bringup.graph.NodeSpec derives the name and module from the node name).
    "sim_node = mbrl_ros.nodes.sim_node:main",
    "controller_node = mbrl_ros.nodes.controller_node:main",
    "logger_node = mbrl_ros.nodes.logger_node:main",
    "trainer_node = mbrl_ros.nodes.trainer_node:main",
]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["tests", "tests.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
    ]
    + tree("launch")
    + tree("config")
    + tree("models")
    + tree("sim"),
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="mbrl_ros developers",
    maintainer_email="mbrl-ros@example.org",
    description="Model-based RL for ROS 2: world model + latent planning (CEM/MCTS/MPPI).",
    license="MIT",
    python_requires=">=3.10",
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
