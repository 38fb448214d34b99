"""World model: shapes and gradients, learning on real MuJoCo episodes, checkpoints, the torch LatentModel.

Episodes come from the real camera reacher (mbrl_ros/Reacher2D-v0, MuJoCo + EGL
rendering) at small image sizes so the file stays fast on a 2-core machine.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

import mbrl_ros.envs as envs
from mbrl_ros.data.episodes import random_policy, rollout_episode
from mbrl_ros.runtime.belief import BeliefFilter
from mbrl_ros.runtime.latent import LatentModel, LatentState, imagine_by_steps
from mbrl_ros.spec import ObsSpec
from mbrl_ros.training.evaluation import evaluate
from mbrl_ros.training.trainer import Trainer
from mbrl_ros.world_model import WorldModel, WorldModelConfig
from mbrl_ros.world_model.behavior import behavior_losses, lambda_returns
from mbrl_ros.world_model.checkpoint import load_checkpoint, load_world_model, save_checkpoint
from mbrl_ros.world_model.latent_adapter import TorchFilterModel, TorchLatentModel

SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "reacher2d" / "checkpoint.pt"

torch.set_num_threads(1)


def reacher_episodes(n: int, steps: int, image_size: int = 16, seed: int = 0) -> list[dict]:
    env = envs.make("mbrl_ros/Reacher2D-v0", image_size=image_size, episode_steps=steps)
    eps = [rollout_episode(env, random_policy(2), seed=seed + i) for i in range(n)]
    env.close()
    return eps


def random_batch(spec: ObsSpec, action_dim: int, b: int = 3, t: int = 6, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    batch = {
        "joints": rng.normal(size=(b, t, spec.joint_dim)).astype(np.float32),
        "action": rng.uniform(-1, 1, (b, t, action_dim)).astype(np.float32),
        "reward": rng.normal(size=(b, t)).astype(np.float32),
        "is_first": np.zeros((b, t), bool),
        "is_terminal": rng.uniform(size=(b, t)) < 0.1,
    }
    if spec.has_image:
        batch["image"] = rng.integers(0, 256, (b, t, *spec.image_shape), dtype=np.uint8)
    return batch


def grads_of(module: torch.nn.Module) -> list[float]:
    return [float(p.grad.abs().sum()) if p.grad is not None else 0.0 for p in module.parameters()]


@pytest.mark.parametrize("image_shape,keypoints,angles", [
    ((64, 64, 3), 0, ()), ((64, 64, 3), 3, (0,)), ((32, 32, 3), 0, ()), ((48, 48, 3), 2, ()), ((32, 48, 3), 0, ()),
    (None, 0, ()), (None, 0, (0, 1)), ((64, 64, 3), -4, ())])
def test_shapes_and_gradients(image_shape, keypoints, angles):
    """keypoints < 0 here means: that many keypoints and no conv features."""
    spec = ObsSpec(joint_dim=4, image_shape=image_shape, angle_joints=angles)
    # free_nats=0: with free bits a fresh model's small KL would (rightly) give the prior no gradient
    config = WorldModelConfig.preset("tiny", free_nats=0.0, keypoints=abs(keypoints), conv_features=keypoints >= 0)
    model = WorldModel(config, spec, action_dim=2)
    b = 3
    image = torch.randint(0, 256, (b, *image_shape), dtype=torch.uint8) if image_shape else None
    embed = model.encode(image, torch.randn(b, 4))
    assert embed.shape == (b, model.embed_dim)
    h, z = model.initial_state(b)
    assert h.shape == (b, model.deter_dim) and z.shape == (b, model.stoch_dim)
    h1, z1 = model.filter_step(h, z, torch.zeros(b, 2), embed)
    h2, z2 = model.prior_step(h1, z1, torch.ones(b, 2))
    assert h2.shape == h.shape and z2.shape == z.shape
    for head in (model.reward, model.value, model.cont):
        assert head(h2, z2).shape == (b,)
    assert torch.all((model.cont(h2, z2) >= 0) & (model.cont(h2, z2) <= 1))
    assert model.policy(h2, z2).shape == (b, 2)
    decoded = model.decode(h2, z2)
    assert decoded["joints"].shape == (b, 4)
    if image_shape:
        assert decoded["image"].shape == (b, *image_shape)
        assert float(decoded["image"].detach().min()) >= 0 and float(decoded["image"].detach().max()) <= 1
    else:
        assert "image" not in decoded
    # deterministic paths are deterministic; sampled ones are not
    assert torch.equal(model.prior_step(h1, z1, torch.ones(b, 2))[1], z2)
    assert not torch.equal(model.prior_step(h1, z1, torch.ones(b, 2), sample=True)[1], z2)

    total, metrics = model.loss(random_batch(spec, 2))
    assert torch.isfinite(total)
    total.backward()
    parts = [model.rssm, model.joint_decoder, model.joint_encoder, model.reward_head, model.cont_head]
    parts += [model.image_encoder, model.image_decoder] if image_shape else []
    for part in parts:
        assert all(g > 0 for g in grads_of(part)), f"no gradient reaches {type(part).__name__}"
    assert all(g == 0 for g in grads_of(model.actor) + grads_of(model.value_head))

    model.zero_grad()
    h_seq, z_seq = metrics["_states"]
    actor_loss, value_loss, _ = behavior_losses(model, h_seq.flatten(0, 1), z_seq.flatten(0, 1))
    (actor_loss + value_loss).backward()
    assert all(g > 0 for g in grads_of(model.actor)) and all(g > 0 for g in grads_of(model.value_head))
    # imagination flows *through* the world model but must not train it
    assert all(g == 0 for g in grads_of(model.rssm) + grads_of(model.reward_head))
    assert all(p.requires_grad for p in model.rssm.parameters())


def test_spatial_softmax_finds_a_peak_anywhere():
    """The soft-argmax reads a feature peak's position as coordinates, wherever the peak is."""
    from mbrl_ros.world_model.networks import SpatialSoftmax

    layer = SpatialSoftmax(channels=1, keypoints=1, height=16, width=16)
    with torch.no_grad():
        layer.select.weight.fill_(1.0)
        layer.select.bias.zero_()
        layer.log_temperature.fill_(-3.0)   # sharp: the peak dominates the softmax
    for row, col in [(0, 0), (3, 12), (15, 7), (8, 8)]:
        maps = torch.zeros(1, 1, 16, 16)
        maps[0, 0, row, col] = 1.0
        x, y = layer(maps)[0].tolist()
        assert abs(x - (-1 + 2 * col / 15)) < 1e-3 and abs(y - (-1 + 2 * row / 15)) < 1e-3


def test_joint_codec_reads_angles_as_sin_cos():
    from mbrl_ros.world_model.networks import JointCodec, symlog

    codec = JointCodec(4, angle_joints=(0,))
    joints = torch.tensor([[8.0, -2.0, 3.0, -40.0], [-3.5, 0.5, 0.0, 1.0]])
    feats = codec.features(joints)
    assert feats.shape == (2, 5) and codec.feature_dim == 5
    # a shoulder wound once more round reads the same
    assert torch.allclose(codec.features(joints + torch.tensor([2 * np.pi, 0, 0, 0])), feats, atol=1e-5)
    back = codec.joints(feats)
    assert torch.allclose(back[:, 1:], joints[:, 1:], atol=1e-4)       # symlog entries invert exactly
    wrapped = torch.remainder(joints[:, 0] + np.pi, 2 * np.pi) - np.pi
    assert torch.allclose(back[:, 0], wrapped, atol=1e-5)             # angles come back in (-pi, pi]
    plain = JointCodec(3)
    assert plain.feature_dim == 3 and torch.equal(plain.features(joints[:, :3]), symlog(joints[:, :3]))


def test_angle_error_is_wrapped_in_evaluation():
    from mbrl_ros.training.evaluation import joint_error

    err = joint_error(torch.tensor([[3.1, 3.1]]), torch.tensor([[-3.1, -3.1]]), angle_joints=(0,))
    assert abs(float(err[0, 0]) - (6.2 - 2 * np.pi)) < 1e-5 and abs(float(err[0, 1]) - 6.2) < 1e-5


def test_obs_spec_angle_joints_round_trip_and_checks():
    spec = ObsSpec(joint_dim=4, image_shape=None, angle_joints=(1, 0, 1))
    assert spec.angle_joints == (0, 1) and ObsSpec.from_dict(spec.to_dict()) == spec
    assert ObsSpec.from_dict({"joint_dim": 2, "image_shape": None}).angle_joints == ()  # older manifests
    with pytest.raises(ValueError, match="angle_joints"):
        ObsSpec(joint_dim=2, angle_joints=(2,))
    with pytest.raises(ValueError, match="conv_features=False needs keypoints"):
        WorldModelConfig.preset("tiny", conv_features=False)


def test_bad_inputs_are_named():
    spec = ObsSpec(joint_dim=4, image_shape=(32, 32, 3))
    model = WorldModel(WorldModelConfig.preset("tiny"), spec, action_dim=2)
    with pytest.raises(ValueError, match="needs an image"):
        model.encode(None, torch.zeros(1, 4))
    batch = random_batch(ObsSpec(joint_dim=5, image_shape=(32, 32, 3)), 2)
    with pytest.raises(ValueError, match="joints"):
        model.loss(batch)
    batch = random_batch(ObsSpec(joint_dim=4, image_shape=(16, 16, 3)), 2)
    with pytest.raises(ValueError, match="image"):
        model.loss(batch)
    with pytest.raises(ValueError, match="odd-sized|too small"):
        WorldModel(WorldModelConfig.preset("tiny"), ObsSpec(joint_dim=1, image_shape=(7, 7, 3)), 1)
    with pytest.raises(ValueError, match="unknown world-model preset"):
        WorldModelConfig.preset("huge")
    with pytest.raises(ValueError, match="deterr"):
        WorldModelConfig.from_dict({"deterr": 3})
    with pytest.raises(ValueError, match="seq_len"):
        WorldModelConfig.preset("tiny", seq_len=1)
    with pytest.raises(ValueError, match="lr_actor must be a positive number"):
        WorldModelConfig.preset("tiny", lr_actor=float("nan"))


def test_config_round_trip_and_presets():
    for name in WorldModelConfig.PRESETS:
        cfg = WorldModelConfig.preset(name)
        assert WorldModelConfig.from_dict(cfg.to_dict()) == cfg
    assert WorldModelConfig.preset("small") == WorldModelConfig()
    assert WorldModelConfig.preset("small", seq_len=64).seq_len == 64


def test_lambda_returns_limits():
    """lambda=0 is one-step TD, lambda=1 the discounted sum of rewards bootstrapped at the end."""
    rng = np.random.default_rng(0)
    horizon, n, gamma = 6, 4, 0.9
    reward, value = torch.tensor(rng.normal(size=(2, horizon + 1, n)), dtype=torch.float32)
    cont = torch.tensor(rng.uniform(0.5, 1, (horizon + 1, n)), dtype=torch.float32)
    td0 = lambda_returns(reward, cont, value, gamma, 0.0)
    torch.testing.assert_close(td0, reward[1:] + gamma * cont[1:] * value[1:])
    mc = lambda_returns(reward, cont, value, gamma, 1.0)
    for k in range(horizon):
        expected, factor = torch.zeros(n), torch.ones(n)
        for j in range(k + 1, horizon + 1):
            expected = expected + factor * reward[j]
            factor = factor * gamma * cont[j]
        expected = expected + factor * value[horizon]
        torch.testing.assert_close(mc[k], expected)


def test_loss_falls_on_reacher_episodes():
    eps = reacher_episodes(3, 30, image_size=16)
    trainer = Trainer.create(WorldModelConfig.preset("tiny", batch_size=6), eps, seed=0)
    first = [trainer.train_step()["loss/world_total"] for _ in range(5)]
    trainer.train(80, progress=False)
    last = [trainer.train_step()["loss/world_total"] for _ in range(5)]
    assert np.mean(last) < 0.6 * np.mean(first), (first, last)


def test_overfits_one_episode():
    """On the episode it trained on, the filtered reconstructions and rewards are close to the data."""
    ep = reacher_episodes(1, 40, image_size=16, seed=5)[0]
    cfg = WorldModelConfig.preset("tiny", deter=64, stoch=16, hidden=64, cnn_depth=8, batch_size=8, seq_len=16,
                                  train_actor=False, lr_model=2e-3)
    trainer = Trainer.create(cfg, [ep], seed=1)
    before = evaluate(trainer.model, [ep], horizons=[1])["horizons"]["0"]
    trainer.train(400, progress=False)
    after = evaluate(trainer.model, [ep], horizons=[1])["horizons"]["0"]
    pixel_var = float(np.var(ep["image"] / 255.0))
    joint_std = float(np.std(ep["joints"]))
    assert after["image_mse"] < 0.25 * pixel_var < before["image_mse"], (after, pixel_var, before)
    assert after["joint_rmse"] < 0.2 * joint_std, (after, joint_std)
    assert after["reward_r2"] > 0.8 and before["reward_r2"] < 0.5, (after, before)
    print("overfit one episode:", after)


def test_checkpoint_round_trip_and_corruption(tmp_path):
    spec = ObsSpec(joint_dim=4, image_shape=(32, 32, 3), joint_names=("a.pos", "b.pos", "a.vel", "b.vel"))
    model = WorldModel(WorldModelConfig.preset("tiny"), spec, action_dim=2).eval()
    path = save_checkpoint(tmp_path / "ck.pt", model, step=7, extra={"note": "x"})
    loaded, payload = load_world_model(path)
    assert payload["step"] == 7 and payload["extra"]["note"] == "x"
    assert loaded.obs_spec == spec and loaded.config == model.config and loaded.action_dim == 2
    h, z = model.initial_state(2)
    emb = model.encode(torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8), torch.randn(2, 4))
    a = torch.rand(2, 2)
    for m in (model, loaded):
        m.eval()
    torch.testing.assert_close(model.filter_step(h, z, a, emb), loaded.filter_step(h, z, a, emb))
    assert not list(tmp_path.glob(".*tmp")), "atomic write left a temp file"

    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "junk.pt")
    buf = io.BytesIO()
    torch.save({"format": "something/else"}, buf)
    (tmp_path / "other.pt").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="not a world-model checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_torch_latent_model_matches_manual_steps():
    torch.manual_seed(0)
    spec = ObsSpec(joint_dim=4, image_shape=(16, 16, 3))
    model = WorldModel(WorldModelConfig.preset("tiny"), spec, action_dim=2).eval()
    latent = TorchLatentModel(model)
    assert isinstance(latent, LatentModel) and latent.action_dim == 2 and latent.has_value

    ep = reacher_episodes(1, 6, image_size=16)[0]
    filt = BeliefFilter(TorchFilterModel(model))
    h, z = model.initial_state(1)
    for t in range(len(ep["reward"])):
        state = filt.update({"image": ep["image"][t], "joints": ep["joints"][t]}, ep["action"][t])
        with torch.no_grad():
            emb = model.encode(torch.as_tensor(ep["image"][t:t + 1]), torch.as_tensor(ep["joints"][t:t + 1]))
            h, z = model.filter_step(h, z, torch.as_tensor(ep["action"][t:t + 1]), emb)
        np.testing.assert_allclose(state.h, h.numpy(), atol=1e-6)
        np.testing.assert_allclose(state.z, z.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="image"):
        filt.update({"image": np.zeros((8, 8, 3), np.uint8), "joints": ep["joints"][0]})

    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (5, 4, 2)).astype(np.float32)
    rewards, values = latent.imagine(state, actions)
    ref_r, ref_v = imagine_by_steps(latent, state, actions)
    np.testing.assert_allclose(rewards, ref_r, atol=1e-5)
    np.testing.assert_allclose(values, ref_v, atol=1e-5)
    with torch.no_grad():
        hh, zz = torch.as_tensor(state.h).repeat(5, 1), torch.as_tensor(state.z).repeat(5, 1)
        for t in range(4):
            hh, zz = model.prior_step(hh, zz, torch.as_tensor(actions[:, t]))
            np.testing.assert_allclose(rewards[:, t], model.reward(hh, zz).numpy(), atol=1e-5)
            np.testing.assert_allclose(values[:, t], model.value(hh, zz).numpy(), atol=1e-5)
    nxt, r, v = latent.step(LatentState(state.h.repeat(5, 0), state.z.repeat(5, 0)), actions[:, 0])
    np.testing.assert_allclose(r, rewards[:, 0], atol=1e-5)
    assert nxt.h.shape == (5, model.deter_dim) and latent.policy(nxt).shape == (5, 2)
    with pytest.raises(ValueError, match="action"):
        latent.step(state, np.zeros((3, 2), np.float32))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter is the one export uses
def test_prior_step_exports_to_onnx_and_matches():
    """The run-time paths trace with torch.onnx.export (dynamo=False) and agree with ONNX Runtime."""
    import onnxruntime as ort

    model = WorldModel(WorldModelConfig.preset("tiny"), ObsSpec(joint_dim=4, image_shape=(32, 32, 3)), 2).eval()

    class Tick(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, image, joints, h, z, action):
            h1, z1 = self.m.filter_step(h, z, action, self.m.encode(image, joints))
            h2, z2 = self.m.prior_step(h1, z1, action)
            return h2, z2, self.m.reward(h2, z2), self.m.value(h2, z2), self.m.cont(h2, z2)

    h, z = model.initial_state(3)
    args = (torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8), torch.randn(3, 4), h, z, torch.rand(3, 2))
    names = ["image", "joints", "h", "z", "action"]
    buf = io.BytesIO()
    torch.onnx.export(Tick(), args, buf, dynamo=False, input_names=names,
                      dynamic_axes={n: {0: "batch"} for n in names})
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    outs = session.run(None, {n: a.numpy() for n, a in zip(names, args)})
    with torch.no_grad():
        ref = Tick()(*args)
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(o, r.numpy(), atol=1e-4)


def test_joint_loss_norm_tracks_feature_variance_and_round_trips(tmp_path):
    spec = ObsSpec(joint_dim=3)
    batch = random_batch(spec, 2, b=4, t=8)
    batch["joints"] *= np.array([0.01, 1.0, 10.0], np.float32)   # three very different ranges
    plain = WorldModel(WorldModelConfig.preset("tiny"), spec, action_dim=2)
    assert "joint_feature_var" not in plain.state_dict()          # older checkpoints still load
    model = WorldModel(WorldModelConfig.preset("tiny", joint_loss_norm=True), spec, action_dim=2).train()
    model.loss(batch)
    features = model.joint_codec.features(torch.as_tensor(batch["joints"])).reshape(-1, 3)
    torch.testing.assert_close(model.joint_feature_var, features.var(0, unbiased=False))
    seen = model.joint_feature_var.clone()
    model.eval().loss(random_batch(spec, 2, b=4, t=8, seed=1))    # evaluation does not move it
    torch.testing.assert_close(model.joint_feature_var, seen)
    loaded, _ = load_world_model(save_checkpoint(tmp_path / "ck.pt", model, step=1))
    torch.testing.assert_close(loaded.joint_feature_var, seen)


def test_joint_loss_norm_learns_small_range_features():
    """Reacher-v5's target position (+-0.2) is learnt far better when each feature's error is
    divided by its variance: unnormalised, the velocities (symlog +-2.5) take the model's capacity."""
    env = envs.make("mbrl_ros/Reacher-v5", render_image=False)
    eps = [rollout_episode(env, random_policy(2), seed=i) for i in range(8)]
    env.close()
    errors = {}
    for norm in (False, True):
        cfg = WorldModelConfig.preset("tiny", deter=64, stoch=16, hidden=64, batch_size=16, seq_len=16,
                                      train_actor=False, joint_loss_norm=norm)
        trainer = Trainer.create(cfg, eps, seed=0)
        trainer.train(300, progress=False)
        each = evaluate(trainer.model, eps, horizons=[1])["horizons"]["0"]["joint_rmse_each"]   # filtering
        errors[norm] = float(np.sqrt(np.mean(np.square(each[4:6]))))   # target x and y together
    target_std = float(np.std(np.concatenate([ep["joints"][:, 4:6] for ep in eps])))
    print("target-position RMSE (plain, normalised), std:", errors, target_std)
    assert errors[True] < 0.6 * errors[False], errors
    assert errors[True] < 0.6 * target_std, (errors, target_std)


def test_imagination_horizon_and_its_old_name():
    """The training imagination length is `imagination_horizon`; checkpoints and manifests
    written when it was called `horizon` (the shipped reacher2d model's) still load as it."""
    cfg = WorldModelConfig.preset("tiny", imagination_horizon=4)
    assert cfg.imagination_horizon == 4 and "horizon" not in cfg.to_dict()
    assert WorldModelConfig.from_dict({**cfg.to_dict(), "imagination_horizon": 6}).imagination_horizon == 6
    old = {k: v for k, v in cfg.to_dict().items() if k != "imagination_horizon"}
    assert WorldModelConfig.from_dict({**old, "horizon": 7}).imagination_horizon == 7
    with pytest.raises(ValueError, match="both 'horizon'.*'imagination_horizon'"):
        cfg.replace(horizon=7)  # an override in the old name beside the field is refused, never ignored
    with pytest.raises(ValueError, match="imagination_horizon must be >= 1"):
        cfg.replace(imagination_horizon=0)

    wm, payload = load_world_model(SHIPPED_CHECKPOINT)
    assert payload["config"]["horizon"] == 15 and wm.config.imagination_horizon == 15

    # behaviour learning imagines exactly imagination_horizon prior steps
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig.preset("tiny", imagination_horizon=3), ObsSpec(joint_dim=3), 2)
    steps, prior_step = [], model.prior_step
    model.prior_step = lambda *args, **kwargs: steps.append(1) or prior_step(*args, **kwargs)
    behavior_losses(model, *model.initial_state(4))
    assert len(steps) == 3
