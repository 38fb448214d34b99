"""mbrl_ros.envs: MJCF robots, gymnasium adapters, the node-facing pieces, rewards."""
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mbrl_ros.envs as envs
from mbrl_ros.envs import cartpole, reacher2d
from mbrl_ros.paths import sim_dir
from mbrl_ros.spec import ActionSpec, ObsSpec

# Joint vectors are unbounded (Box(-inf, inf)) on purpose; the env checker warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:.*Box observation space m.*:UserWarning")

REACHER = "mbrl_ros/Reacher2D-v0"
CARTPOLE = "mbrl_ros/CartpoleSwingup-v0"


def rollout(env, actions, seed):
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        frames.append(obs)
    return frames


def red_mask(image):
    im = image.astype(np.int32)
    return (im[..., 0] > 180) & (im[..., 1] < 90) & (im[..., 2] < 90)


# ----------------------------------------------------------------- registry
def test_ids_and_files():
    assert set(envs.ROBOT_IDS) | set(envs.ADAPTER_IDS) == set(envs.ENV_IDS)
    for env_id in envs.ENV_IDS:
        assert env_id in gym.registry
    assert (sim_dir() / "reacher2d.xml").is_file() and (sim_dir() / "cartpole.xml").is_file()
    with pytest.raises(KeyError, match="unknown env id"):
        envs.make("mbrl_ros/Nope-v0")


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_dict_obs_and_metadata(env_id):
    env = envs.make(env_id)
    u = env.unwrapped
    obs, info = env.reset(seed=0)
    assert isinstance(info, dict)
    assert set(obs) == {"image", "joints"}
    assert obs["image"].dtype == np.uint8 and obs["image"].shape == (64, 64, 3)
    assert obs["joints"].dtype == np.float32
    assert env.observation_space.contains(obs)
    assert isinstance(u.obs_spec, ObsSpec) and isinstance(u.action_spec, ActionSpec)
    u.obs_spec.validate(obs)
    assert len(u.obs_spec.joint_names) == u.obs_spec.joint_dim == obs["joints"].shape[0]
    assert env.action_space.shape == (u.action_spec.dim,)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    assert len(u.action_spec.names) == u.action_spec.dim and all(u.action_spec.names)
    assert u.control_dt > 0 and u.physics_dt > 0
    assert u.control_dt == pytest.approx(u.physics_dt * u.frame_skip)
    assert len(u.joint_names) == u.model.njnt
    obs, r, term, trunc, info = env.step(env.action_space.sample())
    assert isinstance(r, float) and isinstance(term, bool) and isinstance(trunc, bool)
    u.obs_spec.validate(obs)
    assert obs["image"].std() > 5  # not a blank frame
    env.close()


def test_robot_metadata():
    u = envs.make(REACHER).unwrapped
    assert u.joint_names == ("shoulder", "elbow")
    assert u.obs_spec.joint_names == ("shoulder.pos", "elbow.pos", "shoulder.vel", "elbow.vel")
    assert u.action_spec.names == ("shoulder", "elbow")
    np.testing.assert_allclose(u.action_spec.high, u.model.actuator_ctrlrange[:, 1])
    np.testing.assert_allclose(u.action_spec.low, u.model.actuator_ctrlrange[:, 0])
    assert u.control_dt == pytest.approx(0.05) and u.physics_dt == pytest.approx(0.002)
    c = envs.make(CARTPOLE).unwrapped
    assert c.joint_names == ("slider", "hinge") and c.control_dt == pytest.approx(0.05)
    assert c.action_spec.low == (-10.0,) and c.action_spec.high == (10.0,)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_joints_only(env_id):
    env = envs.make(env_id, render_image=False)
    obs, _ = env.reset(seed=1)
    assert set(obs) == {"joints"} and env.unwrapped.obs_spec.image_shape is None
    obs, *_ = env.step(env.action_space.sample())
    assert set(obs) == {"joints"}
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("env_id", [REACHER, CARTPOLE, "mbrl_ros/Reacher-v5"])
@pytest.mark.parametrize("size,shape", [(64, (64, 64, 3)), ((48, 80), (48, 80, 3))])
def test_image_sizes(env_id, size, shape):
    env = envs.make(env_id, image_size=size)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == shape and env.unwrapped.obs_spec.image_shape == shape


# -------------------------------------------------------------- determinism
@pytest.mark.parametrize("env_id", [REACHER, CARTPOLE])
def test_same_seed_same_episode(env_id):
    env = envs.make(env_id)
    actions = np.random.default_rng(0).uniform(-1, 1, (15, env.action_space.shape[0]))
    a = rollout(env, actions, seed=7)
    b = rollout(envs.make(env_id), actions, seed=7)  # a fresh env too
    c = rollout(env, actions, seed=7)  # the same env again, after an episode
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x["joints"], y["joints"])
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["joints"], z["joints"])
        np.testing.assert_array_equal(x["image"], z["image"])
    d = rollout(env, actions, seed=8)
    assert not np.array_equal(a[0]["joints"], d[0]["joints"])


def test_different_seed_different_target():
    env = envs.make(REACHER)
    targets, images = [], []
    for seed in range(4):
        obs, info = env.reset(seed=seed)
        targets.append(tuple(env.unwrapped.target_pos))
        images.append(obs["image"])
        r = np.hypot(*env.unwrapped.target_pos)
        assert reacher2d.TARGET_RADIUS_RANGE[0] <= r <= reacher2d.TARGET_RADIUS_RANGE[1]
    assert len(set(targets)) == 4
    assert not np.array_equal(images[0], images[1])
    # The target is not in the joint vector: same joints, different target -> different image only.
    o1, _ = env.reset(seed=0, options={"qpos": [0.3, 0.5], "target": (0.15, 0.0)})
    o2, _ = env.reset(seed=0, options={"qpos": [0.3, 0.5], "target": (-0.1, 0.1)})
    np.testing.assert_array_equal(o1["joints"], o2["joints"])
    assert not np.array_equal(o1["image"], o2["image"])


# ---------------------------------------------------------------- actions
def test_action_scaling_clipping_and_nan():
    env = envs.make(REACHER)
    u = env.unwrapped
    env.reset(seed=0)
    np.testing.assert_allclose(u.apply_action([1.0, -1.0]), [0.08, -0.05])
    np.testing.assert_allclose(u.data.ctrl, [0.08, -0.05])
    np.testing.assert_allclose(u.apply_action([5.0, -7.0]), [0.08, -0.05])  # clipped
    np.testing.assert_allclose(u.last_action, [1.0, -1.0])
    np.testing.assert_allclose(u.apply_action([0.5, 0.0]), [0.04, 0.0])
    np.testing.assert_allclose(u.apply_command([1.0, -0.02]), [0.08, -0.02])  # robot units, clipped
    np.testing.assert_allclose(u.last_action, [1.0, -0.4], rtol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        env.step([np.nan, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        u.apply_command([0.0, np.inf])
    with pytest.raises(ValueError, match="shape"):
        env.step([0.0, 0.0, 0.0])
    for env_id in envs.ADAPTER_IDS:
        e = envs.make(env_id, render_image=False)
        e.reset(seed=0)
        with pytest.raises(ValueError, match="NaN"):
            e.step(np.full(e.action_space.shape, np.nan))
        big = e.unwrapped.to_task_action(np.full(e.action_space.shape, 3.0))
        np.testing.assert_allclose(big, e.unwrapped.env.action_space.high)


# ---------------------------------------------------------- node pieces
@pytest.mark.parametrize("env_id", [REACHER, CARTPOLE])
def test_step_is_built_from_pieces(env_id):
    a_env, b_env = envs.make(env_id).unwrapped, envs.make(env_id).unwrapped
    a_env.reset(seed=3)
    b_env.reset(seed=3)
    for action in np.random.default_rng(1).uniform(-1, 1, (5, a_env.action_spec.dim)):
        obs, reward, _, _, _ = a_env.step(action)
        b_env.apply_action(action)
        for _ in range(b_env.frame_skip):  # e.g. the sim node stepping physics at 500 Hz
            b_env.physics_step()
        r, term, trunc = b_env.finish_control_step()
        np.testing.assert_array_equal(obs["joints"], b_env.joint_vector())
        np.testing.assert_array_equal(obs["image"], b_env.render_camera())
        assert reward == r == b_env.task_reward() and not term and not trunc
    assert a_env.episode_step == b_env.episode_step == 5
    assert a_env.sim_time == pytest.approx(5 * a_env.control_dt)
    assert set(b_env.observe(image=False)) == {"joints"}


def test_truncation_and_state_roundtrip():
    env = envs.make(CARTPOLE, episode_steps=5, render_image=False)
    u = env.unwrapped
    env.reset(seed=0)
    flags = [env.step([0.3])[2:4] for _ in range(5)]
    assert flags == [(False, False)] * 4 + [(False, True)]
    state = u.get_state()
    j0 = u.joint_vector()
    env.step([1.0])
    u.set_state(state)
    np.testing.assert_array_equal(u.joint_vector(), j0)

    r = envs.make(REACHER, render_image=False).unwrapped
    r.reset(seed=0)
    s = r.get_state()
    target = r.target_pos
    r.reset(seed=1)
    r.set_state(s)
    np.testing.assert_array_equal(r.target_pos, target)  # the target (mocap) is part of the state


# ---------------------------------------------------------------- rewards
def test_reacher_reward_at_target_beats_far():
    u = envs.make(REACHER).unwrapped
    target = (0.12, 0.08)
    u.reset(seed=0, options={"qpos": reacher2d.inverse_kinematics(target), "target": target})
    assert u.distance() < 1e-6
    at_target = u.task_reward()
    far = (-0.15, -0.1)
    u.reset(seed=0, options={"qpos": reacher2d.inverse_kinematics(far), "target": target})
    assert at_target == pytest.approx(1.0) and u.task_reward() < at_target - 1.0


def test_reacher_scripted_controller_beats_random():
    env = envs.make(REACHER, render_image=False)
    u = env.unwrapped
    env.action_space.seed(0)
    scripted, random_ = [], []
    for seed in range(3):
        env.reset(seed=seed)
        ret = 0.0
        for _ in range(200):
            _, r, _, trunc, info = env.step(reacher2d.scripted_action(u))
            ret += r
        assert trunc and info["success"]
        scripted.append(ret)
        env.reset(seed=seed)
        random_.append(sum(env.step(env.action_space.sample())[1] for _ in range(200)))
    assert np.mean(scripted) > np.mean(random_) + 200  # typically ~+185 vs ~-180


def test_cartpole_reward_shape_and_reward_fn():
    u = envs.make(CARTPOLE).unwrapped
    fn = envs.reward_fn(CARTPOLE)
    u.reset(seed=0, options={"qpos": [0.0, 0.0], "qvel": [0.0, 0.0]})
    assert u.task_reward() == pytest.approx(1.0)
    assert fn(np.zeros(4), np.zeros(1)) == pytest.approx(1.0)
    u.reset(seed=0)  # hanging
    assert u.task_reward() < 0.01
    assert fn([0.0, math.pi, 0.0, 0.0], [0.0]) == pytest.approx(0.0)
    assert 0.0 < fn([0.0, math.pi / 2, 0.0, 0.0], [0.0]) < 0.6
    assert fn([0.0, 0.0, 0.0, 0.0], [1.0]) == pytest.approx(0.8)  # control cost
    assert fn([0.9, 0.0, 0.0, 0.0], [0.0]) < 0.7  # off-centre
    batch = fn(np.zeros((3, 5, 4)), np.zeros((3, 5, 1)))
    assert batch.shape == (3, 5)
    # reward_fn on recorded (joints, action) reproduces the env's reward exactly.
    env = envs.make(CARTPOLE, render_image=False)
    obs, _ = env.reset(seed=2)
    for action in np.random.default_rng(0).uniform(-1, 1, (20, 1)).astype(np.float32):
        obs, r, *_ = env.step(action)  # recorded actions and joints are float32
        assert r == pytest.approx(float(fn(obs["joints"], action)), abs=1e-12)


def test_cartpole_scripted_swingup_beats_random():
    env = envs.make(CARTPOLE, render_image=False)
    obs, _ = env.reset(seed=0)
    ret = 0.0
    for _ in range(200):
        obs, r, *_ = env.step(cartpole.scripted_action(obs["joints"]))
        ret += r
    env.action_space.seed(0)
    env.reset(seed=0)
    rand = sum(env.step(env.action_space.sample())[1] for _ in range(200))
    assert ret > 100 and ret > rand + 80


def test_cartpole_episode_figures_tell_balancing_from_spinning():
    """The expert swings the pole up (half a turn, or once round and up) and balances it; a pole
    driven round and round passes upright every turn but is never up for long."""
    env = envs.make(CARTPOLE, render_image=False)
    obs, _ = env.reset(seed=0)
    infos = []
    for _ in range(200):
        obs, _, _, _, info = env.step(cartpole.scripted_action(obs["joints"]))
        assert info["pole_angle"] == pytest.approx(float(obs["joints"][1]), abs=1e-6)
        infos.append(info)
    balanced = cartpole.episode_figures(infos)
    assert abs(balanced["pole_turns"]) in (0.5, 1.5)  # up, having gone over the top at most once
    assert balanced["longest_upright_steps"] > 100 and balanced["upright_fraction"] > 0.5
    # the cart can press a little past its +-1 m range (a soft limit)
    assert -1.2 <= balanced["cart_x_range"][0] < balanced["cart_x_range"][1] <= 1.2
    spinning = cartpole.episode_figures([{"pole_angle": np.pi + 0.3 * t, "cart_x": 0.5} for t in range(200)])
    assert spinning["pole_turns"] == pytest.approx(9.5, abs=0.1) and spinning["longest_upright_steps"] <= 3
    assert 0.1 < spinning["upright_fraction"] < 0.2 and spinning["cart_x_range"] == [0.5, 0.5]


def test_reward_fn_registry():
    assert envs.reward_fn(REACHER) is None
    assert envs.reward_fn(CARTPOLE) is envs.cartpole_swingup_reward
    ip = envs.reward_fn("mbrl_ros/InvertedPendulum-v5")
    assert ip([0, 0.1, 0, 0], [0]) == 1.0 and ip([0, 0.3, 0, 0], [0]) == 0.0
    with pytest.raises(KeyError):
        envs.reward_fn("nope")


# ------------------------------------------------------------------ images
def test_target_visible_and_moves_in_image():
    u = envs.make(REACHER).unwrapped
    centroids = []
    for target in [(0.18, 0.0), (-0.18, 0.0), (0.0, 0.18)]:
        # Arm folded away from the target so it cannot hide it.
        away = (-0.6 * target[0], -0.6 * target[1])
        obs, _ = u.reset(seed=0, options={"target": target, "qpos": reacher2d.inverse_kinematics(away)})
        mask = red_mask(obs["image"])
        assert 5 <= mask.sum() <= 60, mask.sum()  # a few-pixel disc at 64x64
        ys, xs = np.nonzero(mask)
        centroids.append((xs.mean(), ys.mean()))
    (x0, y0), (x1, y1), (x2, y2) = centroids
    assert x0 > 40 and x1 < 24 and abs(y0 - y1) < 2  # +x is right in the image
    assert y2 < 24 and abs(x2 - 31.5) < 3  # +y is up in the image


def test_cartpole_image_follows_cart():
    u = envs.make(CARTPOLE).unwrapped
    xs = []
    for x in (-0.9, 0.9):
        obs, _ = u.reset(seed=0, options={"qpos": [x, 0.0], "qvel": [0.0, 0.0]})
        im = obs["image"].astype(np.int32)
        blue = (im[..., 2] > 150) & (im[..., 0] < 80)
        assert blue.sum() >= 4
        xs.append(np.nonzero(blue)[1].mean())
        assert red_mask(obs["image"]).sum() >= 2  # the pole tip is in view, upright at the rail end
    assert xs[1] - xs[0] > 20


def test_without_egl_joints_only_still_works():
    """No libEGL and MUJOCO_GL unset: import works, joints-only works, images raise the fix."""
    import os
    import subprocess
    import sys

    code = """
import ctypes
_cdll = ctypes.CDLL
def fake(name, *a, **k):
    if "EGL" in str(name):
        raise OSError("no EGL here")
    return _cdll(name, *a, **k)
ctypes.CDLL = fake
import os, mbrl_ros.envs as envs
assert "MUJOCO_GL" not in os.environ
env = envs.make("mbrl_ros/CartpoleSwingup-v0", render_image=False)
obs, _ = env.reset(seed=0)
env.step([0.5])
try:
    envs.make("mbrl_ros/CartpoleSwingup-v0").reset(seed=0)
except RuntimeError as exc:
    assert "MUJOCO_GL=egl" in str(exc) and "render_image=False" in str(exc), exc
    print("OK")
"""
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY")}
    root = str(sim_dir().parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-2000:]


def test_missing_mujoco_is_named_as_a_missing_package_not_a_gl_problem():
    import os
    import subprocess
    import sys

    code = """
import sys
sys.modules["mujoco"] = None  # what an install without the mujoco wheel looks like to `import mujoco`
try:
    import mbrl_ros.envs
except ModuleNotFoundError as exc:
    assert exc.name == "mujoco" and "pip install mujoco" in str(exc) and "OpenGL" not in str(exc), exc
    print("OK")
"""
    env = dict(os.environ, PYTHONPATH=str(sim_dir().parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]


def test_render_from_another_thread():
    """The sim node may render from a timer thread other than the one that reset the env."""
    import os
    import threading

    if os.environ.get("MUJOCO_GL", "").lower() != "egl":
        pytest.skip("context hand-over between threads is implemented for EGL")
    u = envs.make(REACHER).unwrapped
    obs, _ = u.reset(seed=0)  # renders in this thread
    out = {}

    def render():
        try:
            out["image"] = u.render_camera()
        except Exception as exc:  # noqa: BLE001
            out["error"] = exc

    t = threading.Thread(target=render)
    t.start()
    t.join()
    assert "error" not in out, out.get("error")
    np.testing.assert_array_equal(out["image"], obs["image"])
    np.testing.assert_array_equal(u.render_camera(), obs["image"])  # and back in this thread


def test_gl_failure_message(monkeypatch):
    from mbrl_ros.envs import _mujoco

    def broken(*args, **kwargs):
        raise _mujoco.mujoco.FatalError("an OpenGL platform library has not been loaded")

    env = envs.make(CARTPOLE).unwrapped
    env.close()
    monkeypatch.setattr(_mujoco.mujoco, "Renderer", broken)
    with pytest.raises(RuntimeError, match="MUJOCO_GL=egl"):
        env.reset(seed=0)


# --------------------------------------------------------------- adapters
def test_adapter_semantics():
    env = envs.make("mbrl_ros/InvertedPendulum-v5")
    u = env.unwrapped
    assert u.obs_spec.joint_names == ("slider.pos", "hinge.pos", "slider.vel", "hinge.vel")
    assert u.control_dt == pytest.approx(0.04)
    obs, _ = env.reset(seed=0)
    raw, _ = gym.make("InvertedPendulum-v5").reset(seed=0)
    np.testing.assert_array_equal(obs["joints"], raw.astype(np.float32))
    terminated = False
    for t in range(200):  # pushing one way drops the pole: the original termination
        obs, r, terminated, truncated, _ = env.step([1.0])
        if terminated:
            break
    assert terminated and not truncated and t < 100
    short = envs.make("mbrl_ros/Reacher-v5", episode_steps=3, render_image=False)
    short.reset(seed=0)
    assert [short.step([0.0, 0.0])[3] for _ in range(3)] == [False, False, True]
    assert envs.make("mbrl_ros/Reacher-v5").unwrapped.action_spec.names == ("joint0", "joint1")


def test_reacher_v5_reward_fn_matches_the_env():
    """The reward recomputed from the recorded state and action equals gymnasium's, step by step
    (what bag ingestion uses when a recording has no reward topic)."""
    env = envs.make("mbrl_ros/Reacher-v5", render_image=False)
    fn = envs.reward_fn("mbrl_ros/Reacher-v5")
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    joints, actions, rewards = [], [], []
    for _ in range(40):
        action = rng.uniform(-1, 1, 2).astype(np.float32)
        obs, r, *_ = env.step(action)
        joints.append(obs["joints"]), actions.append(action), rewards.append(r)
    recomputed = fn(np.array(joints), np.array(actions))
    # joints are float32 in the observation: agreement to float32 precision, not bit-exact
    np.testing.assert_allclose(recomputed, rewards, rtol=0, atol=1e-5)
    assert np.ptp(rewards) > 0.1  # the rollout really moved (not a constant reward)


# ----------------------------------------------------------- env checker
@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_check_env(env_id):
    env = envs.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
