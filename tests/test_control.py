"""ControlLoop: what reaches the actuators for good, stale, invalid inputs and during model swaps."""
import threading

import numpy as np
import pytest

import mbrl_ros.envs as envs
from mbrl_ros.runtime.control import ControlConfig, ControlLoop, Observation, PreferredStore
from mbrl_ros.nodes.observation import image_to_rgb, joint_names_for, joints_from_state
from mbrl_ros.runtime.model_store import ModelStore
from tests.bundles import publish_tiny

FAST_CEM = {"horizon": 5, "num_samples": 32, "num_elites": 4, "iterations": 2}


@pytest.fixture(scope="module")
def env():
    e = envs.make("mbrl_ros/Reacher2D-v0", image_size=64)
    yield e
    e.close()


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory, env):
    root = tmp_path_factory.mktemp("store")
    publish_tiny(root, env, seed=0)
    return root


def fresh_obs(env, now=10.0):
    o = env.unwrapped.observe()
    return Observation(joints=o["joints"], joints_stamp=now, image=o["image"], image_stamp=now)


def make_loop(store_dir, **overrides):
    cfg = ControlConfig(planner="cem", planner_config=FAST_CEM, **overrides)
    return ControlLoop(ModelStore(store_dir, required=True), cfg)


def test_plans_within_limits(env, store_dir):
    env.reset(seed=0)
    loop = make_loop(store_dir)
    spec = env.unwrapped.action_spec
    for _ in range(3):
        r = loop.tick(10.0, fresh_obs(env))
        assert r.mode == "plan", r.reason
        assert r.command.shape == (spec.dim,)
        assert np.all(r.command >= np.array(spec.low) - 1e-9) and np.all(r.command <= np.array(spec.high) + 1e-9)
        assert r.info["transitions"] > 0


@pytest.mark.parametrize("on_stale", ["zero", "hold"])
def test_stale_inputs_zero_or_hold(env, store_dir, on_stale):
    env.reset(seed=1)
    loop = make_loop(store_dir, on_stale=on_stale, input_timeout_s=0.25)
    good = loop.tick(10.0, fresh_obs(env))
    assert good.mode == "plan"
    stale = loop.tick(10.5, fresh_obs(env, now=10.0))  # inputs 0.5 s old
    assert stale.mode == "stale" and "0.500 s old" in stale.reason
    if on_stale == "zero":
        np.testing.assert_allclose(stale.command, 0.0, atol=1e-6)
    else:
        np.testing.assert_allclose(stale.command, good.command, atol=1e-6)
    never = loop.tick(11.0, Observation())
    assert never.mode == "stale" and "never received" in never.reason


def test_invalid_observation_is_safe_and_keeps_belief(env, store_dir):
    env.reset(seed=2)
    loop = make_loop(store_dir)
    loop.tick(10.0, fresh_obs(env))
    before = loop.belief.state.h.copy()
    bad = fresh_obs(env)
    bad.joints = np.full_like(bad.joints, np.nan)
    r = loop.tick(10.0, bad)
    assert r.mode == "invalid" and "NaN" in r.reason
    np.testing.assert_allclose(r.command, 0.0, atol=1e-6)
    np.testing.assert_array_equal(loop.belief.state.h, before)
    wrong = fresh_obs(env)
    wrong.image = np.zeros((32, 32, 3), np.uint8)
    assert loop.tick(10.0, wrong).mode == "invalid"


def test_rate_limit_and_disable(env, store_dir):
    env.reset(seed=3)
    loop = make_loop(store_dir, max_delta=0.1)
    prev = np.zeros(env.unwrapped.action_spec.dim)
    for _ in range(4):
        r = loop.tick(10.0, fresh_obs(env))
        assert np.all(np.abs(r.action - prev) <= 0.1 + 1e-6)
        prev = r.action
    loop.enabled = False
    r = loop.tick(10.0, fresh_obs(env))
    assert r.mode == "disabled"
    np.testing.assert_allclose(r.command, 0.0, atol=1e-6)


def test_hot_swap_under_running_ticks(env, store_dir, tmp_path):
    """A trainer publishing new versions while ticks run: every tick plans, the new model is used."""
    trained = tmp_path / "trained"
    env.reset(seed=4)
    store = PreferredStore(ModelStore(store_dir, required=True), ModelStore(trained))
    loop = ControlLoop(store, ControlConfig(planner_config=FAST_CEM))
    versions, modes = [], []
    done = threading.Event()

    def ticks():
        while not done.is_set():
            r = loop.tick(10.0, fresh_obs(env))
            modes.append(r.mode)
            versions.append(loop.belief.bundle.version + ("@trained" if store.preferred.current else ""))

    worker = threading.Thread(target=ticks)
    worker.start()
    try:
        for seed in (1, 2):
            publish_tiny(trained, env, seed=seed)
            store.preferred.poll()
    finally:
        done.set()
        worker.join()
    assert loop.tick(10.0, fresh_obs(env)).mode == "plan"  # the tick after the last swap
    assert set(modes) == {"plan"}, set(modes)
    assert store.diagnostics()["model_source"] == "trainer"
    assert loop.belief.bundle is store.preferred.current
    assert not versions[0].endswith("@trained") and len(versions) > 3


def test_image_conversion_and_joint_matching():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    bgr = rgb[..., ::-1].tobytes()
    np.testing.assert_array_equal(image_to_rgb("bgr8", 2, 3, 9, bgr), rgb)
    mono = image_to_rgb("mono8", 2, 2, 2, bytes([1, 2, 3, 4]))
    assert mono.shape == (2, 2, 3) and mono[1, 1, 2] == 4
    with pytest.raises(ValueError, match="encoding"):
        image_to_rgb("yuv422", 2, 2, 4, bytes(8))
    with pytest.raises(ValueError, match="model takes"):
        image_to_rgb("rgb8", 2, 3, 9, rgb.tobytes(), size=(4, 4))
    assert image_to_rgb("rgb8", 2, 3, 9, rgb.tobytes(), size=(4, 4), resize=True).shape == (4, 4, 3)
    with pytest.raises(ValueError, match="does not fit"):
        image_to_rgb("rgb8", 2, 3, 9, rgb.tobytes()[:-1])

    from mbrl_ros.spec import ObsSpec
    names, with_vel = joint_names_for(ObsSpec(4, None, ("a.pos", "b.pos", "a.vel", "b.vel")))
    assert names == ["a", "b"] and with_vel
    vec = joints_from_state(names, True, ["x", "b", "a"], [9.0, 2.0, 1.0], [9.0, 20.0, 10.0])
    np.testing.assert_allclose(vec, [1.0, 2.0, 10.0, 20.0])
    with pytest.raises(ValueError, match="lacks joints"):
        joints_from_state(names, True, ["a"], [1.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        joints_from_state(names, True, ["a", "b"], [1.0, np.nan], [0.0, 0.0])
