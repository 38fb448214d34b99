"""ControlLoop: what reaches the actuators for good, stale, invalid inputs and during model swaps."""
import logging
import math
import re
import threading

import numpy as np
import pytest

import mbrl_ros.envs as envs
from mbrl_ros.runtime.control import ControlConfig, ControlLoop, Observation, PreferredStore
from mbrl_ros.nodes.observation import image_to_rgb, joint_names_for, joints_from_state, replaces_held
from mbrl_ros.runtime.belief import BeliefFilter
from mbrl_ros.runtime.model_store import ModelStore
from mbrl_ros.runtime.planners import make_planner
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


def test_applied_action_reaches_the_belief_the_warm_start_and_the_rate_limiter(env, store_dir):
    """Exploration noise added after the loop: the next tick's belief update and the planner's
    warm start (MCTS re-roots its tree on the applied action) must see the action the robot got,
    exactly as a hand-driven filter + planner that saw it."""
    # "visits" and no CEM proposal: the answer is a searched child with a subtree and the tree
    # alone decides, so re-rooting on it (or not) shows
    mcts = {"depth": 3, "simulations": 48, "leaves_per_round": 8, "action_selection": "visits", "proposal": "warm",
            "reuse_tree": True}
    loop = ControlLoop(ModelStore(store_dir, required=True), ControlConfig(planner="mcts", planner_config=mcts,
                                                                          planning_budget_s=math.inf, seed=5))
    bundle = loop.belief.bundle
    obs1 = env.reset(seed=6)[0]
    first = loop.tick(10.0, Observation(obs1["joints"], 10.0, obs1["image"], 10.0))
    assert first.mode == "plan"
    # noise that keeps the action inside [-1, 1] but off every child MCTS considered
    noisy = np.clip(first.action + np.where(first.action > 0, -0.7, 0.7), -1, 1).astype(np.float32)
    loop.applied(noisy)
    obs2 = env.step(noisy)[0]
    second = loop.tick(10.05, Observation(obs2["joints"], 10.05, obs2["image"], 10.05))
    assert second.mode == "plan"

    def by_hand(advance_by):
        belief = BeliefFilter(bundle)
        planner = make_planner("mcts", bundle.latent, loop.planner_config(bundle), seed=5)
        planner.plan(belief.update(obs1))
        planner.advance(advance_by)
        return belief.update(obs2, noisy), planner.plan(belief.state).action

    state, action = by_hand(noisy)
    np.testing.assert_array_equal(loop.belief.state.h, state.h)
    np.testing.assert_array_equal(second.action, action)
    _, unaware = by_hand(first.action)  # a warm start that missed the noise plans differently
    assert not np.array_equal(unaware, action)
    np.testing.assert_array_equal(loop.last_action, second.action)

    limited = make_loop(store_dir, max_delta=0.1)
    limited.tick(10.0, fresh_obs(env))
    limited.applied(np.full(2, 0.9, np.float32))
    assert np.all(np.abs(limited.tick(10.0, fresh_obs(env)).action - 0.9) <= 0.1 + 1e-6)
    for bad in (np.full(2, 1.5), np.array([np.nan, 0.0]), np.zeros(3)):
        with pytest.raises(ValueError, match="applied action"):
            limited.applied(bad)


def test_without_a_deadline_the_full_search_runs_however_short_the_period(env, store_dir):
    env.reset(seed=7)
    cem = {**FAST_CEM, "iterations": 4}
    rushed = ControlLoop(ModelStore(store_dir, required=True),
                         ControlConfig(planner_config=cem, control_rate_hz=1000.0, planning_budget_s=1e-6))
    unhurried = ControlLoop(ModelStore(store_dir, required=True),
                            ControlConfig(planner_config=cem, control_rate_hz=1000.0, planning_budget_s=math.inf))
    assert unhurried.config.budget_s is None
    short = rushed.tick(10.0, fresh_obs(env))
    full = unhurried.tick(10.0, fresh_obs(env))
    assert short.info["deadline_hit"] and short.info["iterations"] < 4
    assert not full.info["deadline_hit"] and full.info["iterations"] == 4 and full.mode == "plan"
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="planning_budget_s"):
            ControlConfig(planning_budget_s=bad)


def test_planner_failure_falls_back_on_the_warm_start_action(env, store_dir, monkeypatch):
    env.reset(seed=8)
    loop = make_loop(store_dir)
    planned = loop.tick(10.0, fresh_obs(env))
    assert np.array_equal(loop.planner.warm_action, planned.action)

    def broken(*args):
        raise RuntimeError("onnxruntime: device lost")

    monkeypatch.setattr(loop.belief.bundle.latent, "imagine", broken)
    failed = loop.tick(10.05, fresh_obs(env))
    assert failed.mode == "planner_error" and "device lost" in failed.reason
    np.testing.assert_array_equal(failed.action, planned.action)


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


def test_a_planner_horizon_the_bundle_cannot_fuse_is_refused(env, store_dir):
    """CEM/MPPI plan over the bundle's fused horizon (5 here); another horizon would turn every
    imagine into a step-graph loop, so it is refused with the way out named."""
    store = ModelStore(store_dir, required=True)
    assert store.current.manifest.fused_horizon == 5
    for planner in ("cem", "mppi"):
        loop = ControlLoop(store, ControlConfig(planner=planner, planner_config={"num_samples": 16}))
        assert loop.planner_config(store.current)["horizon"] == 5
        with pytest.raises(ValueError, match=rf"planner horizon 7 != fused horizon 5 of bundle {store.version}: "
                                             r"every imagine would run as 7 step-graph calls instead of 1 fused "
                                             r"call.*--fused-horizon 7.*allow_unfused: true"):
            ControlLoop(store, ControlConfig(planner=planner, planner_config={"horizon": 7, "num_samples": 16}))
    with pytest.raises(ValueError, match="allow_unfused must be true or false"):
        ControlLoop(store, ControlConfig(planner_config={"horizon": 7, "allow_unfused": "yes"}))
    with pytest.raises(ValueError, match="allow_unfused applies to CEM/MPPI's horizon, not to 'mcts'"):
        ControlLoop(store, ControlConfig(planner="mcts", planner_config={"allow_unfused": True}))


def test_allow_unfused_warns_once_with_the_cost_and_plans_as_the_fused_graph(env, tmp_path, caplog):
    """With allow_unfused, horizon 7 on a bundle fused at 5 plans what the same model fused at 7
    plans (the step loop computes the same numbers), and one warning gives the measured cost."""
    short, long = tmp_path / "fused5", tmp_path / "fused7"
    publish_tiny(short, env, seed=0, fused_horizon=5)
    publish_tiny(long, env, seed=0, fused_horizon=7)
    cem = {**FAST_CEM, "horizon": 7}
    timing = dict(control_rate_hz=1000.0, planning_budget_s=math.inf)  # no deadline: both run every iteration
    with caplog.at_level(logging.WARNING):
        unfused = ControlLoop(ModelStore(short, required=True),
                              ControlConfig(planner_config={**cem, "allow_unfused": True}, **timing))
        fused = ControlLoop(ModelStore(long, required=True), ControlConfig(planner_config=cem, **timing))
        env.reset(seed=9)
        for step in range(3):
            obs = fresh_obs(env, now=10.0 + step)
            a, b = unfused.tick(10.0 + step, obs), fused.tick(10.0 + step, obs)
            assert a.mode == b.mode == "plan", (a.reason, b.reason)
            np.testing.assert_allclose(a.action, b.action, atol=1e-4)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    version = unfused.store.current.version
    assert re.fullmatch(rf"CEM planner on bundle {version} with allow_unfused: horizon 7 != fused 5: 7 step calls "
                        r"per imagine instead of 1 \(measured \d+\.\d ms vs \d+\.\d ms per imagine at 32 candidates\)",
                        warnings[0]), warnings[0]
    assert unfused.store.current.latent.unfused_calls == 3 * FAST_CEM["iterations"]
    assert fused.store.current.latent.unfused_calls == 0


def test_a_swapped_in_model_fused_at_another_horizon(env, tmp_path):
    """A newer bundle fused at another length: with the default horizon the planner follows it;
    with an explicit horizon it no longer fits, and the tick sends the safe action and says why
    instead of raising."""
    root = tmp_path / "store"
    publish_tiny(root, env, seed=0, fused_horizon=5)
    default_store, explicit_store = ModelStore(root, required=True), ModelStore(root, required=True)
    follows = ControlLoop(default_store, ControlConfig(planner_config={"num_samples": 16, "num_elites": 4}))
    pinned = ControlLoop(explicit_store, ControlConfig(planner_config=FAST_CEM, on_stale="zero"))
    env.reset(seed=10)
    assert follows.tick(10.0, fresh_obs(env)).mode == pinned.tick(10.0, fresh_obs(env)).mode == "plan"
    publish_tiny(root, env, seed=1, fused_horizon=7)
    assert default_store.poll() and explicit_store.poll()
    assert follows.tick(10.1, fresh_obs(env, now=10.1)).mode == "plan"
    assert follows.planner.config.horizon == 7
    refused = pinned.tick(10.1, fresh_obs(env, now=10.1))
    assert refused.mode == "planner_error" and "planner horizon 5 != fused horizon 7" in refused.reason
    np.testing.assert_allclose(refused.command, 0.0, atol=1e-6)


def test_an_older_message_replaces_only_a_held_one_that_is_stale_or_ahead_of_the_clock():
    timeout = 0.3
    assert replaces_held(10.0, 10.05, now=10.06, input_timeout_s=timeout)  # newer: always
    assert replaces_held(float("-inf"), 3.0, now=10.0, input_timeout_s=timeout)  # nothing held yet
    assert not replaces_held(10.0, 9.0, now=10.1, input_timeout_s=timeout)  # older than a fresh one: refused
    assert replaces_held(10.0, 9.9, now=10.5, input_timeout_s=timeout)  # the held one is stale anyway
    assert replaces_held(10.0, 2.0, now=3.0, input_timeout_s=timeout)  # the clock went back (sim restart)


def test_live_frames_are_resized_exactly_as_ingest_resizes_recorded_ones():
    """A 640x480 camera: the controller's 64x64 frame equals the one ingest makes from the same bag
    message (one resampling rule: what the model was trained on is what it sees)."""
    from mbrl_ros.data.ros_messages import decode_image, make_image

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    live = image_to_rgb("bgr8", 480, 640, 640 * 3, frame[..., ::-1].tobytes(), size=(64, 64), resize=True)
    recorded = decode_image(make_image(frame, 0, encoding="bgr8"), (64, 64))
    np.testing.assert_array_equal(live, recorded)
