"""SimLoop schedule without ROS: rates in sim time, monotonic clock, episodes match env.step()."""
import numpy as np
import pytest

import mbrl_ros.envs as envs
from mbrl_ros.runtime.safety import CommandGate
from mbrl_ros.envs.sim_loop import SimLoop, SimRates


def make_loop(episode_steps=10, **rates):
    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=32, episode_steps=episode_steps)
    gate = CommandGate(env.unwrapped.action_spec, timeout_s=1.0)
    return SimLoop(env, SimRates(**rates), gate, seed=5), env, gate


def test_rates_in_sim_time_and_monotonic_clock():
    loop, env, _ = make_loop(episode_steps=40, joint_state_hz=100.0, camera_hz=30.0, clock_hz=200.0)
    joints, images, times = [], [], []
    while loop.time < 1.0:
        ev = loop.advance()
        times.append(ev.time)
        if ev.joints is not None:
            joints.append(ev.time)
        if ev.image is not None:
            images.append(ev.time)
            assert ev.image.shape == (32, 32, 3) and ev.image.dtype == np.uint8
    assert np.all(np.diff(times) >= 0)
    assert len(joints) == pytest.approx(100, abs=2)
    assert len(images) == pytest.approx(30, abs=2)
    env.close()


def test_episode_rewards_match_env_step_and_clock_keeps_running():
    loop, env, gate = make_loop(episode_steps=5)
    command = np.array(env.unwrapped.action_spec.high) * 0.5
    rewards, ends, starts, times = [], [], [], []
    while len(ends) < 2:
        gate.submit(command, now=loop.time)
        ev = loop.advance()
        times.append(ev.time)
        if ev.reward is not None:
            rewards.append(ev.reward)
        if ev.episode_end is not None:
            ends.append(ev.episode_end)
        if ev.episode_start is not None:
            starts.append(ev.episode_start)
    assert ends == [False, False] and starts[:2] == [0, 1]
    assert len(rewards) == 10
    assert np.all(np.diff(times) >= 0), "sim time must not jump back at a reset"
    # the same episode through the gymnasium API gives the same rewards
    ref = envs.make("mbrl_ros/Reacher2D-v0", image_size=32, episode_steps=5)
    ref.reset(seed=5)
    action = ref.unwrapped.action_spec.from_robot(command)
    expected = [ref.step(action)[1] for _ in range(5)]
    np.testing.assert_allclose(rewards[:5], expected, rtol=1e-6, atol=1e-9)
    env.close(), ref.close()


def test_reset_request_and_adapter_refused():
    loop, env, _ = make_loop()
    loop.advance()
    loop.request_reset()
    ev = loop.advance()
    assert ev.episode_end is False and ev.episode_start == 1 and ev.joints is not None
    adapter = envs.make("mbrl_ros/InvertedPendulum-v5", render_image=False)
    with pytest.raises(ValueError, match="ROBOT_IDS"):
        SimLoop(adapter, SimRates(), CommandGate(adapter.unwrapped.action_spec))
    env.close(), adapter.close()


def test_sim_bags_ingest_to_whole_episodes(tmp_path):
    """What the sim node publishes, logged as the logger does (log time = sim time), ingests back
    to every episode with all its steps: a reset takes time, so the end of one episode and the
    start of the next never share a stamp, and the camera (30 Hz, slower than control) does not
    cut the last step."""
    from mbrl_ros.data import ros_messages as rm
    from mbrl_ros.data.bags import IngestConfig, bag_to_episodes
    from tests.bag_helpers import write_bag_with_rosbags

    loop, env, gate = make_loop(episode_steps=5)
    spec, names = env.unwrapped.action_spec, list(env.unwrapped.joint_names)
    config = IngestConfig.for_env(env, active_grace_s=0.0)
    rng = np.random.default_rng(0)
    msgs, rewards, commands = [], [], []
    while True:
        ev = loop.advance()
        t = round(ev.time * 1e9)
        if ev.episode_end is not None:
            msgs.append((config.terminal_topic, rm.make_bool(ev.episode_end), t))
        if ev.reward is not None:
            msgs.append((config.reward_topic, rm.make_float64(ev.reward), t))
            rewards.append(ev.reward)
        if ev.episode_start == 3:
            break
        if ev.episode_start is not None:
            msgs.append((config.episode_topic, rm.make_int64(ev.episode_start), t))
        if ev.joints is not None:
            n = len(names)
            msgs.append((config.joint_topic, rm.make_joint_state(names, ev.joints[:n], ev.joints[n:], t), t))
        if ev.image is not None:
            msgs.append((config.image_topic, rm.make_image(ev.image, t), t))
        if ev.episode_start is not None or (ev.reward is not None and ev.episode_end is None):
            command = spec.to_robot(rng.uniform(-1.0, 1.0, spec.dim))  # the controller answers this state
            gate.submit(command, now=loop.time)
            msgs.append((config.command_topic, rm.make_commands(command), t + 1_000_000))
            commands.append(spec.from_robot(command))
    env.close()
    warnings = []
    episodes = bag_to_episodes(write_bag_with_rosbags(tmp_path / "bag", msgs), config, warnings.append)
    assert warnings == [] and len(episodes) == 3
    for e, ep in enumerate(episodes):
        assert len(ep["reward"]) == 6 and ep["is_first"].tolist() == [True] + [False] * 5
        np.testing.assert_allclose(ep["reward"][1:], rewards[5 * e:5 * e + 5], rtol=1e-6)
        np.testing.assert_allclose(ep["action"][1:], np.array(commands[5 * e:5 * e + 5]), atol=1e-6)
