"""Shared test set-up: headless MuJoCo, and ROS 2 traffic kept inside this run.

Every pytest run picks its own ROS_DOMAIN_ID and limits discovery to localhost,
so parallel runs (and other sessions on the machine) never hear each other.
"""
import os
import random

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
if "MBRL_TEST_DOMAIN_ID" not in os.environ:
    # 0..101 are the safe DDS domain ids on Linux; avoid 0 (the default everyone uses).
    os.environ["MBRL_TEST_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 101))
os.environ["ROS_DOMAIN_ID"] = os.environ["MBRL_TEST_DOMAIN_ID"]


@pytest.fixture(scope="module")
def reacher_env():
    """The camera reacher (64x64), reset with seed 0: the robot the controller tests feed."""
    import mbrl_ros.envs as envs

    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=64)
    env.reset(seed=0)
    yield env
    env.close()
