"""The ROS 2 install path (README "With a ROS 2 install"): `python -m colcon build` run by
the Python that has the package's dependencies, as a ROS user does it.

Checks the install tree colcon writes (ament index entry, package.xml, launch files,
configs, MJCF robots, the shipped model, one executable per node plus the CLI), that the
executables run on the Python that ran colcon (the reason README says `python -m colcon`),
and that the installed package finds its data through the ament index, not through this
source checkout. colcon comes from PyPI (requirements/dev.txt).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXECUTABLES = ("sim_node", "controller_node", "logger_node", "trainer_node", "mbrl-ros")

# Keys defined upstream in rosdistro's rosdep/python.yaml (checked there) or ROS packages.
UPSTREAM_PYTHON_KEYS = {"python3-numpy", "python3-yaml", "python3-tqdm", "python3-pil", "python3-onnxruntime-pip"}


def _copy_source(dst: Path) -> None:
    """What `git clone` gives colcon: the tracked source, without venv, data or caches."""
    ignore = shutil.ignore_patterns(".venv", ".git", "mbrl_data", "results", "__pycache__", "*.egg-info",
                                    "build", "install", "log", "docs", "tests")
    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    pytest.importorskip("colcon_core", reason="colcon is in requirements/dev.txt")
    ws = tmp_path_factory.mktemp("ws")
    _copy_source(ws / "src" / "mbrl_ros")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMENT_", "COLCON_"))}
    run = subprocess.run([sys.executable, "-m", "colcon", "build", "--packages-select", "mbrl_ros"],
                         cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return ws / "install" / "mbrl_ros"


def test_install_tree_is_complete(installed):
    share = installed / "share" / "mbrl_ros"
    assert (installed / "share" / "ament_index" / "resource_index" / "packages" / "mbrl_ros").is_file()
    assert (share / "package.xml").is_file()
    for launch in ("sim.launch.py", "robot.launch.py"):
        assert (share / "launch" / launch).is_file()
    for cfg in ("sim.yaml", "robot.yaml"):
        assert yaml.safe_load((share / "config" / "ros" / cfg).read_text())["controller"]
    assert list((share / "sim").glob("*.xml")), "MJCF robots missing"
    assert (share / "models" / "reacher2d" / "CURRENT").is_file(), "shipped model missing"
    for exe in EXECUTABLES:
        path = installed / "lib" / "mbrl_ros" / exe
        assert path.is_file() and os.access(path, os.X_OK), exe
        # The nodes run on the Python that ran colcon: the one with mujoco/onnxruntime.
        assert path.read_text().splitlines()[0] == f"#!{sys.executable}", exe


def test_installed_package_finds_its_data_through_the_ament_index(installed, tmp_path):
    site = next((installed / "lib").glob("python3*/site-packages"))
    env = dict(os.environ, PYTHONPATH=str(site), AMENT_PREFIX_PATH=str(installed))
    env.pop("MBRL_ROS_SHARE", None)
    probe = ("import mbrl_ros, mbrl_ros.paths as p; print(mbrl_ros.__file__); print(p.config_dir()); "
             "print(p.models_dir())")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    module_file, config_dir, models_dir = out.stdout.split()
    share = installed / "share" / "mbrl_ros"
    assert Path(module_file).is_relative_to(site), "imported the source checkout, not the install"
    assert Path(config_dir) == share / "config" and Path(models_dir) == share / "models"
    # The installed CLI builds the graph from the installed parameter files.
    cli = subprocess.run([str(installed / "lib" / "mbrl_ros" / "mbrl-ros"), "launch", "sim", "--dry-run"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert str(share / "config" / "ros" / "sim.yaml") in cli.stdout


def test_package_xml_declares_what_the_nodes_import():
    """`rosdep install --from-paths src -yi` must bring every third-party module the robot side imports."""
    root = ET.parse(ROOT / "package.xml").getroot()
    keys = {e.text for e in root.findall("exec_depend")}
    local = set(yaml.safe_load((ROOT / "rosdep" / "mbrl_ros.yaml").read_text()))
    needed = {"numpy": "python3-numpy", "yaml": "python3-yaml", "tqdm": "python3-tqdm", "PIL": "python3-pil",
              "onnxruntime": "python3-onnxruntime-pip", "mujoco": "python3-mujoco-pip",
              "gymnasium": "python3-gymnasium-pip", "rosbags": "python3-rosbags-pip"}
    for module, key in needed.items():
        assert key in keys, f"{module}: no <exec_depend>{key}</exec_depend> in package.xml"
    python_keys = {k for k in keys if k.startswith("python3-")}
    unknown = python_keys - UPSTREAM_PYTHON_KEYS - local
    assert not unknown, f"keys neither upstream nor in rosdep/mbrl_ros.yaml: {sorted(unknown)}"
    # requirements/base.txt is what a robot runs: no test or lint tools in it.
    base = (ROOT / "requirements" / "base.txt").read_text()
    for tool in ("pytest", "ruff", "import-linter"):
        assert tool not in base
