"""The evaluation protocol (docs/protocol.md) as the agent tooling enforces it: tuning and reported
seeds and evaluation episodes kept apart and recorded in run.json, the report's refusals, the two
crossing metrics with bootstrap intervals, the headline table, and the stronger baselines.

    .venv/bin/python -m pytest tests/test_protocol.py -q
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from mbrl_ros.agent.config import EVAL_SEED_BASE, TUNING_EVAL_SEED_BASE, AgentConfig
from mbrl_ros.agent.report import bootstrap_ci, crossing_text, ratio_text, sustained_steps
from mbrl_ros.agent.runlog import RunLog, RunNotContinuable, read_evals
from mbrl_ros.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = {
    "task": {"name": "ip_protocol", "env_id": "mbrl_ros/InvertedPendulum-v5", "env_kwargs": {"render_image": False},
             "threshold": 950.0},
    "eval": {"every": 64, "episodes": 5},
    "mbrl": {"budget": 1000},
    "sac": {"budget": 300, "kwargs": {"learning_starts": 100}},
    "ppo": {"budget": 128, "kwargs": {"n_steps": 64, "batch_size": 32}},
}


def write_config(tmp_path, name="task.yaml", **changes) -> str:
    cfg = json.loads(json.dumps(SMOKE))
    for section, values in changes.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


# ---------------------------------------------------------------- running: seeds, roles, run.json

def test_runs_record_their_role_seeds_and_evaluation_seeds_and_tuning_runs_use_their_own_episodes(tmp_path, capsys):
    from stable_baselines3 import PPO

    from mbrl_ros.agent.baselines import JointsObs, greedy_policy
    from mbrl_ros.agent.common import evaluate, make_env

    config = write_config(tmp_path)
    base = ["agent", "run", "--config", config, "--method", "ppo", "--no-progress"]
    # the seed ranges keep the two roles apart
    assert main(base + ["--seed", "3", "--tuning", "--out", str(tmp_path / "x")]) == 2
    assert "tuning seeds are 100-999; seed 3 is a reported seed" in capsys.readouterr().err
    assert main(base + ["--seed", "100", "--out", str(tmp_path / "x")]) == 2
    assert "reported seeds are 0-99, got 100; pass --tuning" in capsys.readouterr().err
    assert main(base + ["--seed", "1000", "--tuning", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()

    reported, tuning = tmp_path / "reported", tmp_path / "tuning"
    assert main(base + ["--seed", "1", "--out", str(reported)]) == 0
    assert main(base + ["--seed", "101", "--tuning", "--out", str(tuning)]) == 0
    rec = json.loads((reported / "run.json").read_text())["protocol"]
    assert rec == {"version": 1, "role": "reported", "seed": 1, "eval_seed_base": EVAL_SEED_BASE, "eval_episodes": 5,
                   "eval_seeds": [EVAL_SEED_BASE + i for i in range(5)], "claims": True, "violations": []}
    rec = json.loads((tuning / "run.json").read_text())["protocol"]
    assert rec["role"] == "tuning" and rec["seed"] == 101 and rec["eval_seeds"][0] == TUNING_EVAL_SEED_BASE

    # the tuning run's evaluations really are on the tuning episodes: its saved model, evaluated there,
    # scores what its last evaluation recorded (and differs on the reported episodes' starts)
    model = PPO.load(tuning / "model.zip", device="cpu")
    env = JointsObs(make_env(AgentConfig.load(config)))
    last = read_evals(tuning / "evals.csv")[-1]
    assert evaluate(env, greedy_policy(model), 5, progress=False, seed_base=TUNING_EVAL_SEED_BASE) == \
        pytest.approx(last["returns"], abs=0.006)
    starts = [env.reset(seed=b)[0].tolist() for b in (EVAL_SEED_BASE, TUNING_EVAL_SEED_BASE)]
    assert starts[0] != starts[1]

    # a run keeps its role: continuing the tuning folder as a reported run is refused
    assert main(base + ["--seed", "1", "--out", str(tuning)]) == 2
    assert "holds a tuning run; it cannot be continued as a reported run" in capsys.readouterr().err

    # stopped short of the config's budget, or with too few episodes: recorded as not claiming the protocol
    short = tmp_path / "short"
    assert main(base + ["--seed", "2", "--budget", "64", "--out", str(short)]) == 0
    assert "does not meet the protocol (stopped at 64 of the config's 128 env steps)" in capsys.readouterr().err
    rec = json.loads((short / "run.json").read_text())["protocol"]
    assert rec["claims"] is False and rec["violations"] == ["stopped at 64 of the config's 128 env steps"]


def test_a_run_begun_before_the_protocol_cannot_claim_it_when_continued(tmp_path):
    folder = tmp_path / "old"
    log = RunLog(folder, {"task": "t", "method": "sac", "seed": 0})  # as run.json was written before
    log.add_eval(0, 0, [1.0, 2.0])
    log.add_eval(100, 200, [3.0, 4.0])
    meta = {"task": "t", "method": "sac", "seed": 0, "protocol": {"role": "reported", "claims": True, "violations": []}}
    log = RunLog(folder, meta)
    assert log.meta["protocol"]["claims"] is False
    assert log.meta["protocol"]["violations"] == ["continues a run begun before the protocol"]
    tuning = {**meta, "protocol": {"role": "tuning"}}
    with pytest.raises(RunNotContinuable, match="holds a reported run"):
        RunLog(folder, tuning)


def test_config_protocol_fields(tmp_path):
    config = write_config(tmp_path, protocol={"tuning_trials": [{"seeds": [3, 4], "what": "lr decay"}]})
    cfg = AgentConfig.load(config)
    assert [(t.seeds, t.method, t.eval_episodes) for t in cfg.protocol.tuning_trials] == [([3, 4], "mbrl", "tuning")]
    # a variant adds its trials to its base's: it was chosen on those too
    (tmp_path / "v.yaml").write_text("extends: task.yaml\ntask: {name: v}\n"
                                     "protocol: {tuning_trials: [{seeds: [7], method: sac}]}\n")
    assert [t.seeds for t in AgentConfig.load(tmp_path / "v.yaml").protocol.tuning_trials] == [[3, 4], [7]]
    with pytest.raises(ValueError, match="eval.seed_base is set by the run's role"):
        AgentConfig.load(write_config(tmp_path, "b.yaml", eval={"seed_base": 5}))
    with pytest.raises(ValueError, match="seeds must be a list of integers"):
        AgentConfig.load(write_config(tmp_path, "c.yaml", protocol={"tuning_trials": [{"seeds": 3}]}))
    with pytest.raises(ValueError, match="no 'ppo_zoo' section"):
        cfg.budget("ppo_zoo")
    tuned = cfg.with_role("tuning")
    assert tuned.eval.seed_base == TUNING_EVAL_SEED_BASE and cfg.eval.seed_base == EVAL_SEED_BASE


# ---------------------------------------------------------------- reporting

def fake_run(root, task, method, seed, curve, threshold=50.0, episodes=5, record="reported", env_id="mbrl_ros/X",
             config=None, every=100):
    """A run folder as `agent run` leaves it; record: 'reported' / 'tuning' (protocol runs), None (pre-protocol),
    or a protocol dict."""
    meta = {"task": task, "env_id": env_id, "method": method, "seed": seed, "threshold": threshold,
            "frame_skip": 2, "config": config or {"eval": {"episodes": episodes}}}
    if record in ("reported", "tuning"):
        base = EVAL_SEED_BASE if record == "reported" else TUNING_EVAL_SEED_BASE
        meta["protocol"] = {"version": 1, "role": record, "seed": seed, "eval_seed_base": base,
                            "eval_episodes": episodes, **({"claims": True, "violations": []} if record == "reported" else {})}
    elif record is not None:
        meta["protocol"] = record
    log = RunLog(root / task / method / f"seed{seed}", meta)
    for i, value in enumerate(curve):
        log.add_eval(i * every, 2 * i * every, list(value + np.linspace(-1.0, 1.0, episodes)))
    log.finish()


def report(tmp_path, results, capsys, headline=None) -> tuple[int, str]:
    args = ["agent", "report", "--results", str(results), "--out", str(tmp_path / "docs")]
    if headline:
        args += ["--headline", str(headline)]
    else:
        args += ["--headline", str(tmp_path / "no-headline.yaml")]
    capsys.readouterr()
    code = main(args)
    return code, capsys.readouterr().err


def test_report_refuses_to_report_a_seed_used_for_tuning(tmp_path, capsys):
    results = tmp_path / "results"
    rising = np.linspace(0, 100, 10)
    fake_run(results, "toy", "mbrl", 0, rising)
    fake_run(results, "toy", "mbrl", 1, rising)
    fake_run(results, "toy", "sac", 7, rising)
    fake_run(results, "toy_trial", "sac", 7, rising, record="tuning")  # a tuning run of SAC on seed 7, same env
    code, err = report(tmp_path, results, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "seed 7 was used for tuning sac on mbrl_ros/X (tuning run" in err and "never reported" in err

    # the same seed of another method, or on another env, is not touched by that tuning run
    (results / "toy_trial" / "sac" / "seed7" / "run.json").unlink()
    fake_run(results, "toy_trial", "ppo", 7, rising, record="tuning")
    fake_run(results, "other", "sac", 1, rising, record="tuning", env_id="mbrl_ros/Y")
    code, err = report(tmp_path, results, capsys)
    assert code == 0, err
    tables = (tmp_path / "docs" / "results_tables.md").read_text()
    assert "per config: other 1, toy_trial 1." in tables
    # toy's table names the trial run on its env under another config; the other env's is not its
    assert "this config (not reported, their seeds never are): 0; of other configs on the same env: toy_trial 1." in tables
    assert "toy_trial" not in json.loads((tmp_path / "docs" / "results_summary.json").read_text())

    # a trial the config lists burns its seeds too
    cfg = {"eval": {"episodes": 5}, "protocol": {"tuning_trials": [{"seeds": [1], "method": "mbrl", "what": "horizons"}]}}
    fake_run(results, "toy", "mbrl", 1, rising, config=cfg)
    code, err = report(tmp_path, results, capsys)
    assert code == 2 and "seed 1 was used for tuning mbrl on mbrl_ros/X (tuning trial of toy (horizons))" in err


def test_report_marks_pre_protocol_runs_and_refuses_protocol_claims_it_cannot_back(tmp_path, capsys):
    results = tmp_path / "results"
    rising = np.linspace(0, 100, 10)
    cfg = {"eval": {"episodes": 3}, "protocol": {"tuning_trials": [{"seeds": [0], "what": "planner"}]}}
    for seed in (0, 1):  # committed results predate the protocol: reported, marked, never refused
        fake_run(results, "toy", "mbrl", seed, rising, episodes=3, record=None, config=cfg)
    off = {"version": 1, "role": "reported", "eval_seed_base": EVAL_SEED_BASE, "claims": False,
           "violations": ["stopped at 900 of the config's 2000 env steps"]}
    fake_run(results, "toy", "sac", 5, rising, record=off)
    code, err = report(tmp_path, results, capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "docs" / "results_summary.json").read_text())["toy"]["methods"]
    assert summary["mbrl"]["protocol"] == ["pre-protocol", "pre-protocol"]
    assert summary["mbrl"]["protocol_notes"] == ["pre-protocol", "pre-protocol; seed 0 was a tuning seed (tuning trial of toy (planner))"]
    assert summary["sac"]["protocol"] == ["off-protocol"]
    row = next(line for line in (tmp_path / "docs" / "results_tables.md").read_text().splitlines()
               if line.startswith("| mbrl |"))
    assert row.endswith("| pre-protocol: 3 episodes per evaluation (protocol: >= 5); seed 0 also used for tuning; "
                        "actions from the agent's own planner loop, before the one control path |")
    assert summary["mbrl"]["tuning_seeds"] == [0]

    # a run that claims the protocol with evaluations of fewer than 5 episodes is refused
    fake_run(results, "toy", "ppo", 2, rising, episodes=3)
    code, err = report(tmp_path, results, capsys)
    assert code == 2 and "claims the protocol but its evaluations at [0, 100, 200, 300, 400] env steps have fewer than 5" in err
    # and so is one evaluated on the tuning episodes that calls itself reported
    bad = {"version": 1, "role": "reported", "eval_seed_base": TUNING_EVAL_SEED_BASE, "claims": True, "violations": []}
    fake_run(results, "toy", "ppo", 2, rising, record=bad)
    code, err = report(tmp_path, results, capsys)
    assert code == 2 and "evaluated on the tuning episodes" in err


def test_report_says_when_a_config_was_chosen_on_the_episodes_its_runs_are_evaluated_on(tmp_path, capsys):
    """Fresh seeds under the protocol, but the config was chosen (before it) on trials evaluated on the
    reported episodes: the run is reported, with that flag; trials on the tuning episodes, or of
    another method, raise none."""
    results = tmp_path / "results"
    rising = np.linspace(0, 100, 10)
    chosen = {"eval": {"episodes": 5}, "protocol": {"tuning_trials": [
        {"seeds": [0], "eval_episodes": "reported", "what": "planner"}]}}
    apart = {"eval": {"episodes": 5}, "protocol": {"tuning_trials": [
        {"seeds": [100], "eval_episodes": "tuning", "what": "planner"},
        {"seeds": [0], "method": "sac", "eval_episodes": "reported", "what": "sac's"}]}}
    for seed in (10, 11):
        fake_run(results, "chosen", "mbrl", seed, rising, config=chosen)
        fake_run(results, "apart", "mbrl", seed, rising, config=apart)
    code, err = report(tmp_path, results, capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "docs" / "results_summary.json").read_text())
    assert summary["chosen"]["methods"]["mbrl"]["episodes_seen_in_tuning"] == 2
    assert summary["apart"]["methods"]["mbrl"]["episodes_seen_in_tuning"] == 0
    tables = (tmp_path / "docs" / "results_tables.md").read_text()
    section = tables[tables.index("### chosen"):]
    row = next(line for line in section.splitlines() if line.startswith("| mbrl |"))
    assert row.endswith("| protocol: config chosen on trials evaluated on these evaluation episodes (pre-protocol) |")
    section = tables[tables.index("### apart"):]
    assert next(line for line in section.splitlines() if line.startswith("| mbrl |")).endswith("| protocol |")


def test_sustained_crossing_and_bootstrap_intervals():
    def rows(*values):
        return [{"env_steps": 100 * i, "return_mean": v} for i, v in enumerate(values)]
    assert sustained_steps(rows(0, 60, 40, 55, 70), 50) == 300       # a lucky point at 100 does not count
    assert sustained_steps(rows(0, 60, 70), 50) == 100
    assert sustained_steps(rows(0, 60, 40), 50) is None               # ends below: never sustained
    assert sustained_steps(rows(50), 50) == 0

    x = [1000.0, 1500.0, 2000.0, 2500.0, 1200.0]
    ci = bootstrap_ci([x])
    assert ci[0] < np.mean(x) < ci[1] and min(x) <= ci[0] and ci[1] <= max(x)
    assert bootstrap_ci([x]) == ci                                    # seeded: a regenerated table is the same
    # an independent check of the percentile interval: resample with numpy and compare
    rng = np.random.default_rng(1)
    means = np.mean(rng.choice(x, size=(20000, len(x))), axis=1)
    assert ci == pytest.approx(np.percentile(means, [2.5, 97.5]), rel=0.03)
    y = [10000.0, 12000.0, 14000.0]
    lo, hi = bootstrap_ci([y, x], "ratio")
    assert lo < np.mean(y) / np.mean(x) < hi
    assert bootstrap_ci([[5.0, 5.0]]) == [5.0, 5.0] and bootstrap_ci([[5.0]]) is None

    assert crossing_text({"per_seed": [None, None], "reached": 0, "values": [900, 1000]}) == "not reached in 900-1000 (0/2)"
    metric = {"per_seed": [100, None], "reached": 1, "mean": 550.0, "lower_bound": True, "ci95": [100.0, 1000.0],
              "ratio_vs_ours": 2.25, "ratio_ci95": [1.0, 4.0]}
    assert crossing_text(metric) == ">= 550 [100, 1000] (1/2)"
    assert ratio_text(metric, "sac") == ">= 2.2x [1.0x, 4.0x]" and ratio_text(metric, "mbrl") == "1"


def test_headline_table_gives_both_metrics_intervals_and_a_second_threshold(tmp_path, capsys):
    results = tmp_path / "results"
    ours = {0: [0, 60, 40, 80, 90], 1: [0, 70, 80, 90, 95], 2: [0, 20, 60, 70, 80]}
    sac = {0: [0, 10, 20, 30, 60, 70, 80, 90, 95], 1: [0, 10, 20, 55, 40, 60, 70, 80, 90], 2: [0] + [30] * 8}
    for seed, curve in ours.items():
        fake_run(results, "toy", "mbrl", seed, np.array(curve, float))
    for seed, curve in sac.items():
        fake_run(results, "toy_base", "sac", seed, np.array(curve, float))
    spec = tmp_path / "headline.yaml"
    spec.write_text("rows:\n  - {label: Toy, config: toy}\n  - {label: Toy, config: toy, threshold: 85}\n"
                    "  - {label: Gone, config: toy_gone}\n")
    code, err = report(tmp_path, results, capsys, headline=spec)
    assert code == 0, err
    summary = json.loads((tmp_path / "docs" / "results_summary.json").read_text())
    first, second, gone = summary["headline"]
    assert gone["methods"] == {}
    assert (first["threshold"], second["threshold"]) == (50.0, 85.0)
    o, s = first["methods"]["mbrl"], first["methods"]["sac"]
    assert o["first"]["per_seed"] == [100, 100, 200] and o["sustained"]["per_seed"] == [300, 100, 200]
    assert s["first"]["per_seed"] == [400, 300, None] and s["sustained"]["per_seed"] == [400, 500, None]
    assert s["runs_of"] == "toy_base"
    assert s["first"]["ratio_vs_ours"] == pytest.approx(np.mean([400, 300, 800]) / np.mean([100, 100, 200]))
    assert s["sustained"]["ratio_vs_ours"] == pytest.approx(np.mean([400, 500, 800]) / 200.0)
    assert second["methods"]["mbrl"]["first"]["per_seed"] == [400, 300, None]
    table = (tmp_path / "docs" / "results_tables.md").read_text()
    line = next(row for row in table.splitlines() if row.startswith("| Toy (50) | sac (runs of toy_base) |"))
    assert f"| >= 500 {_ci(s['first'])} (2/3) | >= 567 {_ci(s['sustained'])} (2/3) | >= {s['first']['ratio_vs_ours']:.1f}x [" in line
    assert f"{s['first']['ratio_vs_ours']:.1f}" == "3.7"  # 500 / 133.3, just under 3.75
    assert "| Gone | ours (toy_gone): no runs in this results folder |" in table
    assert table.index("## Headline comparisons") < table.index("## Every config")


def _ci(metric):
    return f"[{metric['ci95'][0]:.0f}, {metric['ci95'][1]:.0f}]"


def _readme_rows_script():
    from tests.script_module import load_script

    return load_script("readme_rows")


def test_readme_quotes_exactly_the_headline_rows_under_the_protocol():
    """README "Measured" carries the generated rows (`agent report --readme`) of every headline row whose
    runs are all under the protocol, i.e. made by the one control path; no pre-protocol row."""
    rows = _readme_rows_script()
    measured_rows, readme_rows, under_protocol = rows.measured_rows, rows.readme_rows, rows.under_protocol

    summary = json.loads((ROOT / "docs" / "results_summary.json").read_text())
    assert summary["headline"], "docs/results_summary.json has no headline (regenerate with mbrl-ros agent report)"
    expected = measured_rows(summary["headline"])
    assert expected, "no headline row is under the protocol"
    assert readme_rows((ROOT / "README.md").read_text()) == expected, \
        "README rows differ: regenerate with scripts/readme_rows.py"
    for item in summary["headline"]:
        if not under_protocol(item):
            assert "pre-protocol" in {s for row in item["methods"].values() for s in row["protocol"]} or not item["methods"]


def test_readme_rows_leave_out_rows_with_a_pre_protocol_run_and_keep_crossings_and_flags():
    rows_script = _readme_rows_script()
    measured_rows, replace_rows = rows_script.measured_rows, rows_script.replace_rows

    def method(states, first, seeds=(10, 11, 12, 13, 14)):
        crossing = {"mean": first, "ci95": [first - 100, first + 100], "reached": len(seeds), "lower_bound": False,
                    "values": [first] * len(seeds), "per_seed": [first] * len(seeds)}
        return {"protocol": states, "seeds": list(seeds), "eval_episodes": [5], "done": [True] * len(seeds),
                "first": dict(crossing), "sustained": dict(crossing)}

    ours = method(["protocol"] * 5, 1000)
    sac = method(["protocol"] * 5, 12000)
    sac["first"].update(ratio_vs_ours=12.0, ratio_ci95=[10.0, 14.0])
    protocol_row = {"label": "Task (protocol)", "threshold": 950.0, "section": "Task under the protocol",
                    "methods": {"mbrl": ours, "sac": sac}}
    old_row = {"label": "Task", "threshold": 950.0, "section": "Task (pre-protocol)",
               "methods": {"mbrl": method(["pre-protocol"] * 5, 1000), "sac": sac}}
    rows = measured_rows([protocol_row, old_row])
    assert len(rows) == 1 and rows[0].startswith("| Task (protocol), env steps to 950 ")
    assert "ours 1000 [900, 1100] / 1000 [900, 1100] (5 seeds)" in rows[0]
    assert "SAC 12000 [11900, 12100] / 12000 [11900, 12100] = 12.0x [10.0x, 14.0x]" in rows[0]
    assert "every method on seeds 10-14, 5 evaluation episodes" in rows[0]
    assert rows[0].endswith("[docs/results.md](docs/results.md#task-under-the-protocol) |")
    apart = measured_rows([{**protocol_row, "methods": {"mbrl": method(["protocol"] * 5, 1000, (15, 16, 17, 18, 19)),
                                                         "sac": sac}}])
    assert "ours on seeds 15-19, every baseline on seeds 10-14, 5 evaluation episodes" in apart[0]
    readme = "# x\n| what | figure |\n| a, env steps to 1 (first / sustained | old |\n| b, env steps to 2 (first / sustained | old |\nend"
    assert replace_rows(readme, rows) == f"# x\n| what | figure |\n{rows[0]}\nend"
    with pytest.raises(ValueError, match="contiguous"):
        replace_rows(readme.replace("| b,", "text\n| b,"), rows)


# ---------------------------------------------------------------- the stronger baselines

def test_random_shift_replay_buffer_shifts_each_sampled_image_and_nothing_else():
    import torch
    from gymnasium import spaces

    from mbrl_ros.agent.drq import RandomShiftReplayBuffer, random_shift

    images = torch.arange(4 * 3 * 8 * 8, dtype=torch.float32).reshape(4, 3, 8, 8)
    shifted = random_shift(images, 2, generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    for i in range(4):  # every output is one integer crop of its own padded image
        crops = [(dy, dx) for dy in range(5) for dx in range(5)
                 if torch.equal(padded[i, :, dy:dy + 8, dx:dx + 8], shifted[i])]
        assert crops, i
    assert not torch.equal(shifted, images)

    space = spaces.Dict({"image": spaces.Box(0, 255, (3, 8, 8), np.uint8), "joints": spaces.Box(-1, 1, (2,), np.float32)})
    buf = RandomShiftReplayBuffer(16, space, spaces.Box(-1, 1, (1,), np.float32), device="cpu", pad=2)
    rng = np.random.default_rng(0)
    for _ in range(16):
        obs = {"image": rng.integers(0, 255, (1, 3, 8, 8), dtype=np.uint8), "joints": rng.normal(size=(1, 2)).astype(np.float32)}
        nxt = {"image": rng.integers(0, 255, (1, 3, 8, 8), dtype=np.uint8), "joints": rng.normal(size=(1, 2)).astype(np.float32)}
        buf.add(obs, nxt, np.zeros((1, 1), np.float32), np.zeros(1), np.zeros(1), [{}])
    torch.manual_seed(0)
    idx = np.arange(16)
    plain = super(RandomShiftReplayBuffer, buf)._get_samples(idx)
    aug = buf._get_samples(idx)
    assert aug.observations["image"].shape == plain.observations["image"].shape
    assert not torch.equal(aug.observations["image"], plain.observations["image"])
    assert not torch.equal(aug.next_observations["image"], plain.next_observations["image"])
    assert torch.equal(aug.observations["joints"], plain.observations["joints"])   # only images move
    assert torch.equal(aug.rewards, plain.rewards) and torch.equal(aug.actions, plain.actions)
    with pytest.raises(ValueError, match="needs an image observation"):
        RandomShiftReplayBuffer(4, spaces.Dict({"joints": space["joints"]}), spaces.Box(-1, 1, (1,)), device="cpu")


def test_checked_in_stronger_baselines_name_their_source_and_fix_their_budget():
    for name, methods in {"inverted_pendulum": ("sac_utd", "ppo_zoo"), "reacher": ("sac_utd", "ppo_zoo"),
                          "half_cheetah": ("sac_utd", "ppo_zoo"), "reacher2d_camera": ("sac_drq",),
                          "cartpole_swingup_camera": ("sac_drq",)}.items():
        cfg = AgentConfig.load(ROOT / "config" / "agent" / f"{name}.yaml")
        for method in methods:
            section = cfg.section(method)
            assert section.budget > 0 and section.source, (name, method)
        if cfg.ppo_zoo:
            assert cfg.ppo_zoo.normalize and "rl-baselines3-zoo" in cfg.ppo_zoo.source
            assert cfg.ppo_zoo.budget == cfg.ppo.budget  # the same budget as default PPO, fixed in advance
        if cfg.sac_utd:
            assert cfg.sac_utd.kwargs["gradient_steps"] > 1 and cfg.sac_utd.budget <= cfg.sac.budget
        if cfg.sac_drq:
            assert cfg.sac_drq.random_shift_pad > 0 and cfg.sac_drq.policy_obs == "dict"
    zoo = AgentConfig.load(ROOT / "config" / "agent" / "inverted_pendulum.yaml").ppo_zoo.kwargs
    assert (zoo["n_steps"], zoo["learning_rate"], zoo["gamma"]) == (32, 0.000222425, 0.999)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ppo_zoo", "sac_utd", "sac_drq"])
def test_each_stronger_baseline_starts_evaluates_and_resumes(tmp_path, method):
    """A few hundred env steps of each new method through `agent run`, on the config's own settings
    (with a small replay buffer / warm-up so the test is short), continued once."""
    from stable_baselines3 import PPO, SAC

    if method == "sac_drq":
        base = ROOT / "config" / "agent" / "reacher2d_camera.yaml"
        changes = "eval: {every: 100, episodes: 1}\nsac_drq: {kwargs: {learning_starts: 50, batch_size: 8, buffer_size: 400}}\n"
        budget = 150
    else:
        base = ROOT / "config" / "agent" / "inverted_pendulum.yaml"
        changes = "eval: {every: 100, episodes: 2}\n"
        if method == "sac_utd":
            changes += "sac_utd: {kwargs: {learning_starts: 100}}\n"
        budget = 200
    (tmp_path / "c.yaml").write_text(f"extends: {base}\ntask: {{name: smoke_{method}}}\n{changes}")
    out = tmp_path / method
    args = ["agent", "run", "--config", str(tmp_path / "c.yaml"), "--method", method, "--seed", "100", "--tuning",
            "--out", str(out), "--no-progress"]
    assert main(args + ["--budget", str(budget)]) == 0
    rows = read_evals(out / "evals.csv")
    assert [r["env_steps"] for r in rows] == [0, 100, budget]
    meta = json.loads((out / "run.json").read_text())
    assert meta["method"] == method and meta["sb3_source"] and meta["protocol"]["role"] == "tuning"
    model = (PPO if method.startswith("ppo") else SAC).load(out / "model.zip", device="cpu")
    if method == "sac_utd":
        assert model.gradient_steps == 4
    if method == "ppo_zoo":
        assert (out / "vecnormalize.pkl").exists() and model.n_steps == 32
        seen = pickle.loads((out / "vecnormalize.pkl").read_bytes()).obs_rms.count
    if method == "sac_drq":
        assert model.replay_buffer_class.__name__ == "RandomShiftReplayBuffer"
        assert meta["random_shift_pad"] == 4
    assert main(args + ["--budget", str(budget + 100)]) == 0   # continued from the saved state
    rows2 = read_evals(out / "evals.csv")
    assert rows2[:len(rows)] == rows and rows2[-1]["env_steps"] == budget + 100
    if method == "ppo_zoo":  # the observation statistics carried on, not restarted
        assert pickle.loads((out / "vecnormalize.pkl").read_bytes()).obs_rms.count > seen + 50
        # the saved model, reloaded behind its frozen statistics, scores what the last evaluation did
        from mbrl_ros.agent.baselines import saved_greedy_policy, wrap_for_sb3
        from mbrl_ros.agent.common import evaluate, make_env

        config = AgentConfig.load(tmp_path / "c.yaml")
        env = wrap_for_sb3(make_env(config), config.ppo_zoo.policy_obs)
        policy, steps = saved_greedy_policy(method, out, env, normalize=True)
        assert steps == budget + 100
        returns = evaluate(env, policy, 2, progress=False, seed_base=TUNING_EVAL_SEED_BASE)
        assert returns == pytest.approx(rows2[-1]["returns"], abs=0.006)
