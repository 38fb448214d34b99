"""The online trainer without ROS: closed bag segments in, a published bundle out."""
import threading

import pytest

import mbrl_ros.envs as envs
from mbrl_ros.data.bags import IngestConfig
from mbrl_ros.data.collect_cli import collect
from mbrl_ros.runtime.model_store import ModelStore
from mbrl_ros.runtime.store_layout import read_current
from mbrl_ros.training.online import OnlineConfig, OnlineTrainer


@pytest.fixture(scope="module")
def ingest_config():
    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=32, render_image=True)
    cfg = IngestConfig.for_env(env, active_grace_s=0.0)
    env.close()
    return cfg


def test_ingests_trains_and_publishes(tmp_path, ingest_config):
    bags = tmp_path / "bags"
    collect("mbrl_ros/Reacher2D-v0", 2, bags, seed=0, image_size=32, max_steps=20, progress=False, prefix="a")
    online = OnlineTrainer(OnlineConfig(bag_dir=bags, work_dir=tmp_path / "work", model_store=tmp_path / "models",
                                        ingest=ingest_config, preset="tiny", train_ratio=1.0, chunk_steps=5,
                                        export_every=10, fused_horizon=4))
    assert online.poll_data() == 40
    assert online.poll_data() == 0  # the same segments again: nothing new
    taken = 0
    while online.steps_owed >= 1:
        taken += online.train_some()
    assert taken == 40 and online.trainer.step == 40
    assert online.exports >= 1 and read_current(tmp_path / "models") == online.last_version
    store = ModelStore(tmp_path / "models", required=True)
    assert store.current.manifest.fused_horizon == 4
    assert store.current.obs_spec == ingest_config.obs_spec

    # a new segment arrives: more steps are owed, and the checkpoint resumes after a restart
    collect("mbrl_ros/Reacher2D-v0", 1, bags, seed=7, image_size=32, max_steps=20, progress=False, prefix="b")
    assert online.poll_data() == 20
    restarted = OnlineTrainer(online.config)
    restarted.poll_data()
    assert restarted.trainer.step == online.trainer.step


def test_bad_segment_does_not_stop_the_loop(tmp_path, ingest_config):
    bags = tmp_path / "bags"
    bad = bags / "segment_0000"
    bad.mkdir(parents=True)
    (bad / "segment_0000.mcap").write_bytes(b"\x89MCAP0\r\n" + b"garbage" * 100)
    online = OnlineTrainer(OnlineConfig(bag_dir=bags, work_dir=tmp_path / "w", model_store=tmp_path / "m",
                                        ingest=ingest_config, preset="tiny"))
    stop = threading.Event()
    worker = threading.Thread(target=online.run, args=(stop, 0.1))
    worker.start()
    stop.wait(1.0)
    stop.set()
    worker.join(10)
    assert not worker.is_alive()
    assert online.trainer is None and online.exports == 0


def test_an_exception_in_training_ends_the_run_and_is_kept(tmp_path, ingest_config):
    """A checkpoint that does not load is the trainer's failure, not bad data: run() stops (no
    endless 'ingest failed' retries that look like training) and keeps the exception."""
    bags = tmp_path / "bags"
    collect("mbrl_ros/Reacher2D-v0", 1, bags, seed=0, image_size=32, max_steps=10, progress=False)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    online = OnlineTrainer(OnlineConfig(bag_dir=bags, work_dir=tmp_path / "w", model_store=tmp_path / "m",
                                        ingest=ingest_config, init_checkpoint=broken, preset="tiny"))
    stop = threading.Event()
    worker = threading.Thread(target=online.run, args=(stop, 0.1))
    worker.start()
    worker.join(30)
    assert not worker.is_alive() and not stop.is_set()  # it ended by itself
    assert online.failure and online.failure.startswith("ValueError: checkpoint") and "corrupt" in online.failure
    assert online.status()["failure"] == online.failure and online.trainer is None
    with pytest.raises(ValueError, match="corrupt or truncated"):
        online.run(threading.Event(), 0.1, raise_errors=True)  # the node's way: raised to the caller


def test_owed_steps_are_capped_when_training_falls_behind(tmp_path, ingest_config):
    """A robot that logs faster than the trainer trains must not leave an ever-growing backlog."""
    bags = tmp_path / "bags"
    collect("mbrl_ros/Reacher2D-v0", 2, bags, seed=0, image_size=32, max_steps=20, progress=False, prefix="a")
    online = OnlineTrainer(OnlineConfig(bag_dir=bags, work_dir=tmp_path / "w", model_store=tmp_path / "m",
                                        ingest=ingest_config, preset="tiny", train_ratio=1.0, chunk_steps=5,
                                        max_steps_owed=15))
    assert online.poll_data() == 40
    assert online.steps_owed == 15 and online.steps_dropped == 25
    assert online.status()["steps_dropped"] == "25"
    assert online.train_some() == 5 and online.steps_owed == 10
    with pytest.raises(ValueError, match="max_steps_owed"):
        OnlineConfig(bag_dir=bags, work_dir=tmp_path, model_store=tmp_path, ingest=ingest_config, max_steps_owed=-1)
