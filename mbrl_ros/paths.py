"""Where the package's data folders (sim/, config/, models/, launch/) live.

Installed by colcon or pip they are under <prefix>/share/mbrl_ros; in a source
checkout (editable install, tests) they are beside the `mbrl_ros` package.
`MBRL_ROS_SHARE` overrides both.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """The folder holding sim/, config/, models/ and launch/."""
    override = os.environ.get("MBRL_ROS_SHARE")
    if override:
        return Path(override)
    if (_SOURCE_ROOT / "package.xml").is_file() and (_SOURCE_ROOT / "sim").is_dir():
        return _SOURCE_ROOT
    try:  # a ROS 2 install (colcon / apt)
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("mbrl_ros"))
    except Exception:  # noqa: BLE001 - ament_index may be missing or not know us
        pass
    candidate = Path(sys.prefix) / "share" / "mbrl_ros"
    if candidate.is_dir():
        return candidate
    raise FileNotFoundError(
        "cannot find mbrl_ros data folders (sim/, config/, models/); "
        "install the package (pip install . / colcon build) or set MBRL_ROS_SHARE"
    )


def sim_dir() -> Path:
    return share_dir() / "sim"


def config_dir() -> Path:
    return share_dir() / "config"


def models_dir() -> Path:
    return share_dir() / "models"


def launch_dir() -> Path:
    return share_dir() / "launch"
