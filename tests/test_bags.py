"""rosbag2 in and out: bags written here with rosbags (MCAP and sqlite3), ingested into episodes.

The synthetic recordings look like a real robot's: messages logged a few ms after their
stamps, commands answering each observation 10 ms later, joints published in another
order with an extra joint, BGR camera images. Expected episodes are built from the same
generating formulas, following the alignment rules of docs/data.md.
"""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from mbrl_ros.data import ros_messages as rm
from mbrl_ros.data.bag_reader import scan_mcap
from mbrl_ros.data.bag_writer import BagWriter, SegmentedBagWriter
from mbrl_ros.data.bags import IngestConfig, IngestError, bag_to_episodes, ingest_bags
from mbrl_ros.data.episodes import EpisodeCache, content_key
from mbrl_ros.spec import ActionSpec
from tests.bag_helpers import write_bag_with_rosbags

MS = 1_000_000
DT = 50 * MS
ACTION_SPEC = ActionSpec(dim=2, low=(-2.0, -0.5), high=(2.0, 0.5))
H, W = 6, 8


def make_config(**overrides) -> IngestConfig:
    kwargs = dict(joint_names=("shoulder", "elbow"), action_spec=ACTION_SPEC, image_size=(H, W),
                  control_rate_hz=20.0, active_grace_s=0.0)
    kwargs.update(overrides)
    return IngestConfig(**kwargs)


def frame(e: int, k: int, h: int = H, w: int = W) -> np.ndarray:
    """An RGB frame whose three channels differ (so a BGR/RGB mix-up shows)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (10 * k + e) % 256
    img[..., 1] = (100 + k) % 256
    img[..., 2] = (200 - k) % 256
    return img


def joint_pos(e, k):
    return np.array([0.1 * k + e, -0.2 * k])  # shoulder, elbow


def joint_vel(e, k):
    return np.array([1.0 + e, -2.0 + 0.01 * k])


def action(e, k):
    return np.array([np.sin(0.3 * k + e), np.cos(0.7 * k)]) * 0.9


def reward(e, k):
    return e + 0.01 * k


def synthetic_recording(episodes=2, steps=10, t0=10_000 * MS, encoding="bgr8", image_shape=(H, W),
                        skip_joint_ticks=()):
    """(messages, expected episodes). messages: list of (topic, msg, log_ns)."""
    msgs, expected = [], []
    start = t0
    for e in range(episodes):
        ticks = start + DT * np.arange(steps + 1)
        msgs.append(("/mbrl/episode", rm.make_int64(e), start - 5 * MS))
        exp = {k: [] for k in ("image", "joints", "action", "reward", "is_first", "is_terminal")}
        for k, t in enumerate(ticks):
            t = int(t)
            rgb = frame(e, k, *image_shape)
            image = rgb.mean(axis=2).astype(np.uint8) if encoding == "mono8" else rgb
            msgs.append(("/camera/image_raw", rm.make_image(image, t, encoding=encoding), t + 3 * MS))
            if k not in skip_joint_ticks:
                # recorded order differs from the config's, with an extra joint in between
                pos, vel = joint_pos(e, k), joint_vel(e, k)
                msgs.append(("/joint_states", rm.make_joint_state(
                    ["elbow", "gripper", "shoulder"], [pos[1], 7.0, pos[0]], [vel[1], 8.0, vel[0]], t), t + 1 * MS))
            if k >= 1:
                msgs.append(("/mbrl/reward", rm.make_float64(reward(e, k)), t + 2 * MS))
            if k < steps:
                msgs.append(("/mbrl/commands", rm.make_commands(ACTION_SPEC.to_robot(action(e, k))), t + 10 * MS))
            exp["image"].append(image if encoding != "mono8" else np.repeat(image[..., None], 3, axis=2))
            exp["joints"].append(np.concatenate([joint_pos(e, k), joint_vel(e, k)]))
            exp["action"].append(np.zeros(2) if k == 0 else action(e, k - 1))
            exp["reward"].append(0.0 if k == 0 else reward(e, k))
            exp["is_first"].append(k == 0)
            exp["is_terminal"].append(k == steps and e == 0)
        terminal_t = int(ticks[-1]) + 2 * MS
        msgs.append(("/mbrl/terminal", rm.make_bool(e == 0), terminal_t))  # ep 0 terminated, ep 1 time limit
        expected.append({k: np.asarray(v) for k, v in exp.items()})
        start = int(ticks[-1]) + 3 * DT  # the reset takes a while
    return msgs, expected


def assert_episodes_equal(got, expected):
    assert len(got) == len(expected)
    for g, x in zip(got, expected):
        assert set(g) == set(x)
        for key in x:
            assert g[key].shape == x[key].shape, key
            np.testing.assert_allclose(g[key].astype(np.float64), x[key].astype(np.float64), atol=1e-5,
                                       err_msg=key)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_ingest_both_storages_shuffled_joints_bgr(tmp_path, storage):
    messages, expected = synthetic_recording()
    bag = write_bag_with_rosbags(tmp_path / "bag", messages, storage)
    cache = EpisodeCache(tmp_path / "cache")
    report = ingest_bags([bag], cache, make_config())
    assert report.errors == [] and report.warnings == []
    assert report.episodes == 2 and report.steps == 22
    assert_episodes_equal(cache.episodes(), expected)


def test_terminal_logged_with_the_next_start_keeps_that_episode(tmp_path):
    """A driver whose reset takes no time logs the old episode's terminal with the new one's
    start: it lands on the new episode's first tick, which no terminal can end (a step's
    terminal comes with its reward). It is skipped with a warning; both episodes stay whole."""
    messages, expected = synthetic_recording()
    second_start = sorted(t for topic, _, t in messages if topic == "/mbrl/episode")[1]
    messages.append(("/mbrl/terminal", rm.make_bool(False), second_start + 5 * MS))
    warnings = []
    got = bag_to_episodes(write_bag_with_rosbags(tmp_path / "bag", messages), make_config(), warnings.append)
    assert_episodes_equal(got, expected)
    assert len(warnings) == 1 and "1 terminal message(s) logged at an episode's first step" in warnings[0]


def test_mono8_is_resized_to_three_channels(tmp_path):
    messages, expected = synthetic_recording(encoding="mono8", image_shape=(12, 16))
    bag = write_bag_with_rosbags(tmp_path / "bag", messages)
    got = bag_to_episodes(bag, make_config(), warn=pytest.fail)
    for g, x in zip(got, expected):
        assert g["image"].shape == (11, H, W, 3)
        # frames are constant per channel, so area resizing keeps the values exactly
        np.testing.assert_array_equal(g["image"], x["image"][:, :H, :W])


def test_unknown_encoding_frame_skipped_with_warning(tmp_path):
    messages, _ = synthetic_recording(episodes=1)
    bad_t = 10_000 * MS + 3 * DT
    for i, (topic, msg, t) in enumerate(messages):
        if topic == "/camera/image_raw" and rm.stamp_ns(msg.header) == bad_t:
            msg.encoding = "yuv422"
            bad_frame_index = 3
    bag = write_bag_with_rosbags(tmp_path / "bag", messages)
    warnings = []
    (ep,) = bag_to_episodes(bag, make_config(), warnings.append)
    assert len(warnings) == 1
    assert str(bag) in warnings[0] and "/camera/image_raw" in warnings[0] and "t=10.150s" in warnings[0]
    assert "yuv422" in warnings[0]
    # tick 3 falls back on the latest good frame, tick 2's
    np.testing.assert_array_equal(ep["image"][bad_frame_index], ep["image"][bad_frame_index - 1])
    assert not np.array_equal(ep["image"][4], ep["image"][2])


def test_missing_topic_is_a_clear_error(tmp_path):
    messages, _ = synthetic_recording(episodes=1)
    bag = write_bag_with_rosbags(tmp_path / "bag", [m for m in messages if m[0] != "/mbrl/commands"])
    report = ingest_bags([bag], EpisodeCache(tmp_path / "cache"), make_config())
    assert report.episodes == 0
    (error,) = report.errors
    assert str(bag) in error and "/mbrl/commands" in error
    assert not EpisodeCache(tmp_path / "cache").has_source(report.bags[0].key)  # a fixed config may retry


def test_missing_joint_is_a_clear_error(tmp_path):
    messages, _ = synthetic_recording(episodes=1)
    bag = write_bag_with_rosbags(tmp_path / "bag", messages)
    with pytest.raises(IngestError, match=r"joint\(s\) \['wrist'\].*/joint_states|/joint_states.*'wrist'"):
        bag_to_episodes(bag, make_config(joint_names=("shoulder", "wrist")), warn=lambda w: None)


def test_reingest_is_a_noop(tmp_path):
    messages, _ = synthetic_recording()
    bag = write_bag_with_rosbags(tmp_path / "bag", messages)
    copy = tmp_path / "copy"
    shutil.copytree(bag, copy)  # same content under another name: still the same recording
    cache = EpisodeCache(tmp_path / "cache")
    first = ingest_bags([bag], cache, make_config())
    assert first.episodes == 2
    files = sorted(p.name for p in cache.paths())
    again = ingest_bags([bag, copy], EpisodeCache(tmp_path / "cache"), make_config())
    assert again.episodes == 0 and [b.status for b in again.bags] == ["already ingested"] * 2
    assert sorted(p.name for p in cache.paths()) == files
    # another config is another ingestion
    other = ingest_bags([bag], cache, make_config(max_gap_s=0.2))
    assert other.episodes == 2


def test_cache_keeps_every_source_with_similar_keys(tmp_path):
    """The agent adds one source per episode ("episode000000", "episode000001", ...): none may
    overwrite another (a fixed 12-character key prefix once mapped ten episodes onto one file)."""
    cache = EpisodeCache(tmp_path / "cache")
    rng = np.random.default_rng(0)
    for i in range(23):
        episode = {"joints": rng.normal(size=(4, 2)).astype(np.float32), "action": np.zeros((4, 1), np.float32),
                   "reward": np.full(4, float(i), np.float32), "is_first": np.eye(4, dtype=bool)[0],
                   "is_terminal": np.zeros(4, bool)}
        cache.add([episode], source_key=f"episode{i:06d}", source_name="agent")
    stored = EpisodeCache(tmp_path / "cache").episodes()
    assert sorted(float(ep["reward"][0]) for ep in stored) == [float(i) for i in range(23)]
    long_keys = [content_key("a"), content_key("b")]  # bag-segment hashes: long keys get a hash tag
    for key in long_keys:
        cache.add([stored[0]], source_key=key, source_name="bag")
    assert len(cache.paths()) == 25


def test_gap_splits_episode(tmp_path):
    steps = 20
    # joint states silent for ticks 8..15 (0.4 s) > max_gap 0.3 s
    messages, _ = synthetic_recording(episodes=1, steps=steps, skip_joint_ticks=range(8, 16))
    bag = write_bag_with_rosbags(tmp_path / "bag", messages)
    warnings = []
    eps = bag_to_episodes(bag, make_config(max_gap_s=0.3), warnings.append)
    assert [len(ep["reward"]) for ep in eps] == [8, steps + 1 - 16]
    assert all(ep["is_first"][0] and not ep["is_first"][1:].any() for ep in eps)
    assert any("gap" in w and "t=10.800s" in w for w in warnings)
    np.testing.assert_allclose(eps[1]["joints"][0][:2], joint_pos(0, 16))
    np.testing.assert_allclose(eps[1]["action"][1], action(0, 16), atol=1e-6)
    assert eps[1]["is_terminal"][-1] and not eps[0]["is_terminal"].any()


def test_rewards_in_one_interval_are_summed(tmp_path):
    messages, expected = synthetic_recording(episodes=1)
    extra_t = 10_000 * MS + 4 * DT - 20 * MS  # inside tick 4's window
    messages.append(("/mbrl/reward", rm.make_float64(0.5), extra_t))
    bag = write_bag_with_rosbags(tmp_path / "bag", messages)
    (ep,) = bag_to_episodes(bag, make_config(), warn=pytest.fail)
    assert ep["reward"][4] == pytest.approx(expected[0]["reward"][4] + 0.5)


def test_truncated_mcap_without_metadata_keeps_readable_part(tmp_path, caplog):
    # big frames so the MCAP holds several chunks (rosbags closes a chunk every 1 MiB)
    messages, expected = synthetic_recording(episodes=3, steps=60, image_shape=(96, 128))
    bag = write_bag_with_rosbags(tmp_path / "crashed", messages)
    mcap = next(bag.glob("*.mcap"))
    whole = len(list(scan_mcap(mcap, {"/joint_states"})))
    with mcap.open("r+b") as f:  # a crashed recorder: the file is cut, metadata.yaml never written
        f.truncate(int(mcap.stat().st_size * 0.6))
    (bag / "metadata.yaml").unlink()
    cache = EpisodeCache(tmp_path / "cache")
    config = make_config(image_size=(96, 128))
    with caplog.at_level(logging.WARNING, logger="mbrl_ros.data.bags"):
        report = ingest_bags([bag], cache, config)
    assert report.errors == []
    text = "\n".join(report.warnings)
    assert "no metadata.yaml" in text and f"{mcap.name} is truncated" in text and str(bag) in text
    assert "up to t=" in text  # the time of the last readable message
    assert text in caplog.text or all(w in caplog.text for w in report.warnings)
    kept = report.steps
    assert 0 < kept < sum(len(x["reward"]) for x in expected)
    # what was kept is exactly the start of the recording
    got = cache.episodes()
    for g, x in zip(got, expected):
        n = len(g["reward"])
        for key in ("joints", "image", "action"):
            np.testing.assert_allclose(g[key], x[key][:n], atol=1e-5, err_msg=key)
    assert 0 < len(list(scan_mcap(mcap, {"/joint_states"}))) < whole


def test_bag_being_written_is_skipped_until_grace(tmp_path):
    messages, _ = synthetic_recording(episodes=1)
    bag = write_bag_with_rosbags(tmp_path / "bag", messages)
    (bag / "metadata.yaml").unlink()
    report = ingest_bags([bag], EpisodeCache(tmp_path / "cache"), make_config(active_grace_s=60.0))
    assert [b.status for b in report.bags] == ["recording"] and report.episodes == 0
    report = ingest_bags([bag], EpisodeCache(tmp_path / "cache"), make_config(active_grace_s=0.0))
    assert report.episodes == 1


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_segmented_writer_rolls_and_segments_read_back(tmp_path, storage):
    messages, expected = synthetic_recording(episodes=3)
    root = tmp_path / "rec"
    closed = []
    writer = SegmentedBagWriter(root, prefix="log", storage=storage, max_segment_s=0.3,
                                split_topic="/mbrl/episode", on_segment_closed=closed.append)
    ts = rm.typestore()
    for topic, msg, t in sorted(messages, key=lambda m: m[2]):
        assert writer.write_raw(topic, msg.__msgtype__, t, bytes(ts.serialize_cdr(msg, msg.__msgtype__)))
        if topic == "/mbrl/episode" and t > 10_000 * MS:
            # rolled exactly at the episode start: the new segment begins with it
            assert writer.current_path == root / f"log_{len(closed):04d}"
    open_segment = writer.current_path
    assert len(closed) == 2 and (open_segment / ".recording.lock").exists()
    # a live segment is skipped by ingest, closed ones are complete bags
    report = ingest_bags([root], EpisodeCache(tmp_path / "cache"), make_config())
    assert [b.status for b in report.bags] == ["ingested", "ingested", "recording"]
    writer.close()
    assert [p.name for p in closed] == ["log_0000", "log_0001", "log_0002"]
    for path in closed:
        assert (path / "metadata.yaml").exists() and not (path / ".recording.lock").exists()
        with Reader(path) as reader:
            assert reader.message_count > 0
    cache = EpisodeCache(tmp_path / "cache")
    report = ingest_bags([root], cache, make_config())
    assert [b.status for b in report.bags] == ["already ingested", "already ingested", "ingested"]
    assert_episodes_equal(cache.episodes(), expected)


def test_disk_cap_stops_recording_with_warning(tmp_path, caplog):
    root = tmp_path / "rec"
    payload = rm.make_float64(1.0)
    with caplog.at_level(logging.WARNING):
        with SegmentedBagWriter(root, max_segment_s=0.1, max_total_bytes=20_000, on_full="stop") as w:
            results = [w.write("/mbrl/reward", payload, i * 10 * MS) for i in range(2000)]
    assert results[0] and not results[-1] and w.stopped and w.dropped_messages > 0
    assert "disk cap" in caplog.text and "STOPPED" in caplog.text
    assert w.disk_usage() <= 20_000 + 5000  # metadata.yaml is only written at close
    for seg in w.closed_segments:
        with Reader(seg) as reader:
            assert reader.message_count > 0


def test_disk_cap_delete_oldest(tmp_path, caplog):
    root = tmp_path / "rec"
    with caplog.at_level(logging.WARNING):
        with SegmentedBagWriter(root, max_segment_s=0.1, max_total_bytes=30_000, on_full="delete_oldest") as w:
            assert all(w.write("/mbrl/reward", rm.make_float64(i), i * 10 * MS) for i in range(400))
    names = sorted(p.name for p in root.iterdir())
    assert names[0] != "segment_0000" and "deleting the oldest segment" in caplog.text
    assert sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) <= 30_000 + 10_000


def test_bag_writer_raw_and_objects_round_trip(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path, storage="sqlite3") as w:
        w.write("/mbrl/reward", rm.make_float64(2.5), 5)
        w.write_raw("/mbrl/episode", rm.INT64, 7, rm.serialize(rm.make_int64(3)))
        with pytest.raises(ValueError, match="/mbrl/reward already carries"):
            w.write("/mbrl/reward", rm.make_int64(1), 8)
        with pytest.raises(ValueError, match="unknown"):
            w.write_raw("/x", "my_msgs/msg/Nope", 9, b"\x00\x01\x00\x00")
    with Reader(path) as reader:
        got = {c.topic: (t, rm.deserialize(d, c.msgtype).data) for c, t, d in reader.messages()}
    assert got == {"/mbrl/reward": (5, 2.5), "/mbrl/episode": (7, 3)}


def test_config_from_yaml(tmp_path):
    path = tmp_path / "ingest.yaml"
    config = make_config(reward_topic="/robot/reward")
    import yaml

    path.write_text(yaml.safe_dump({"ingest": config.to_dict()}))
    assert IngestConfig.from_yaml(path) == config
    path.write_text("joint_names: [a]\naction_spec: {dim: 1}\nbogus: 1\n")
    with pytest.raises(ValueError, match="bogus"):
        IngestConfig.from_yaml(path)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_collect_then_ingest_reproduces_rollout(tmp_path, storage):
    envs = pytest.importorskip("mbrl_ros.envs")
    from mbrl_ros.data.collect_cli import collect
    from mbrl_ros.data.episodes import random_policy, rollout_episode

    env_id = "mbrl_ros/Reacher2D-v0"
    collect(env_id, episodes=2, out=tmp_path / "bags", seed=3, storage=storage, image_size=32, max_steps=15,
            progress=False)
    config = IngestConfig.from_yaml(tmp_path / "bags" / "ingest.yaml")
    cache = EpisodeCache(tmp_path / "cache")
    report = ingest_bags([tmp_path / "bags"], cache, config)
    assert report.errors == [] and report.episodes == 2
    env = envs.make(env_id, image_size=32)
    expected = [rollout_episode(env, random_policy(2), seed=3 + i, max_steps=15) for i in range(2)]
    env.close()
    assert_episodes_equal(cache.episodes(), expected)
    # the shoulder is an unlimited hinge: the recorded config says so, and the cache keeps the spec
    assert config.continuous_joints == ("shoulder",)
    assert cache.obs_spec == config.obs_spec and cache.obs_spec.angle_joints == (0,)
    # ... and the robot's command limits, which training from the cache puts into the bundle
    assert cache.action_spec == config.action_spec == env.unwrapped.action_spec
    assert EpisodeCache(tmp_path / "cache").action_spec == config.action_spec  # read back from the index


def test_continuous_joints_map_to_angle_entries():
    config = make_config(joint_names=["a", "b", "c"], continuous_joints=["c"])
    assert config.obs_spec.angle_joints == (2,)          # positions come first
    assert config.obs_spec.joint_names[2] == "c.pos"
    assert "continuous_joints" not in make_config().to_dict()  # older configs keep their fingerprint
    with pytest.raises(ValueError, match=r"continuous_joints \['d'\]"):
        make_config(joint_names=["a"], continuous_joints=["d"])


def test_collect_terminal_topic_marks_time_limit_not_terminal(tmp_path):
    envs = pytest.importorskip("mbrl_ros.envs")
    from mbrl_ros.data.collect_cli import collect

    collect("mbrl_ros/CartpoleSwingup-v0", episodes=1, out=tmp_path / "bags", image_size=16, progress=False)
    env = envs.make("mbrl_ros/CartpoleSwingup-v0", image_size=16)
    steps = env.unwrapped.episode_steps
    env.close()
    warnings = []
    config = IngestConfig.from_yaml(tmp_path / "bags" / "ingest.yaml")
    (ep,) = bag_to_episodes(next((tmp_path / "bags").glob("collect_*")), config, warnings.append)
    assert warnings == [] and len(ep["reward"]) == steps + 1 and not ep["is_terminal"].any()


def test_sqlite3_bag_without_metadata_is_read(tmp_path):
    messages, expected = synthetic_recording()
    bag = write_bag_with_rosbags(tmp_path / "bag", messages, storage="sqlite3")
    (bag / "metadata.yaml").unlink()
    warnings = []
    got = bag_to_episodes(bag, make_config(), warnings.append)
    assert len(warnings) == 1 and "no metadata.yaml" in warnings[0] and str(bag) in warnings[0]
    assert_episodes_equal(got, expected)


def test_cli_collect_and_ingest(tmp_path, capsys):
    pytest.importorskip("mbrl_ros.envs")
    from mbrl_ros.cli import main

    out, cache = tmp_path / "bags", tmp_path / "cache"
    assert main(["collect", "--env", "mbrl_ros/CartpoleSwingup-v0", "--episodes", "2", "--policy", "scripted",
                 "--image-size", "16", "--max-steps", "5", "--out", str(out), "--storage", "sqlite3"]) == 0
    args = ["ingest", "--bags", str(out), "--cache", str(cache), "--config", str(out / "ingest.yaml")]
    assert main(args) == 0
    assert "2 new episodes, 12 steps" in capsys.readouterr().err
    assert main(args) == 0
    assert "1 already ingested; 0 new episodes" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text((out / "ingest.yaml").read_text().replace("/mbrl/commands", "/nope"))
    assert main(["ingest", "--bags", str(out), "--cache", str(cache), "--config", str(broken)]) == 1
    assert "required topic /nope" in capsys.readouterr().err


def test_damaged_middle_chunk_keeps_later_chunks(tmp_path):
    import struct

    messages, expected = synthetic_recording(episodes=3, steps=60, image_shape=(96, 128))
    bag = write_bag_with_rosbags(tmp_path / "bag", messages)
    mcap = next(bag.glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    chunks, pos = [], 8
    while data[pos] != 0x02:  # walk the top-level records up to the footer
        if data[pos] == 0x06:
            chunks.append(pos)
        pos += 9 + struct.unpack_from("<Q", data, pos + 1)[0]
    assert len(chunks) >= 4
    garbage_at = chunks[2] + 9 + 40 + 200  # inside the third chunk's message records
    data[garbage_at:garbage_at + 60] = b"\xff" * 60
    mcap.write_bytes(bytes(data))
    warnings = []
    eps = bag_to_episodes(bag, make_config(image_size=(96, 128)), warnings.append)
    text = "\n".join(warnings)
    assert "damaged chunk" in text and str(bag) in text
    # the chunks after the damage are read: the last episode is whole, with its time-limit flag
    assert_episodes_equal(eps[-1:], expected[-1:])
    assert sum(len(e["reward"]) for e in eps) < sum(len(x["reward"]) for x in expected)
