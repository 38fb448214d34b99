"""DeepMind Control Suite tasks as package envs (mbrl_ros/envs/dmc.py), against dm_control's own suite.

The suite itself is the reference: same seed and actions -> the package env's reward per agent
step is exactly the sum of the suite's rewards over the action repeat, every frame of a full
1000-frame episode. Then the sim node's core (SimLoop) and the real sim node process run them.
"""
import json
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

pytest.importorskip("dm_control")
from dm_control import suite  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import mbrl_ros.envs as envs  # noqa: E402
from mbrl_ros.envs.dmc import DMC_TASKS, dmc_id  # noqa: E402
from mbrl_ros.envs.sim_loop import SimLoop, SimRates  # noqa: E402
from mbrl_ros.nodes.observation import joint_names_for  # noqa: E402
from mbrl_ros.runtime.safety import CommandGate  # noqa: E402

EXPECTED = {  # (joints entries, action dim, agent steps per episode at action repeat 2)
    "cartpole_swingup": (5, 1, 500),
    "reacher_easy": (6, 2, 500),
    "cheetah_run": (17, 6, 500),
    "walker_walk": (24, 6, 500),
}


def suite_rollout(task: str, seed: int, actions: np.ndarray, repeat: int, episodes: int = 1):
    """Per agent step: summed suite rewards and the suite's flattened observation, over `episodes`
    consecutive episodes of one suite env (the second continues the task's random stream)."""
    domain, name = task.split("_", 1)
    env = suite.load(domain, name, task_kwargs={"random": seed})
    out = []
    for _ in range(episodes):
        ts = env.reset()
        rewards, joints = [], [np.concatenate([np.ravel(v) for v in ts.observation.values()])]
        for a in actions:
            total = 0.0
            for _ in range(repeat):
                ts = env.step(a)
                total += ts.reward
            rewards.append(total)
            joints.append(np.concatenate([np.ravel(v) for v in ts.observation.values()]))
        assert ts.last()  # the actions fill exactly one suite episode
        out.append((np.array(rewards), np.array(joints, np.float32)))
    return out


@pytest.mark.parametrize("task", DMC_TASKS)
def test_rewards_are_the_suites(task):
    env = envs.make(dmc_id(task), render_image=False)
    u = env.unwrapped
    assert u.action_repeat == 2 and u.episode_steps == EXPECTED[task][2]
    rng = np.random.default_rng(5)
    actions = rng.uniform(-1, 1, (u.episode_steps, u.action_spec.dim))
    reference = suite_rollout(task, 11, actions, u.action_repeat, episodes=2)
    for episode, (ref_rewards, ref_joints) in enumerate(reference):
        # episode 0 from the seed; episode 1 continues the task's random stream as the suite does
        obs, _ = env.reset(seed=11 if episode == 0 else None)
        rewards, joints = [], [obs["joints"]]
        for i, a in enumerate(actions):
            obs, r, term, trunc, info = env.step(a)
            rewards.append(r), joints.append(obs["joints"])
            assert not term and trunc == (i == len(actions) - 1)
        assert info["frames"] == 1000
        np.testing.assert_array_equal(np.array(rewards), ref_rewards)  # bit-exact: the same code ran
        np.testing.assert_array_equal(np.array(joints), ref_joints)
    assert ref_rewards.sum() > 0 or task == "reacher_easy"  # the reward really moved


@pytest.mark.parametrize("task", DMC_TASKS)
def test_observation_action_spec_and_names(task):
    env = envs.make(dmc_id(task), image_size=64)
    u = env.unwrapped
    n_joints, n_act, _ = EXPECTED[task]
    obs, _ = env.reset(seed=0)
    assert obs["image"].dtype == np.uint8 and obs["image"].shape == (64, 64, 3)
    assert obs["image"].std() > 5  # a rendered scene, not a blank frame
    assert obs["joints"].shape == (n_joints,) and obs["joints"].dtype == np.float32
    assert len(u.obs_spec.joint_names) == n_joints and len(set(u.obs_spec.joint_names)) == n_joints
    assert not any(n.startswith(("position[", "velocity[")) for n in u.obs_spec.joint_names)  # real names
    # JointState carries one entry per element (positions only): what the controller and bag ingestion read
    assert joint_names_for(u.obs_spec) == (list(u.obs_spec.joint_names), False)
    assert tuple(u.joint_names) == u.obs_spec.joint_names
    assert u.action_spec.dim == n_act == env.action_space.shape[0]
    assert u.action_spec.low == (-1.0,) * n_act and u.action_spec.high == (1.0,) * n_act
    assert len(u.action_spec.names) == n_act and all(u.action_spec.names)
    assert u.control_dt == pytest.approx(u.physics_dt * u.frame_skip) and u.frame_skip == 2
    u.obs_spec.validate(obs)
    assert env.observation_space.contains(obs)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(n_act, np.nan))
    check_env(u, skip_render_check=True)


def test_pixels_only_and_bad_arguments():
    u = envs.make(dmc_id("cartpole_swingup"), proprio=False).unwrapped
    obs, _ = u.reset(seed=0)
    assert obs["joints"].shape == (0,) and u.obs_spec.joint_dim == 0 and obs["image"].shape == (64, 64, 3)
    assert envs.make(dmc_id("walker_walk"), action_repeat=4, render_image=False).unwrapped.episode_steps == 250
    with pytest.raises(ValueError, match="does not divide"):
        envs.make(dmc_id("cartpole_swingup"), action_repeat=3)
    with pytest.raises(ValueError, match="nothing to observe"):
        envs.make(dmc_id("cartpole_swingup"), proprio=False, render_image=False)
    from mbrl_ros.envs.dmc import DMCEnv

    with pytest.raises(ValueError, match="unknown DeepMind Control task"):
        DMCEnv("cartpole_nope")
    short = envs.make(dmc_id("cartpole_swingup"), episode_steps=3, render_image=False)
    short.reset(seed=0)
    assert [short.step([0.0])[3] for _ in range(3)] == [False, False, True]


@pytest.mark.parametrize("task", DMC_TASKS)
def test_sim_loop_runs_them_with_the_same_rewards(task):
    """The sim node's core (command gate -> held command -> frames -> reward per control period)
    gives the rewards env.step() gives for the same commands."""
    env = envs.make(dmc_id(task), render_image=False, episode_steps=20)
    u = env.unwrapped
    gate = CommandGate(u.action_spec, timeout_s=10.0)
    loop = SimLoop(env, SimRates(joint_state_hz=1 / u.control_dt, camera_hz=1.0, clock_hz=1 / u.control_dt),
                   gate, seed=4, render_camera=False)
    command = np.linspace(-0.8, 0.8, u.action_spec.dim)
    gate.submit(command, now=loop.time)
    rewards, ends = [], []
    while len(ends) < 1:
        ev = loop.advance()
        if ev.reward is not None:
            rewards.append(ev.reward)
        if ev.episode_end is not None:
            ends.append(ev.episode_end)
    assert ends == [False] and len(rewards) == 20
    ref = envs.make(dmc_id(task), render_image=False, episode_steps=20)
    ref.reset(seed=4)
    expected = [ref.step(command)[1] for _ in range(20)]
    np.testing.assert_array_equal(rewards, expected)


@pytest.mark.ros
@pytest.mark.parametrize("task", DMC_TASKS)
def test_sim_node_publishes_a_dmc_task(task, tmp_path):
    """The real sim node process on a DMC task: image, named joint state entries, rewards, and a
    command it obeys."""
    from tests.ros_helpers import node_process, spin_until, stop, ros_node
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64, Float64MultiArray

    from mbrl_ros.nodes.common import COMMAND_QOS, EVENT_QOS, SENSOR_QOS

    log = tmp_path / "sim.log"
    proc = node_process("mbrl_ros.nodes.sim_node", "-p", f"env_id:={dmc_id(task)}", "-p", "real_time_factor:=0.0",
                        "-p", "camera_rate_hz:=10.0", "-p", "seed:=1", log_path=log)
    try:
        with ros_node() as node:
            images, joints, rewards = [], [], []
            node.create_subscription(Image, "/camera/image_raw", images.append, SENSOR_QOS)
            node.create_subscription(JointState, "/joint_states", joints.append, SENSOR_QOS)
            node.create_subscription(Float64, "/mbrl/reward", rewards.append, EVENT_QOS)
            pub = node.create_publisher(Float64MultiArray, "/mbrl/commands", COMMAND_QOS)
            n_act = EXPECTED[task][1]
            ok = spin_until(node, lambda: (pub.publish(Float64MultiArray(data=[0.5] * n_act)) or True)
                            and len(images) >= 2 and len(joints) >= 5 and len(rewards) >= 5, 60, [proc])
            assert ok, log.read_text()[-3000:]
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    u = envs.make(dmc_id(task), render_image=False).unwrapped
    js = joints[-1]
    assert list(js.name) == list(u.obs_spec.joint_names) and len(js.position) == EXPECTED[task][0]
    assert (images[-1].height, images[-1].width, images[-1].encoding) == (64, 64, "rgb8")
    assert all(np.isfinite(r.data) for r in rewards)


# ------------------------------------------------------------------ agent configs and smoke runs
CONFIGS = {task: Path(__file__).resolve().parent.parent / "config" / "agent" / f"dmc_{task}.yaml" for task in DMC_TASKS}


def test_configs_differ_only_in_the_task():
    """One protocol for the four tasks: same planner, model, budget and evaluation; 100k frames;
    an evaluation at least every 10k frames on >= 5 fixed episodes."""
    from mbrl_ros.agent.config import AgentConfig

    loaded = {task: AgentConfig.load(path).to_dict() for task, path in CONFIGS.items()}
    for task, d in loaded.items():
        env = envs.make(d["env_id"], **d["env_kwargs"]).unwrapped
        assert d["env_id"] == dmc_id(task) and d["name"] == f"dmc_{task}"
        assert d["mbrl"]["budget"] * env.frame_skip == 100_000
        assert d["eval"]["every"] * env.frame_skip <= 10_000 and d["eval"]["episodes"] >= 5
        assert d["env_kwargs"]["proprio"] is False  # pixels only, as the published scores
    strip = lambda d: {k: v for k, v in d.items() if k not in ("name", "env_id", "threshold", "source")}  # noqa: E731
    first = strip(loaded[DMC_TASKS[0]])
    for task in DMC_TASKS[1:]:
        assert strip(loaded[task]) == first, task


def _smoke_config(tmp_path, task: str) -> Path:
    """The task's config with a tiny model, 12-step episodes and one eval episode (CI-sized)."""
    path = tmp_path / f"smoke_{task}.yaml"
    path.write_text(f"extends: {CONFIGS[task]}\n"
                    f"task: {{name: smoke_{task}, env_kwargs: {{episode_steps: 12}}}}\n"
                    "eval: {every: 12, episodes: 1}\n"
                    "mbrl: {preset: tiny, seed_episodes: 1, pretrain_steps: 2, update_every: 12, fused_horizon: 4,\n"
                    "       planner_config: {num_samples: 16, num_elites: 4, iterations: 1}}\n")
    return path


def _agent_run(config: Path, out: Path, budget: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mbrl_ros.cli", "agent", "run", "--config", str(config), "--method", "mbrl",
           "--budget", str(budget), "--out", str(out), "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=CONFIGS[DMC_TASKS[0]].parents[2])


@pytest.mark.slow
def test_random_episode_cache_holds_the_runs_observation(tmp_path):
    """scripts/random_episode_cache.py writes held-out episodes with the env kwargs a pixels-only run
    used (no joints, which bags cannot carry), the suite's rewards and episode seeds seed + i."""
    from mbrl_ros.data.episodes import EpisodeCache
    from tests.script_module import load_script

    script = load_script("random_episode_cache")
    out = tmp_path / "held"
    assert script.main(["--env", dmc_id("reacher_easy"), "--env-kwargs", '{"proprio": false, "episode_steps": 6}',
                        "--episodes", "2", "--seed", "7", "--out", str(out)]) == 0
    cache = EpisodeCache(out)
    episodes = cache.episodes()
    assert len(episodes) == 2 and cache.obs_spec.joint_dim == 0 and cache.action_spec.dim == 2
    assert episodes[0]["joints"].shape == (7, 0) and episodes[0]["image"].shape == (7, 64, 64, 3)
    obs, _ = envs.make(dmc_id("reacher_easy"), proprio=False).reset(seed=8)  # the second episode's seed
    assert np.array_equal(obs["image"], episodes[1]["image"][0])


def test_collect_records_a_dmc_task_into_bags(tmp_path):
    """`mbrl-ros collect --env-kwargs` on a DMC task: the ingested bag holds the rollout the package env
    gives for the same kwargs and seeds (the suite's rewards, action repeat 2); pixels only is refused."""
    from mbrl_ros.cli import main
    from mbrl_ros.data.bags import IngestConfig, ingest_bags
    from mbrl_ros.data.episodes import EpisodeCache, random_policy, rollout_episode
    from tests.test_bags import assert_episodes_equal

    out, kwargs = tmp_path / "bags", {"action_repeat": 2, "episode_steps": 8}
    assert main(["collect", "--env", dmc_id("cartpole_swingup"), "--env-kwargs", json.dumps(kwargs), "--episodes", "2",
                 "--seed", "5", "--image-size", "32", "--out", str(out)]) == 0
    config = IngestConfig.from_yaml(out / "ingest.yaml")
    assert config.control_rate_hz == pytest.approx(50.0)  # the suite's 0.01 s control step x repeat 2
    cache = EpisodeCache(tmp_path / "cache")
    assert ingest_bags([out], cache, config).errors == []
    env = envs.make(dmc_id("cartpole_swingup"), image_size=32, **kwargs)
    expected = [rollout_episode(env, random_policy(1), seed=5 + i) for i in range(2)]
    env.close()
    assert_episodes_equal(cache.episodes(), expected)
    assert all(e["reward"][1:].min() > 0 for e in expected)  # a dense reward: real values were compared
    with pytest.raises(SystemExit, match="observes no joints"):
        main(["collect", "--env", dmc_id("reacher_easy"), "--env-kwargs", '{"proprio": false}', "--episodes", "1",
              "--out", str(tmp_path / "none")])
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("task", DMC_TASKS)
def test_agent_smoke_run(task, tmp_path):
    """`mbrl-ros agent run --method mbrl` end to end on the task (pixels only): seed episode, train,
    export, plan through the controller core, evaluate; frames = agent steps x action repeat."""
    from mbrl_ros.agent.runlog import read_evals

    out = tmp_path / "run"
    proc = _agent_run(_smoke_config(tmp_path, task), out, 24)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_evals(out / "evals.csv")
    assert [r["env_steps"] for r in rows] == [0, 12, 24]
    assert [r["frames"] for r in rows] == [0, 24, 48]
    assert all(np.isfinite(r["return_mean"]) for r in rows)
    assert (out / "models" / "CURRENT").exists()
    meta = json.loads((out / "run.json").read_text())  # where the wall clock went, by phase
    phases = meta["wall_by_phase"]
    assert phases["env_steps"] == 24 and phases["wall_s"] == pytest.approx(meta["wall_s"], abs=0.05)
    assert set(phases["seconds"]) == {"train", "save", "export", "act", "env", "eval"}
    assert all(v > 0 for v in phases["seconds"].values()) and sum(phases["seconds"].values()) < phases["wall_s"]
    if task == "reacher_easy":  # the run folder is what scripts/filter_reconstructions.py reads
        import imageio.v2 as imageio

        from tests.script_module import load_script

        script = load_script("filter_reconstructions")
        assert script.main(["--run", str(out), "--out", str(tmp_path / "filter.png"), "--scale", "1"]) == 0
        strip = imageio.imread(tmp_path / "filter.png")  # real over reconstructed, per episode, step 1 only
        assert strip.shape[1] == 64 and strip.shape[0] % 128 == 0 and strip.shape[0] >= 256


@pytest.mark.slow
def test_agent_run_resumes_in_a_moved_folder(tmp_path):
    """What a run folder keeps (checkpoint, episode cache, models, state.json, evals) is enough to
    continue it elsewhere: copy it to another path (another machine) and run on to a larger budget."""
    import json
    import shutil

    from mbrl_ros.agent.runlog import read_evals

    config = _smoke_config(tmp_path, "cartpole_swingup")
    first = tmp_path / "machine_a" / "run"
    assert (proc := _agent_run(config, first, 24)).returncode == 0, proc.stderr[-3000:]
    moved = tmp_path / "machine_b" / "elsewhere" / "run"
    shutil.copytree(first, moved)
    shutil.rmtree(first)  # nothing may point back at the first folder
    assert (proc := _agent_run(config, moved, 36)).returncode == 0, proc.stderr[-3000:]
    rows = read_evals(moved / "evals.csv")
    assert [r["env_steps"] for r in rows] == [0, 12, 24, 36]
    state = json.loads((moved / "state.json").read_text())
    assert state["env_steps"] == 36 and state["episodes"] == 3 and state["train_steps"] > 14
    meta = json.loads((moved / "run.json").read_text())  # the phase clock adds up over both sessions
    assert meta["sessions"] == 2 and meta["wall_by_phase"]["env_steps"] == 36
    assert meta["wall_by_phase"]["wall_s"] == pytest.approx(meta["wall_s"], abs=0.05)


# ------------------------------------------------------------------ the comparison report
def _write_run(folder: Path, finals: float, role: str = "reported", wall_per_frame: float = 0.05,
               phases: Optional[dict] = None):
    import json

    folder.mkdir(parents=True)
    lines = ["env_steps,frames,return_mean,return_std,returns,wall_s"]
    for steps in range(0, 50_001, 5000):
        ret = finals * steps / 50_000
        lines.append(f"{steps},{2 * steps},{ret},0.0,{ret};{ret},{wall_per_frame * 2 * steps}")
    (folder / "evals.csv").write_text("\n".join(lines) + "\n")
    meta = {"protocol": {"role": role}, "frame_skip": 2}
    if phases:
        meta["wall_by_phase"] = phases
    (folder / "run.json").write_text(json.dumps(meta))


def test_dmc_report_on_synthetic_runs(tmp_path):
    import json

    from mbrl_ros.agent import dmc_report

    results = tmp_path / "results"
    for seed, final in zip((0, 1, 2), (500.0, 600.0, 700.0)):
        # seed 1 timed its phases over its last 1000 agent steps (2000 frames): 300 s in all
        phases = {"wall_s": 300.0, "env_steps": 1000, "seconds": {"train": 180.0, "act": 60.0, "env": 20.0}}
        _write_run(results / "dmc_cartpole_swingup" / "mbrl" / f"seed{seed}", final,
                   phases=phases if seed == 1 else None)
    _write_run(results / "dmc_cartpole_swingup" / "mbrl" / "seed100", 1000.0, role="tuning")  # never reported
    # a run stopped short of 100k frames: reported at the last frame count it reached
    _write_run(results / "dmc_walker_walk" / "mbrl" / "seed0", 300.0)
    evals = results / "dmc_walker_walk" / "mbrl" / "seed0" / "evals.csv"
    evals.write_text("\n".join(evals.read_text().splitlines()[:6]) + "\n")  # up to 40k frames
    assert dmc_report.main(["--results", str(results), "--out", str(tmp_path / "docs")]) == 0
    rows = {r["task"]: r for r in json.loads((tmp_path / "docs" / "dmc_results.json").read_text())}
    cart = rows["cartpole_swingup"]
    assert cart["frames"] == 100_000 and cart["seeds"] == [0, 1, 2]
    assert cart["mean"] == pytest.approx(600.0)
    assert 500.0 <= cart["ci"][0] < 600.0 < cart["ci"][1] <= 700.0
    assert cart["wall_s_per_1000_frames"] == pytest.approx(50.0)
    assert cart["published"]["DreamerV3"] == [550, 844]
    assert rows["walker_walk"]["frames"] == 40_000 and rows["walker_walk"]["mean"] == pytest.approx(120.0)
    assert "mean" not in rows["reacher_easy"]  # no runs: published points only
    text = (tmp_path / "docs" / "dmc_results.md").read_text()
    assert "| cartpole_swingup | 600 [" in text and "no runs" in text
    # one seed, still running: no interval, and said to be behind
    assert "| walker_walk | 120 (1) (at 40000 frames) |" in text
    assert "Runs in progress" in text and "walker_walk seed 0 at 40000 frames" in text
    # per 1000 frames: train 90, act 30, env 10, other 20 (untimed), total 150; untimed runs left out
    assert "| cartpole_swingup seed 1 | 2000 | 90 | 30 | 10 | 0 | 0 | 0 | 20 | 150 |" in text
    assert "seed 0 |" not in text.split("## Where the wall clock goes")[1]
    assert cart["wall_s_per_1000_frames_by_phase"]["1"]["total"] == pytest.approx(150.0)
    assert rows["walker_walk"]["in_progress"] == {"0": 40_000} and cart["in_progress"] == {}
    for task in DMC_TASKS:
        assert (tmp_path / "docs" / "img" / f"dmc_{task}.png").stat().st_size > 10_000
    assert dmc_report.bootstrap_ci([3.0]) == (3.0, 3.0)
    # tuning runs: the base config's and a variant's, plotted apart from the reported ones
    _write_run(results / "dmc_cartpole_swingup_shift" / "mbrl" / "seed101", 800.0, role="tuning")
    _write_run(results / "dmc_cartpole_swingup_shift" / "mbrl" / "seed0", 800.0)  # not a tuning run
    tuning = dmc_report.load_tuning_runs(results, "cartpole_swingup")
    assert sorted(tuning) == ["base config s100", "shift s101"]
    assert tuning["shift s101"][-1]["return_mean"] == pytest.approx(800.0)
    assert (tmp_path / "docs" / "img" / "dmc_tuning_cartpole_swingup.png").stat().st_size > 10_000
    assert not (tmp_path / "docs" / "img" / "dmc_tuning_walker_walk.png").exists()  # no tuning runs
