"""ONNX export: parity with torch, refusal to publish a mismatching bundle, manifest, store layout, CLI.

Real torch export and real ONNX Runtime throughout; tiny preset so the file stays fast.
"""
import copy
import json
import os
from datetime import datetime

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from mbrl_ros.cli import main as cli_main
from mbrl_ros.export import ParityError, check_parity, export_to_store, measure_parity, prune, write_bundle
from mbrl_ros.export.parity import parity_bounds, parity_failures
from mbrl_ros.runtime import load_bundle
from mbrl_ros.runtime.manifest import DEFAULT_FUSED_HORIZON, read_manifest, seal, sha256_file
from mbrl_ros.runtime.store_layout import list_versions, read_current
from mbrl_ros.spec import ActionSpec, ObsSpec
from mbrl_ros.world_model import WorldModel, WorldModelConfig
from mbrl_ros.world_model.checkpoint import save_checkpoint

OBS = ObsSpec(joint_dim=6, image_shape=(64, 64, 3))
TOL = 1e-4


def make_model(obs_spec=OBS, action_dim=2, seed=0, **overrides):
    torch.manual_seed(seed)
    return WorldModel(WorldModelConfig.preset("tiny", **overrides), obs_spec, action_dim).eval()


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def published(model, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    result = export_to_store(model, store, training_step=1234, source_data={"episodes": ["a.npz", "b.npz"]},
                             action_spec=ActionSpec(2, low=(-2.0, -3.0), high=(2.0, 3.0)))
    return store, result


def test_parity_single_steps_and_50_step_rollouts(published, model):
    store, result = published
    expected = {"initial_state", "filter_single", "filter_rollout_50", "step_single", "step_rollout_50",
                "imagine_fused", "imagine_50", "plan_cem", "plan_mppi"}  # plan_*: the whole-plan graphs
    drift = {"fp32_drift_filter_rollout_50", "fp32_drift_step_rollout_50", "fp32_drift_imagine_50"}
    assert set(result.parity) == expected | drift  # drift: torch fp32 vs fp64 on the same rollouts
    assert all(v <= TOL for v in result.parity.values()), result.parity
    # an untrained tiny model amplifies no rounding: fp32 itself is ~1e-7 from fp64 along 50 steps
    assert all(0 < result.parity[k] < 1e-5 for k in drift), result.parity
    # Measured again on the published files, fresh inputs, larger batch.
    again = measure_parity(model, load_bundle(store / result.version), steps=50, batch=8, seed=7)
    assert all(v <= TOL for v in again.values()), again


def test_parity_joints_only_model_and_other_fused_horizon(tmp_path):
    wm = make_model(ObsSpec(joint_dim=4, image_shape=None), action_dim=3, seed=1)
    result = export_to_store(wm, tmp_path, fused_horizon=7)
    manifest = read_manifest(tmp_path / result.version)
    assert manifest.fused_horizon == 7 and manifest.raw["sizes"]["fused_horizon"] == 7
    assert load_bundle(tmp_path / result.version).latent.fused_horizon == 7
    assert all(v <= TOL for v in result.parity.values()), result.parity


@pytest.mark.parametrize("conv_features", [True, False])
def test_parity_keypoint_encoder_and_angle_joints(tmp_path, conv_features):
    wm = make_model(ObsSpec(joint_dim=6, image_shape=(64, 64, 3), angle_joints=(0, 2)), keypoints=4, seed=2,
                    conv_features=conv_features)
    result = export_to_store(wm, tmp_path)
    assert all(v <= TOL for v in result.parity.values()), result.parity


def test_parity_failure_is_not_published(published, model):
    store, good = published
    before = sorted(os.listdir(store))
    tampered = copy.deepcopy(model)
    with torch.no_grad():  # the exported graph no longer matches the model it is checked against
        tampered.reward_head[-1].bias += 0.05
        tampered.rssm.gru.weight_hh.mul_(1.01)
    with pytest.raises(ParityError) as info:
        export_to_store(model, store, training_step=9999, reference=tampered)
    assert "parity failed" in str(info.value) and "step_single=" in str(info.value)
    assert info.value.report["step_single"] > TOL  # the measured numbers travel with the error
    assert sorted(os.listdir(store)) == before  # no new version, no temp leftovers
    assert read_current(store) == good.version


def _tamper_initializer(path, scale):
    """Scale the largest weight tensor of an ONNX file in place (a deliberately wrong graph)."""
    graph = onnx.load(str(path))
    init = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * scale, init.name))
    onnx.save(graph, str(path))


def test_wrong_graph_with_valid_checksums_fails_parity(model, tmp_path):
    write_bundle(model, tmp_path, "v000001-s000000000")
    _tamper_initializer(tmp_path / "imagine.onnx", 1.5)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    raw["graphs"]["imagine"]["sha256"] = sha256_file(tmp_path / "imagine.onnx")  # integrity checks pass...
    (tmp_path / "manifest.json").write_text(json.dumps(seal(raw)))
    bundle = load_bundle(tmp_path)
    with pytest.raises(ParityError) as info:  # ...but parity does not
        check_parity(model, bundle)
    assert info.value.report["imagine_fused"] > TOL
    assert info.value.report["step_single"] <= TOL  # untouched graphs still agree


def test_wrong_plan_graph_with_valid_checksums_fails_parity(model, tmp_path):
    write_bundle(model, tmp_path, "v000001-s000000000", plan_graphs=("cem",))
    _tamper_initializer(tmp_path / "plan_cem.onnx", 1.5)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    raw["graphs"]["plan_cem"]["sha256"] = sha256_file(tmp_path / "plan_cem.onnx")
    (tmp_path / "manifest.json").write_text(json.dumps(seal(raw)))
    with pytest.raises(ParityError) as info:
        check_parity(model, load_bundle(tmp_path))
    assert info.value.report["plan_cem"] > TOL and info.value.report["imagine_fused"] <= TOL


def test_plan_graph_options_and_their_errors(model, tmp_path):
    """plan_graphs=() leaves them out (and parity with them); bad names and precisions are refused up front."""
    result = export_to_store(model, tmp_path / "none", plan_graphs=(), parity_steps=5)
    assert "plan_cem" not in result.parity
    assert not [f for f in os.listdir(result.path) if f.startswith("plan_")]
    with pytest.raises(ValueError, match="no plan graph for planner 'mcts'"):
        write_bundle(model, tmp_path / "a", "v1", plan_graphs=("mcts",))
    with pytest.raises(ValueError, match="unknown plan graph precision"):
        write_bundle(model, tmp_path / "b", "v1", plan_precisions=("int4",))
    with pytest.raises(ValueError, match="unknown settings"):
        write_bundle(model, tmp_path / "c", "v1", plan_graphs={"cem": {"temperature": 1.0}})


def test_free_running_rollouts_get_a_wider_bound_than_single_steps(published):
    # fp32 rounding compounds along a 50-step rollout where each side keeps its own state (a trained
    # Reacher-v5 model: 1.2e-4 there, with every single-step figure passing); single steps and the
    # fused horizon keep the plain bound, so a wrong graph is still caught there.
    _, result = published
    bounds = parity_bounds(result.parity, TOL)
    assert {k for k, b in bounds.items() if b == 10 * TOL} == {"filter_rollout_50", "step_rollout_50", "imagine_50"}
    assert {k for k, b in bounds.items() if b == TOL} == {"initial_state", "filter_single", "step_single",
                                                          "imagine_fused", "plan_cem", "plan_mppi"}
    assert parity_failures(dict(result.parity, step_rollout_50=1.2e-4), TOL) == {}
    for key, value in (("step_single", 1.2e-4), ("imagine_fused", 1.2e-4), ("step_rollout_50", 1.2e-3)):
        assert parity_failures(dict(result.parity, **{key: value}), TOL) == {key: value}
    assert list(parity_failures(dict(result.parity, imagine_50=float("nan")), TOL)) == ["imagine_50"]
    # A model whose own fp32 rollout drifts 3e-4 from fp64 (a learnt swing-up) may differ from ONNX
    # by up to 10x that on that rollout only; the single steps keep their bound, NaN drift adds nothing.
    chaotic = dict(result.parity, fp32_drift_step_rollout_50=3e-4, step_rollout_50=2.9e-3)
    assert parity_bounds(chaotic, TOL)["step_rollout_50"] == pytest.approx(3e-3)
    assert parity_failures(chaotic, TOL) == {}
    assert parity_failures(dict(chaotic, step_rollout_50=3.1e-3), TOL) == {"step_rollout_50": 3.1e-3}
    assert parity_failures(dict(chaotic, fp32_drift_step_single=1.0, step_single=1e-3), TOL) == {"step_single": 1e-3}
    assert parity_bounds(dict(chaotic, fp32_drift_step_rollout_50=float("nan")), TOL)["step_rollout_50"] == 10 * TOL
    assert not any(k.startswith("fp32_drift_") for k in parity_bounds(chaotic, TOL))


def test_manifest_content(published, model):
    store, result = published
    bundle_dir = store / result.version
    raw = json.loads((bundle_dir / "manifest.json").read_text())
    assert raw["format"] == "mbrl_ros.bundle" and raw["format_version"] == 2
    assert raw["version"] == result.version == "v000001-s000001234"
    assert raw["training_step"] == 1234
    assert raw["source_data"] == {"episodes": ["a.npz", "b.npz"]}
    datetime.strptime(raw["created"], "%Y-%m-%dT%H:%M:%SZ")
    assert ObsSpec.from_dict(raw["obs_spec"]) == OBS
    assert ActionSpec.from_dict(raw["action_spec"]) == ActionSpec(2, low=(-2.0, -3.0), high=(2.0, 3.0))
    assert raw["sizes"] == {"deter": model.deter_dim, "stoch": model.stoch_dim, "embed": model.embed_dim,
                            "action": 2, "fused_horizon": DEFAULT_FUSED_HORIZON}
    assert WorldModelConfig.from_dict(raw["world_model_config"]) == model.config
    assert raw["has_value"] is True
    assert raw["parity"]["tolerance"] == TOL and raw["parity"]["rollout_tolerance"] == 10 * TOL
    assert raw["parity"]["bounds"] == parity_bounds(result.parity, TOL)
    assert raw["parity"]["max_abs_diff"] == result.parity
    for name in ("filter", "step", "imagine"):
        entry = raw["graphs"][name]
        assert entry["sha256"] == sha256_file(bundle_dir / entry["file"])
    init = raw["files"]["initial_state"]
    assert init["sha256"] == sha256_file(bundle_dir / init["file"])
    filt = raw["graphs"]["filter"]
    assert [i["name"] for i in filt["inputs"]] == ["image", "joints", "h", "z", "action"]
    assert filt["inputs"][0] == {"name": "image", "dtype": "uint8", "shape": ["batch", 64, 64, 3]}
    assert [o["name"] for o in raw["graphs"]["step"]["outputs"]] == ["h_next", "z_next", "reward", "value", "cont"]
    assert raw["graphs"]["imagine"]["inputs"][2]["shape"] == ["batch", DEFAULT_FUSED_HORIZON, 2]


def test_versions_sort_and_prune_keeps_current(model, tmp_path):
    names = [export_to_store(model, tmp_path, training_step=s, keep=2, parity_steps=3).version
             for s in (100, 20, 3)]
    assert names == sorted(names) and names[0].startswith("v000001-") and names[2].startswith("v000003-")
    assert list_versions(tmp_path) == names[1:]  # keep=2
    (tmp_path / "CURRENT").write_text(names[1] + "\n")  # an operator rolled back to the older one
    export_to_store(model, tmp_path, training_step=4, publish=False, parity_steps=3)
    assert prune(tmp_path, keep=1) == [names[2]]  # newest unpublished one stays, CURRENT is never pruned
    assert read_current(tmp_path) == names[1] and names[1] in list_versions(tmp_path)


def test_cli_export_prints_parity(model, tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "wm.pt", model, step=77)
    store = tmp_path / "store"
    assert cli_main(["export", "--checkpoint", str(ckpt), "--store", str(store), "--no-publish"]) == 0
    out = capsys.readouterr().out
    assert "filter_rollout_50" in out and "imagine_fused" in out and "--no-publish" in out
    assert read_current(store) is None and list_versions(store) == ["v000001-s000000077"]
    raw = json.loads((store / "v000001-s000000077" / "manifest.json").read_text())
    assert raw["source_data"]["checkpoint_sha256"] and raw["training_step"] == 77

    assert cli_main(["export", "--checkpoint", str(ckpt), "--store", str(store)]) == 0
    assert read_current(store) == "v000002-s000000077"

    (tmp_path / "broken.pt").write_bytes(ckpt.read_bytes()[:1000])
    assert cli_main(["export", "--checkpoint", str(tmp_path / "broken.pt"), "--store", str(store)]) == 1
    assert "corrupt or truncated" in capsys.readouterr().err
    assert read_current(store) == "v000002-s000000077"

    # whole-plan graphs: which ones, and reduced-precision variants (planner_config "precision")
    assert cli_main(["export", "--checkpoint", str(ckpt), "--store", str(store), "--plan-graphs", "cem",
                     "--plan-precisions", "int8"]) == 0
    assert sorted(load_bundle(store / read_current(store)).latent.plan_graphs) == ["plan_cem", "plan_cem_int8"]
    assert cli_main(["export", "--checkpoint", str(ckpt), "--store", str(store), "--plan-graphs", "cem",
                     "--plan-settings", '{"cem": {"iterations": 3, "num_elites": 8}}']) == 0
    plan = load_bundle(store / read_current(store)).latent.plan_graphs["plan_cem"].plan
    assert (plan["iterations"], plan["num_elites"]) == (3, 8)
    assert cli_main(["export", "--checkpoint", str(ckpt), "--store", str(store), "--plan-graphs", "cem",
                     "--plan-settings", '{"mppi": {}}']) == 2
    assert cli_main(["export", "--checkpoint", str(ckpt), "--store", str(store), "--plan-graphs", "none"]) == 0
    assert load_bundle(store / read_current(store)).latent.plan_graphs == {}
    capsys.readouterr()
    assert cli_main(["export", "--checkpoint", str(ckpt), "--store", str(store), "--plan-precisions", "int4"]) == 1
    assert "unknown plan graph precision" in capsys.readouterr().err


def test_fused_horizon_round_trips_through_export(model, tmp_path, capsys):
    """`--fused-horizon` / `fused_horizon=` set the imagine graph's length, recorded as
    sizes.fused_horizon and read back by the runtime; the training imagination_horizon is a
    separate field of the recorded world-model config."""
    ckpt = save_checkpoint(tmp_path / "wm.pt", model, step=5)
    store = tmp_path / "store"
    assert cli_main(["export", "--checkpoint", str(ckpt), "--store", str(store), "--fused-horizon", "6"]) == 0
    bundle = load_bundle(store / read_current(store))
    assert bundle.manifest.fused_horizon == bundle.latent.fused_horizon == 6
    assert bundle.manifest.raw["sizes"]["fused_horizon"] == 6 and "horizon" not in bundle.manifest.raw["sizes"]
    assert bundle.manifest.graph("imagine")["inputs"][2]["shape"] == ["batch", 6, 2]
    assert {g.plan["horizon"] for g in bundle.latent.plan_graphs.values()} == {6}  # plan graphs plan over it too
    recorded = bundle.manifest.raw["world_model_config"]
    assert recorded["imagination_horizon"] == model.config.imagination_horizon != 6 and "horizon" not in recorded

    assert cli_main(["export", "--checkpoint", str(ckpt), "--store", str(store), "--fused-horizon", "0"]) == 2
    assert "--fused-horizon must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the old, ambiguous flag is gone
        cli_main(["export", "--checkpoint", str(ckpt), "--store", str(store), "--horizon", "6"])
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="fused_horizon must be an integer >= 1"):
            write_bundle(model, tmp_path / "bad", "v000009-s000000000", fused_horizon=bad)
