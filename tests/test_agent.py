"""The agent loop end to end (real MuJoCo, torch training, ONNX runtime planning), the SB3
baselines through the same CLI and step accounting, resuming, and the report.

    .venv/bin/python -m pytest tests/test_agent.py -q
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from mbrl_ros.agent.config import EVAL_SEED_BASE, AgentConfig, EvalConfig
from mbrl_ros.agent.report import common_points_and_tails, steps_to_threshold
from mbrl_ros.agent.runlog import RunLog, read_evals
from mbrl_ros.cli import main

SMOKE = {
    "task": {"name": "ip_smoke", "env_id": "mbrl_ros/InvertedPendulum-v5", "env_kwargs": {"render_image": False},
             "threshold": 950.0},
    "eval": {"every": 1000, "episodes": 3},
    "mbrl": {"budget": 1000, "seed_episodes": 5, "preset": "tiny",
             "overrides": {"deter": 64, "stoch": 16, "hidden": 64, "joint_embed": 32, "batch_size": 16,
                           "seq_len": 8, "train_actor": False},
             "train_ratio": 1.0, "pretrain_steps": 300, "update_every": 250, "planner": "cem",
             "planner_config": {"num_samples": 128, "num_elites": 16, "iterations": 2}, "fused_horizon": 15,
             "absorbing_steps": 10, "explore_noise": 0.3},
    "sac": {"budget": 300, "kwargs": {"learning_starts": 100}},
    "ppo": {"budget": 256, "kwargs": {"n_steps": 128, "batch_size": 64}},
}


def write_config(tmp_path, **changes) -> str:
    cfg = json.loads(json.dumps(SMOKE))
    for section, values in changes.items():
        cfg[section].update(values)
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def world_losses(model, episodes, seed=0) -> dict[str, float]:
    """Mean world-model losses of `model` on fixed windows of `episodes` (no gradient)."""
    from mbrl_ros.data.episodes import SequenceSampler
    from mbrl_ros.world_model.model import batch_to_torch

    sampler = SequenceSampler(episodes, 32, model.config.seq_len, seed=seed)
    torch.manual_seed(seed)
    out: dict[str, list[float]] = {}
    model.eval()
    with torch.no_grad():
        for _ in range(4):
            _, metrics = model.loss(batch_to_torch(sampler.sample(), "cpu"))
            for key in ("loss/joints", "loss/reward", "loss/world_total"):
                out.setdefault(key, []).append(float(metrics[key]))
    return {k: float(np.mean(v)) for k, v in out.items()}


@pytest.mark.slow
def test_mbrl_loop_learns_and_plans_better_than_random(tmp_path):
    """A few hundred real env steps: the world-model loss falls, the planner through the ONNX
    runtime beats the random policy it started from on the same eval episodes, and the run resumes."""
    from mbrl_ros.agent.mbrl_loop import MBRLAgent
    from mbrl_ros.data.episodes import EpisodeCache
    from mbrl_ros.training.trainer import Trainer
    from mbrl_ros.world_model.checkpoint import load_world_model

    config_path = write_config(tmp_path)
    out = tmp_path / "run"
    assert main(["agent", "run", "--config", config_path, "--method", "mbrl", "--seed", "0", "--out", str(out),
                 "--no-progress"]) == 0
    rows = read_evals(out / "evals.csv")
    assert [r["env_steps"] for r in rows] == [0, 1000]
    assert [r["frames"] for r in rows] == [0, 2000]  # InvertedPendulum-v5: frame_skip 2
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "done" and meta["env_steps"] == 1000 and meta["train_steps"] >= 1000

    # Loss: the trained model against the same architecture at its initial weights, same windows.
    config = AgentConfig.load(config_path)
    agent = MBRLAgent(config, 0, out, progress=False)  # reopening the finished run is a no-op resume
    episodes = agent._training_view(EpisodeCache(out / "cache").episodes())
    assert sum(len(ep["reward"]) - 1 for ep in EpisodeCache(out / "cache").episodes()) <= 1000
    fresh = Trainer.create(agent._world_model_config(), episodes, seed=0).model
    trained, _ = load_world_model(out / "checkpoint.pt")
    before, after = world_losses(fresh, episodes), world_losses(trained, episodes)
    assert after["loss/world_total"] < 0.5 * before["loss/world_total"], (before, after)
    assert after["loss/joints"] < 0.2 * before["loss/joints"], (before, after)

    # Planner vs random: step 0 is the random policy, 1000 the planner, on the same eval seeds.
    random_mean, planner_mean = rows[0]["return_mean"], rows[-1]["return_mean"]
    assert random_mean < 20  # the pendulum falls within a few steps under random actions
    assert planner_mean > max(3 * random_mean, random_mean + 25), (random_mean, planner_mean)

    # A finished run is continued, not restarted: no new evaluations, a second session.
    agent.run()
    assert [r["env_steps"] for r in read_evals(out / "evals.csv")] == [0, 1000]
    assert json.loads((out / "run.json").read_text())["sessions"] == 2


def test_mbrl_run_stopped_before_a_due_update_trains_before_it_evaluates(tmp_path, monkeypatch):
    """A run killed after an episode's state was saved but before that step's model update must,
    when it resumes, update first and evaluate the updated model, not the previous one."""
    from mbrl_ros.agent.mbrl_loop import MBRLAgent

    # Fixed 50-step episodes: the 10th ends at 500 env steps, where an update (every 200 after
    # the first at 100) and the last evaluation are both due.
    config = AgentConfig.load(write_config(
        tmp_path, task={"env_id": "mbrl_ros/Reacher-v5", "env_kwargs": {"render_image": False, "episode_steps": 50}},
        eval={"every": 250, "episodes": 1},
        mbrl={"budget": 500, "seed_episodes": 2, "update_every": 200, "train_ratio": 0.1, "pretrain_steps": 20,
              "absorbing_steps": 0, "planner_config": {"num_samples": 32, "num_elites": 8, "iterations": 1}}))
    out = tmp_path / "run"
    original_update = MBRLAgent._train_and_publish

    def killed_at_the_last_update(agent, steps):
        if agent.env_steps >= 500:
            raise KeyboardInterrupt  # as if the process died here
        original_update(agent, steps)

    monkeypatch.setattr(MBRLAgent, "_train_and_publish", killed_at_the_last_update)
    with pytest.raises(KeyboardInterrupt):
        MBRLAgent(config, 0, out, progress=False).run()
    state = json.loads((out / "state.json").read_text())
    assert (state["env_steps"], state["last_update"]) == (500, 300)
    assert json.loads((out / "run.json").read_text())["status"] == "stopped"
    assert [r["env_steps"] for r in read_evals(out / "evals.csv")] == [0, 250]
    saved = torch.load(out / "checkpoint.pt", weights_only=False)["step"]
    assert saved == state["train_steps"]  # the checkpoint is the model `last_update` describes

    calls = []
    monkeypatch.setattr(MBRLAgent, "_train_and_publish",
                        lambda agent, steps: (calls.append(("update", agent.env_steps)), original_update(agent, steps)))
    original_evaluate = MBRLAgent._evaluate
    monkeypatch.setattr(MBRLAgent, "_evaluate", lambda agent, point: (
        calls.append(("evaluate", point, agent.trainer.step)), original_evaluate(agent, point))[1])
    resumed = MBRLAgent(config, 0, out, progress=False)
    assert resumed.trainer.step == saved
    resumed.run()
    assert calls == [("update", 500), ("evaluate", 500, saved + 20)], calls  # 0.1 x 200 new steps first
    assert [r["env_steps"] for r in read_evals(out / "evals.csv")] == [0, 250, 500]


def test_agent_acts_through_the_controllers_control_loop(tmp_path, monkeypatch):
    """Every action the agent's envs get from its model, exploring or evaluating, is what the
    controller node's ControlLoop.tick() returned (plus the recorded exploration noise when
    exploring, which the loop is told about); the loops plan without a deadline and swap to each
    bundle the agent publishes, as the node does."""
    from mbrl_ros.agent.mbrl_loop import MBRLAgent
    from mbrl_ros.runtime.control import ControlLoop

    config = AgentConfig.load(write_config(
        tmp_path, task={"env_id": "mbrl_ros/Reacher-v5", "env_kwargs": {"render_image": False, "episode_steps": 50}},
        eval={"every": 200, "episodes": 1},
        mbrl={"budget": 200, "seed_episodes": 2, "update_every": 50, "train_ratio": 0.1, "pretrain_steps": 20,
              "absorbing_steps": 0, "planner_config": {"num_samples": 32, "num_elites": 8, "iterations": 1}}))
    ticks = []  # [loop, the tick's action, the action applied after it, the model it planned with]
    real_tick, real_applied = ControlLoop.tick, ControlLoop.applied

    def tick(loop, now, obs):
        result = real_tick(loop, now, obs)
        ticks.append([loop, result.action.copy(), result.action.copy(), loop.belief.bundle.version])
        return result

    def applied(loop, action):
        assert ticks[-1][0] is loop
        ticks[-1][2] = np.array(action, np.float32)
        real_applied(loop, action)

    monkeypatch.setattr(ControlLoop, "tick", tick)
    monkeypatch.setattr(ControlLoop, "applied", applied)
    agent = MBRLAgent(config, 0, tmp_path / "run", progress=False)
    sent = {"explore": [], "eval": []}
    for env, key in ((agent.env, "explore"), (agent.eval_env, "eval")):
        env.step = lambda action, step=env.step, key=key: (sent[key].append(np.array(action)), step(action))[1]
    agent.run()

    explore = [t for t in ticks if t[0] is agent.explore.loop]
    evaluation = [t for t in ticks if t[0] is not agent.explore.loop]
    # 2 random seed episodes of 50 steps, then the planner: 100 exploring ticks; one 50-step
    # evaluation episode at 200 steps (the one at step 0 is the random policy's)
    assert len(sent["explore"]) == 200 and len(explore) == 100
    assert len(sent["eval"]) == 100 and len(evaluation) == 50 and len({id(t[0]) for t in evaluation}) == 1
    for got, (_, _, went_out, _) in zip(sent["explore"][100:], explore):
        np.testing.assert_array_equal(got, went_out)
    noise = np.array([t[2] - t[1] for t in explore])
    assert np.all(np.abs(noise) > 0) and 0.15 < noise.std() < 0.45  # explore_noise 0.3, clipped at +-1
    for got, (_, planned, went_out, _) in zip(sent["eval"][50:], evaluation):
        np.testing.assert_array_equal(got, planned)
        np.testing.assert_array_equal(went_out, planned)
    loops = {"explore": agent.explore.loop, "eval": evaluation[0][0]}
    assert (loops["explore"].config.seed, loops["eval"].config.seed) == (0, 1)
    assert all(loop.config.budget_s is None and loop.store is agent.store for loop in loops.values())
    assert len({t[3] for t in explore}) == 2  # published at 100 and 150 env steps: swapped mid-run
    assert {t[3] for t in evaluation} == {agent.store.current.version}  # and the update at 200


def test_random_episode_every_alternates_random_and_planned_episodes(tmp_path, monkeypatch):
    """mbrl.random_episode_every: 2: after the first model, every second training episode acts with the
    random policy instead of the planner (exploration that does not depend on the model)."""
    from mbrl_ros.agent.mbrl_loop import MBRLAgent
    from mbrl_ros.runtime.control import ControlLoop

    config = AgentConfig.load(write_config(
        tmp_path, task={"env_id": "mbrl_ros/Reacher-v5", "env_kwargs": {"render_image": False, "episode_steps": 50}},
        eval={"every": 200, "episodes": 1},
        mbrl={"budget": 250, "seed_episodes": 2, "update_every": 50, "train_ratio": 0.1, "pretrain_steps": 20,
              "absorbing_steps": 0, "random_episode_every": 2,
              "planner_config": {"num_samples": 32, "num_elites": 8, "iterations": 1}}))
    agent = MBRLAgent(config, 0, tmp_path / "run", progress=False)
    planned, real_tick = [], ControlLoop.tick
    monkeypatch.setattr(ControlLoop, "tick", lambda loop, now, obs: (
        planned.append((loop, agent.episodes)), real_tick(loop, now, obs))[1])
    randomly = []
    agent.random.act = lambda obs, act=agent.random.act: (randomly.append(agent.episodes), act(obs))[1]
    agent.run()
    # episodes 0, 1: seed episodes; 2 planned; 3 random; 4 planned
    assert sorted(set(randomly)) == [0, 1, 3] and len(randomly) == 150
    assert sorted({episode for loop, episode in planned if loop is agent.explore.loop}) == [2, 4]
    with pytest.raises(ValueError, match="random_episode_every must be >= 0"):
        AgentConfig.load(write_config(tmp_path, mbrl={"random_episode_every": -1}))


@pytest.mark.parametrize("method", ["sac", "ppo"])
def test_sb3_baseline_same_cli_accounting_and_resume(tmp_path, method):
    """SB3 runs through `mbrl-ros agent run` on the same env, eval schedule and step/frame accounting,
    and a rerun with a larger budget continues from the saved model."""
    config_path = write_config(tmp_path, eval={"every": 100})
    out = tmp_path / method
    budget = SMOKE[method]["budget"]
    args = ["agent", "run", "--config", config_path, "--method", method, "--seed", "1", "--out", str(out),
            "--no-progress"]
    assert main(args) == 0
    rows = read_evals(out / "evals.csv")
    expected = EvalConfig(every=100).points(budget)
    assert [r["env_steps"] for r in rows] == expected
    assert all(r["frames"] == 2 * r["env_steps"] for r in rows)
    assert all(len(r["returns"]) == 3 and r["return_mean"] >= 1 for r in rows)
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "done" and meta["env_steps"] >= budget and meta["method"] == method
    assert (out / "model.zip").exists()

    assert main(args + ["--budget", str(budget + 100)]) == 0
    rows2 = read_evals(out / "evals.csv")
    assert rows2[:len(rows)] == rows  # kept, not re-run
    assert rows2[-1]["env_steps"] == budget + 100
    meta = json.loads((out / "run.json").read_text())
    assert meta["sessions"] == 2 and meta["env_steps"] >= budget + 100
    # told to stop at budget + 100; the config file's budget is kept beside it for the report
    assert meta["budget"] == budget + 100 and meta["config_budget"] == budget

    # the saved model, re-evaluated by scripts/eval_controller.py, scores what the run's last evaluation did
    report = run_eval_controller(["--baseline", str(out), "--episodes", "3"])
    assert report["planner"] == method and report["model"] == f"{method} seed 1 at {budget + 100} env steps"
    assert report["planner_returns"] == pytest.approx(rows2[-1]["returns"], abs=0.006)


def test_sb3_run_stopped_between_evaluations_resumes_from_its_last_timed_save(tmp_path, monkeypatch):
    """With --save-every-min 0, SAC saves at every episode end; stopped mid-run, the rerun continues
    from the last of those saves (its replay buffer included), not from the last evaluation."""
    from stable_baselines3 import SAC

    from mbrl_ros.agent import baselines

    config_path = write_config(tmp_path, eval={"every": 1000})  # evaluated at 0 and at the 300 budget only
    out = tmp_path / "sac"
    args = ["agent", "run", "--config", config_path, "--method", "sac", "--seed", "0", "--out", str(out),
            "--no-progress", "--save-every-min", "0"]
    saved_at = []
    real_save = baselines.BaselineAgent.save

    def save_then_stop(agent, model):
        real_save(agent, model)
        saved_at.append(int(model.num_timesteps))
        if model.num_timesteps >= 150:
            raise KeyboardInterrupt  # what Ctrl-C or the end of a session does, between two saves

    monkeypatch.setattr(baselines.BaselineAgent, "save", save_then_stop)
    assert main(args) == 130
    assert json.loads((out / "run.json").read_text())["status"] == "stopped"
    assert len(saved_at) >= 2 and saved_at[-1] >= 150
    assert [r["env_steps"] for r in read_evals(out / "evals.csv")] == [0]
    stopped_at = saved_at[-1]
    assert SAC.load(out / "model.zip", device="cpu").num_timesteps == stopped_at
    assert not list(out.glob("*.tmp.*")), "a save leaves no temporary files behind"

    monkeypatch.setattr(baselines.BaselineAgent, "save", real_save)
    resumed_at = []
    real_run = baselines.BaselineAgent.run

    def run_and_note_the_start(agent):
        resumed_at.append(SAC.load(agent.model_path, device="cpu").num_timesteps)
        resumed_at.append(json.loads((out / "run.json").read_text())["env_steps"])  # kept by the new session
        return real_run(agent)

    monkeypatch.setattr(baselines.BaselineAgent, "run", run_and_note_the_start)
    # The schedule is made denser before the rerun: points it already passed are skipped, not
    # evaluated with the later model; the later ones are evaluated where they fall.
    write_config(tmp_path, eval={"every": 100})
    assert main(args) == 0
    assert resumed_at == [stopped_at, stopped_at]
    denser = [p for p in (100, 200) if p >= stopped_at]
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "done" and meta["sessions"] == 2 and meta["env_steps"] == 300
    assert [r["env_steps"] for r in read_evals(out / "evals.csv")] == [0, *denser, 300]
    assert 100 not in denser, "the stop is past 150, so 100 was passed before the schedule had it"
    model = SAC.load(out / "model.zip", device="cpu")
    model.load_replay_buffer(out / "replay_buffer.pkl")
    # the stopped session's transitions were kept, none twice; the step at the final evaluation is
    # collected but not yet stored when the evaluated weights are saved
    assert model.replay_buffer.size() == 299
    # The stop fell on an episode end, so the resumed session begins with a reset: not the run's
    # first reset again (SB3's load reseeds with the run seed), a fresh one.
    first_obs = model.replay_buffer.observations[:, 0]
    assert not np.allclose(first_obs[stopped_at], first_obs[0])


def eval_controller_process(args: list[str], timeout: float = 300):
    """scripts/eval_controller.py run with `args`, finished (CompletedProcess, text output)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, str(root / "scripts" / "eval_controller.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=root)


def run_eval_controller(args: list[str]) -> dict:
    out = eval_controller_process(args)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_eval_controller_scores_the_scripted_experts_far_above_random_and_refuses_envs_without_one():
    """--expert: the reference a results page sets beside the learners (same evaluation episodes)."""
    reacher = run_eval_controller(["--expert", "--env", "mbrl_ros/Reacher2D-v0", "--episodes", "2"])
    assert reacher["planner"] == "expert" and reacher["planner_success_at_end"] == "2/2"
    assert reacher["planner_return_mean"] > 150 and reacher["random_return_mean"] < 0
    cartpole = run_eval_controller(["--expert", "--env", "mbrl_ros/CartpoleSwingup-v0", "--episodes", "1"])
    assert cartpole["planner_return_mean"] > 100 and cartpole["random_return_mean"] < 50

    out = eval_controller_process(["--expert", "--env", "mbrl_ros/InvertedPendulum-v5"], timeout=120)
    assert out.returncode != 0 and "no scripted expert for mbrl_ros/InvertedPendulum-v5" in out.stderr


def test_run_folder_without_its_training_state_is_refused_then_restarted_on_request(tmp_path, capsys):
    """A fresh clone has a run's evals.csv/run.json but not its checkpoint: continuing would start
    from zero and append a second curve to the first, so the run is refused; --restart moves the
    old files aside (nothing lost) and starts afresh."""
    from mbrl_ros.agent.mbrl_loop import MBRLAgent
    from mbrl_ros.agent.report import load_runs
    from mbrl_ros.agent.runlog import RunNotContinuable

    config_path = write_config(tmp_path, eval={"every": 100})
    out = tmp_path / "results" / "ip_smoke" / "ppo" / "seed0"
    args = ["agent", "run", "--config", config_path, "--method", "ppo", "--seed", "0", "--out", str(out),
            "--no-progress"]
    assert main(args) == 0
    first = (out / "evals.csv").read_bytes()
    (out / "model.zip").unlink()  # what a clone of the repository holds: only the two small files
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "up to 256 env steps" in err and "model.zip" in err and "--restart" in err
    assert (out / "evals.csv").read_bytes() == first and sorted(p.name for p in out.iterdir()) == ["evals.csv",
                                                                                                   "run.json"]
    assert main(args + ["--restart"]) == 0
    superseded = [p for p in out.iterdir() if p.name.startswith("superseded-")]
    assert len(superseded) == 1 and (superseded[0] / "evals.csv").read_bytes() == first
    meta = json.loads((out / "run.json").read_text())
    assert meta["sessions"] == 1 and meta["status"] == "done"  # a new run, not a continued one
    assert [r["env_steps"] for r in read_evals(out / "evals.csv")] == EvalConfig(every=100).points(256)
    assert [run["folder"] for run in load_runs(tmp_path / "results")["ip_smoke"]["ppo"]] == [str(out)]

    # The model-based agent checks its own state: state.json, the episode cache, the checkpoint.
    mbrl_out = tmp_path / "mbrl"
    log = RunLog(mbrl_out, {"task": "ip_smoke", "method": "mbrl"})
    log.add_eval(0, 0, [5.0])
    log.add_eval(1000, 2000, [900.0])
    with pytest.raises(RunNotContinuable, match="state.json"):
        MBRLAgent(AgentConfig.load(config_path), 0, mbrl_out, progress=False)
    (mbrl_out / "state.json").write_text(json.dumps({"env_steps": 1000, "episodes": 30, "last_update": 1000}))
    with pytest.raises(RunNotContinuable, match="cache, checkpoint.pt"):
        MBRLAgent(AgentConfig.load(config_path), 0, mbrl_out, progress=False)


def test_restarts_within_one_second_each_keep_their_own_superseded_folder(tmp_path, monkeypatch):
    """The superseded folder is named by the UTC second; a second restart in that second must not
    fail or merge into the first: each restart's files stay apart."""
    from mbrl_ros.agent import runlog

    frozen = runlog.time.gmtime(1_800_000_000)
    monkeypatch.setattr(runlog.time, "gmtime", lambda *_: frozen)
    folder = tmp_path / "seed0"
    asides = []
    for attempt in range(3):
        folder.mkdir(exist_ok=True)
        (folder / "evals.csv").write_text(f"attempt {attempt}\n")
        asides.append(runlog.supersede_run_folder(folder))
    assert len(set(asides)) == 3 and all(a.parent == folder for a in asides)
    assert [(a / "evals.csv").read_text() for a in asides] == ["attempt 0\n", "attempt 1\n", "attempt 2\n"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(a.name for a in asides)
    assert runlog.supersede_run_folder(folder) is None  # only superseded folders left: nothing to move


def test_eval_schedule_and_config_checks(tmp_path):
    assert EvalConfig(every=500, sparse_after=1000, sparse_every=2000).points(5200) == [0, 500, 1000, 3000, 5000, 5200]
    bad = json.loads(json.dumps(SMOKE))
    bad["mbrl"]["trian_ratio"] = 1
    with pytest.raises(ValueError, match="trian_ratio"):
        AgentConfig.from_dict(bad)
    folder = __import__("pathlib").Path(__file__).parents[1] / "config" / "agent"
    # archive/ holds the superseded variants, whose runs stay in results/ and in the report
    for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("archive/*.yaml")):
        cfg = AgentConfig.load(path)  # every checked-in task config parses
        assert cfg.threshold and cfg.mbrl.budget > 0 and cfg.sac.budget > 0



def test_config_extends(tmp_path):
    """A variant names its base and only what it changes; mappings merge key by key."""
    write_config(tmp_path)  # task.yaml: the base
    (tmp_path / "variant.yaml").write_text(
        "extends: task.yaml\ntask: {name: ip_variant}\n"
        "mbrl: {fused_horizon: 5, overrides: {value_from: real}, planner_config: {noise_beta: 2.0}}\n")
    (tmp_path / "variant2.yaml").write_text("extends: variant.yaml\ntask: {name: ip_variant2}\nsac: {budget: 7}\n")
    base, cfg = AgentConfig.load(tmp_path / "task.yaml"), AgentConfig.load(tmp_path / "variant2.yaml")
    assert cfg.name == "ip_variant2" and cfg.mbrl.fused_horizon == 5 and cfg.sac.budget == 7
    assert cfg.mbrl.overrides == {**base.mbrl.overrides, "value_from": "real"}
    assert cfg.mbrl.planner_config == {**base.mbrl.planner_config, "noise_beta": 2.0}
    assert (cfg.env_id, cfg.threshold, cfg.eval, cfg.ppo) == (base.env_id, base.threshold, base.eval, base.ppo)

    cases = {"extends: task.yaml\nmbrl: {fused_horizon: 5}\n": "own task.name",
             "extends: task.yaml\ntask: {name: ip_smoke}\n": "own task.name",
             "extends: loop.yaml\ntask: {name: loop}\n": "loops",
             "extends: nowhere.yaml\ntask: {name: lost}\n": "nowhere.yaml not found"}
    for text, message in cases.items():
        (tmp_path / "loop.yaml").write_text(text)
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            AgentConfig.load(tmp_path / "loop.yaml")


def test_checked_in_variants_share_their_tasks_baselines():
    """Every checked-in variant keeps its base's env, threshold and baseline settings. One that keeps
    the evaluation too is compared with its base task's SAC/PPO runs (report._comparable); one that
    evaluates otherwise (a re-run under docs/protocol.md, 5 episodes per point) runs its own
    baselines, and the report must not lend it the base's."""
    from mbrl_ros.agent.config import resolve_extends
    from mbrl_ros.agent.report import _comparable

    folder = __import__("pathlib").Path(__file__).parents[1] / "config" / "agent"
    configs = sorted(folder.glob("*.yaml")) + sorted(folder.glob("archive/*.yaml"))
    variants = [p for p in configs if "extends" in (yaml.safe_load(p.read_text()) or {})]
    assert len(variants) >= 13 and any(p.parent.name == "archive" for p in variants)
    for path in variants:
        raw = yaml.safe_load(path.read_text())
        assert set(raw) <= {"extends", "task", "mbrl", "eval", "protocol"} and set(raw["task"]) == {"name"}, path
        cfg, base = AgentConfig.load(path), AgentConfig.load(path.parent / raw["extends"])
        baselines = ("sac", "ppo", "sac_utd", "ppo_zoo", "sac_drq")
        assert (cfg.env_id, cfg.env_kwargs, cfg.threshold, *[getattr(cfg, m) for m in baselines]) == \
            (base.env_id, base.env_kwargs, base.threshold, *[getattr(base, m) for m in baselines]), path
        if "eval" in raw:
            run = lambda c: {"env_id": c.env_id, "threshold": c.threshold,  # noqa: E731
                             "config": {"eval": {"episodes": c.eval.episodes}}}
            assert cfg.eval != base.eval and _comparable(run(cfg)) != _comparable(run(base)), path
        else:
            assert cfg.eval == base.eval, path
        assert resolve_extends(path)["task"]["name"] == path.stem

def test_model_learning_rate_schedule(tmp_path):
    """mbrl.lr_model_end: the world model's rate falls linearly with env steps, and the trainer takes it."""
    from mbrl_ros.agent.mbrl_loop import MBRLAgent
    from mbrl_ros.training.trainer import Trainer
    from mbrl_ros.world_model.config import WorldModelConfig
    from mbrl_ros.world_model.model import WorldModel

    config = AgentConfig.load(write_config(tmp_path, mbrl={"lr_model_end": 1e-4}))
    agent = MBRLAgent(config, 0, tmp_path / "run", progress=False)
    start = agent._world_model_config().lr_model
    assert start == pytest.approx(1e-3)  # the tiny preset's
    rates = []
    for steps in (0, 500, 1000, 1500):
        agent.env_steps = steps
        rates.append(agent.model_learning_rate())
    assert rates == pytest.approx([1e-3, 5.5e-4, 1e-4, 1e-4])
    assert MBRLAgent(AgentConfig.load(write_config(tmp_path)), 0, tmp_path / "run2",
                     progress=False).model_learning_rate() == pytest.approx(1e-3)  # no schedule: constant
    with pytest.raises(ValueError, match="lr_model_end"):
        AgentConfig.load(write_config(tmp_path, mbrl={"lr_model_end": 0}))
    # mbrl.lr_model_decay_steps: the fall ends there (here at 400 of the 1000-step budget), then stays
    faster = MBRLAgent(AgentConfig.load(write_config(tmp_path, mbrl={"lr_model_end": 1e-4, "lr_model_decay_steps": 400})),
                       0, tmp_path / "run3", progress=False)
    rates = []
    for steps in (0, 200, 400, 1000):
        faster.env_steps = steps
        rates.append(faster.model_learning_rate())
    assert rates == pytest.approx([1e-3, 5.5e-4, 1e-4, 1e-4])
    with pytest.raises(ValueError, match="lr_model_decay_steps"):
        AgentConfig.load(write_config(tmp_path, mbrl={"lr_model_decay_steps": 400}))  # nothing to fall to

    trainer = Trainer(WorldModel(WorldModelConfig.preset("tiny"), agent.obs_spec, agent.action_dim))
    trainer.set_learning_rate("world", 2e-4)
    assert [g["lr"] for g in trainer.optimizers["world"].param_groups] == [2e-4]
    assert trainer.optimizers["value"].param_groups[0]["lr"] == pytest.approx(3e-4)  # the others untouched
    with pytest.raises(ValueError, match="positive"):
        trainer.set_learning_rate("world", float("nan"))


def _fake_run(root, task, method, seed, curve, threshold, every=100):
    log = RunLog(root / task / method / f"seed{seed}", {"task": task, "env_id": "mbrl_ros/X", "method": method,
                                                       "seed": seed, "threshold": threshold, "frame_skip": 2})
    for i, value in enumerate(curve):
        log.add_eval(i * every, 2 * i * every, [value - 1.0, value + 1.0])
    log.finish()


def test_report_regenerates_plot_and_table_from_saved_results(tmp_path):
    rng = np.random.default_rng(0)
    results, threshold = tmp_path / "results", 50.0
    curves = {}
    for method, rate in (("mbrl", 40.0), ("sac", 8.0), ("ppo", 2.0)):
        for seed in range(3):
            curve = np.minimum(100.0, rate * np.arange(40) * rng.uniform(0.8, 1.2))
            curves[(method, seed)] = curve
            _fake_run(results, "toy", method, seed, curve, threshold)
    out = tmp_path / "docs"
    assert main(["agent", "report", "--results", str(results), "--out", str(out)]) == 0
    png = out / "img" / "agent_toy.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "results_summary.json").read_text())["toy"]["methods"]

    def first(curve):  # independent of report.steps_to_threshold: first index at/above threshold
        return 100 * int(np.argmax(curve >= threshold))

    for method in ("mbrl", "sac", "ppo"):
        expect = [first(curves[(method, s)]) for s in range(3)]
        assert summary[method]["steps_to_threshold"] == expect
    ours = np.mean([first(curves[("mbrl", s)]) for s in range(3)])
    sac = np.mean([first(curves[("sac", s)]) for s in range(3)])
    assert summary["sac"]["ratio_vs_ours"] == pytest.approx(sac / ours)
    table = (out / "results_tables.md").read_text()
    assert f"{sac / ours:.1f}x" in table and "agent_toy.png" in table
    assert steps_to_threshold([{"env_steps": 0, "return_mean": 1.0}], 5.0) is None
    assert EVAL_SEED_BASE > 100_003 * 1000 + 100_000  # eval seeds never collide with training episode seeds


def test_report_leaves_out_a_run_evaluated_only_at_step_zero(tmp_path):
    """A seed just started (only its step-0 evaluation) would otherwise count its untrained
    return as a final return and 0 as the steps it ran."""
    results, threshold = tmp_path / "results", 50.0
    _fake_run(results, "toy", "mbrl", 0, [-100.0, 0.0, 60.0], threshold)
    _fake_run(results, "toy", "mbrl", 1, [-100.0, 20.0, 80.0], threshold)
    _fake_run(results, "toy", "mbrl", 2, [-150.0], threshold)
    out = tmp_path / "docs"
    assert main(["agent", "report", "--results", str(results), "--out", str(out)]) == 0
    ours = json.loads((out / "results_summary.json").read_text())["toy"]["methods"]["mbrl"]
    assert ours["seeds"] == [0, 1]
    assert ours["final_return_mean"] == pytest.approx(70.0) and ours["steps_to_threshold"] == [200, 200]


def test_report_table_gives_the_range_of_steps_run_by_seeds_stopped_apart(tmp_path):
    """Unfinished seeds stopped at different steps: the table shows the range, not the furthest
    seed alone, which would overstate how far the others ran."""
    results, threshold = tmp_path / "results", 500.0
    _fake_run(results, "toy", "sac", 0, [0.0, 10.0, 20.0], threshold)          # stopped at 200
    _fake_run(results, "toy", "sac", 1, [0.0, 10.0, 20.0, 30.0], threshold)    # stopped at 300
    _fake_run(results, "toy", "ppo", 0, [0.0, 10.0], threshold)
    _fake_run(results, "toy", "ppo", 1, [0.0, 20.0], threshold)
    out = tmp_path / "docs"
    assert main(["agent", "report", "--results", str(results), "--out", str(out)]) == 0
    table = (out / "results_tables.md").read_text()
    sac_row = next(line for line in table.splitlines() if line.startswith("| sac |"))
    assert "| 200-300 / 0 |" in sac_row and "not reached (in 200-300)" in sac_row
    ppo_row = next(line for line in table.splitlines() if line.startswith("| ppo |"))
    assert "| 100 / 0 |" in ppo_row and "not reached (in 100)" in ppo_row
    summary = json.loads((out / "results_summary.json").read_text())["toy"]["methods"]
    assert summary["sac"]["steps_run"] == [200, 300] and summary["sac"]["budget"] == 300
    # The final-return cell: seeds' last evals (20 at 200, 30 at 300) mix steps, so the mean
    # where both have one (200: 20 and 20) stands beside it.
    assert "25.0 ± 5.0 (last evals, at 200-300); all seeds at 200: 20.0 ± 0.0" in sac_row
    assert summary["sac"]["common_step"] == 200 and summary["sac"]["common_return_mean"] == 20.0
    assert "| 15.0 ± 5.0 |" in ppo_row  # stopped together: one figure


def test_report_reads_a_run_stopped_early_with_budget_as_short_of_its_config_budget(tmp_path):
    """`agent run --budget N` below the config's budget finishes the run at N; the table still
    gives the config's budget and does not count the run as finished."""
    results, threshold = tmp_path / "results", 500.0
    for seed, config_budget in [(0, 1000), (1, None)]:  # seed 1: logged before config_budget was
        _fake_run(results, "toy", "sac", seed, [0.0, 10.0, 20.0], threshold)
        meta_path = results / "toy" / "sac" / f"seed{seed}" / "run.json"
        meta = json.loads(meta_path.read_text())
        meta.update(budget=200, **({"config_budget": config_budget} if config_budget else {}))
        meta_path.write_text(json.dumps(meta))
    out = tmp_path / "docs"
    assert main(["agent", "report", "--results", str(results), "--out", str(out)]) == 0
    sac_row = next(line for line in (out / "results_tables.md").read_text().splitlines()
                   if line.startswith("| sac |"))
    assert sac_row.startswith("| sac | 2 (1) | 200 / 1000 |"), sac_row
    summary = json.loads((out / "results_summary.json").read_text())["toy"]["methods"]["sac"]
    assert summary["done"] == [False, True] and summary["planned_budget"] == 1000


def test_expert_reference_is_measured_once_and_drawn_for_every_task_on_its_env_and_episodes(tmp_path, capsys):
    """`agent expert` scores the scripted expert on the evaluation episodes; the report names it
    under, and draws it on, the plots of the tasks evaluated on the same env and episodes."""
    results, threshold = tmp_path / "results", 100.0
    config = write_config(tmp_path, task={"name": "reach", "env_id": "mbrl_ros/Reacher2D-v0",
                                          "env_kwargs": {"render_image": False}, "threshold": threshold},
                          eval={"episodes": 2})
    assert main(["agent", "expert", "--config", config, "--results", str(results), "--no-progress"]) == 0
    record = json.loads((results / "reach" / "expert.json").read_text())
    assert record["env_id"] == "mbrl_ros/Reacher2D-v0" and record["episodes"] == 2
    assert len(record["returns"]) == 2 and min(record["returns"]) > 150  # reaches and holds the target
    assert record["return_mean"] == pytest.approx(np.mean(record["returns"]), abs=0.01)
    reach = "mbrl_ros/Reacher2D-v0"
    for task, env_id, env_kwargs, episodes in [
            ("reach", reach, {"render_image": False}, 2),
            ("reach_camera", reach, {"image_size": 64}, 2),           # another camera, the same episodes
            ("reach_5", reach, {}, 5),                                 # more episodes
            ("reach_short", reach, {"episode_steps": 100}, 2),         # other episodes
            ("other", "mbrl_ros/X", {}, 2)]:
        _fake_run(results, task, "mbrl", 0, [-150.0, 50.0, 120.0], threshold)
        meta_path = results / task / "mbrl" / "seed0" / "run.json"
        meta = json.loads(meta_path.read_text())
        meta.update(env_id=env_id, config={"env_kwargs": env_kwargs, "eval": {"episodes": episodes}})
        meta_path.write_text(json.dumps(meta))
    out = tmp_path / "docs"
    assert main(["agent", "report", "--results", str(results), "--out", str(out)]) == 0
    summary = json.loads((out / "results_summary.json").read_text())
    for task in ("reach", "reach_camera"):
        assert summary[task]["expert"]["return_mean"] == record["return_mean"]
    assert not any("expert" in summary[task] for task in ("reach_5", "reach_short", "other"))
    table = (out / "results_tables.md").read_text()
    assert table.count(f"scores {record['return_mean']:.1f} on the same evaluation episodes") == 2

    pendulum = write_config(tmp_path)  # InvertedPendulum-v5: no scripted expert
    capsys.readouterr()
    assert main(["agent", "expert", "--config", pendulum, "--results", str(results), "--no-progress"]) == 2
    assert "no scripted expert for mbrl_ros/InvertedPendulum-v5" in capsys.readouterr().err
    assert not (results / "ip_smoke").exists()


def test_plot_keeps_the_curve_of_a_seed_run_further_than_the_others():
    """Unfinished seeds stopped at different steps: the mean covers the common points, and the
    longer seed's later evaluations are still drawn (from the last common point on)."""
    def run(*points):
        return {"evals": [{"env_steps": s, "return_mean": r} for s, r in points]}
    short = run((0, -300.0), (5000, 500.0))
    long = run((0, -330.0), (5000, 700.0), (10000, 1900.0), (15000, 2600.0))
    steps, vals, tails = common_points_and_tails([long, short])
    assert steps.tolist() == [0, 5000] and vals == [[-330.0, -300.0], [700.0, 500.0]]
    assert len(tails) == 1
    assert tails[0][0].tolist() == [5000, 10000, 15000] and tails[0][1].tolist() == [700.0, 1900.0, 2600.0]
    steps, vals, tails = common_points_and_tails([short, run((0, -1.0), (5000, 2.0))])
    assert steps.tolist() == [0, 5000] and tails == []


def test_report_compares_a_variant_with_the_baselines_of_its_task(tmp_path):
    """A second config of ours on the same env and threshold gets the base task's SAC/PPO
    runs (labelled as theirs); a task with another threshold does not."""
    results, threshold = tmp_path / "results", 50.0
    _fake_run(results, "toy", "sac", 0, np.linspace(0, 100, 40), threshold)          # reaches 50 at 2000
    _fake_run(results, "toy", "mbrl", 0, np.linspace(0, 100, 10), threshold)         # at 500
    _fake_run(results, "toy_variant", "mbrl", 0, np.linspace(0, 100, 5), threshold)  # at 200
    _fake_run(results, "toy_harder", "mbrl", 0, np.linspace(0, 100, 5), 90.0)
    out = tmp_path / "docs"
    assert main(["agent", "report", "--results", str(results), "--out", str(out)]) == 0
    summary = json.loads((out / "results_summary.json").read_text())
    variant = summary["toy_variant"]["methods"]
    assert variant["sac"]["runs_of"] == "toy" and "runs_of" not in summary["toy"]["methods"]["sac"]
    assert variant["sac"]["ratio_vs_ours"] == pytest.approx(2000 / 200)
    assert "ppo" not in variant and set(summary["toy_harder"]["methods"]) == {"mbrl"}
    assert "| sac (runs of toy) |" in (out / "results_tables.md").read_text()
    assert (out / "img" / "agent_toy_variant.png").exists()


def test_fused_horizon_is_the_agent_configs_export_length_and_old_runs_still_report(tmp_path):
    """mbrl.fused_horizon is the length each exported bundle fuses (and so CEM/MPPI's horizon); a
    config in the old name is refused with the new one named, while run.json files recorded with
    mbrl.horizon stay readable by the report."""
    import shutil
    from pathlib import Path

    from mbrl_ros.agent.report import load_runs

    write_config(tmp_path)
    assert AgentConfig.load(tmp_path / "task.yaml").mbrl.fused_horizon == 15
    (tmp_path / "old.yaml").write_text("extends: task.yaml\ntask: {name: ip_old}\nmbrl: {horizon: 5}\n")
    with pytest.raises(ValueError, match="mbrl.horizon is now mbrl.fused_horizon"):
        AgentConfig.load(tmp_path / "old.yaml")

    recorded = Path(__file__).resolve().parents[1] / "results" / "reacher_jointnorm_icem" / "mbrl" / "seed0"
    assert json.loads((recorded / "run.json").read_text())["config"]["mbrl"]["horizon"] == 20  # the old name
    results = tmp_path / "results"
    shutil.copytree(recorded, results / "reacher_jointnorm_icem" / "mbrl" / "seed0")
    runs = load_runs(results)["reacher_jointnorm_icem"]["mbrl"]
    assert len(runs) == 1 and runs[0]["evals"]
    assert main(["agent", "report", "--results", str(results), "--out", str(tmp_path / "docs")]) == 0
    assert "reacher_jointnorm_icem" in json.loads((tmp_path / "docs" / "results_summary.json").read_text())
