"""Held-out evaluation of a world model: 1-step and open-loop prediction errors, reward R^2.

For every start step s of an episode, the model filters the real observations up
to s (posterior means), then imagines k steps with the *recorded* actions
(prior means, as the planners do) and is compared with the real observation at
s + k. Metrics per horizon k:

  image_mse   mean squared pixel error, pixels in [0, 1]
  joint_rmse  root mean squared joint error (joint units: rad, rad/s; the error of an
              angle in ObsSpec.angle_joints is wrapped into [-pi, pi))
  joint_mae   mean absolute joint error
  joint_rmse_each  the RMSE of each joint entry (metrics.json only; which ones the model gets wrong)
  reward_r2   R^2 of the predicted vs real reward of step s + k (1 - SSE/SST)

Horizon 0 is the posterior reconstruction (filtering) of steps 1..T-1, for reference
(step 0's reward is the episode-start placeholder 0, not a real reward).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..data.episodes import Episode
from ..world_model.model import WorldModel, batch_to_torch

HORIZONS = (1, 5, 15, 50)


def joint_error(pred: torch.Tensor, real: torch.Tensor, angle_joints: Sequence[int] = ()) -> torch.Tensor:
    """pred - real, with the entries of unlimited revolute joints wrapped into [-pi, pi)."""
    err = pred - real
    if angle_joints:
        idx = list(angle_joints)
        err[..., idx] = torch.remainder(err[..., idx] + np.pi, 2 * np.pi) - np.pi
    return err


class _Accumulator:
    """Running sums for one horizon."""

    def __init__(self, angle_joints: Sequence[int] = ()):
        self.angle_joints = tuple(angle_joints)
        self.image_se = self.image_n = self.joint_ae = self.joint_n = 0.0
        self.joint_se_each: Optional[np.ndarray] = None   # per joint entry; their sum is the aggregate's
        self.reward_pred: list[np.ndarray] = []
        self.reward_true: list[np.ndarray] = []

    def add(self, pred: dict, real_image, real_joints, pred_reward, real_reward):
        if "image" in pred:
            self.image_se += float(((pred["image"] - real_image.float() / 255.0) ** 2).sum())
            self.image_n += real_image.numel()
        if "joints" in pred:
            err = joint_error(pred["joints"], real_joints, self.angle_joints)
            self.joint_ae += float(err.abs().sum())
            self.joint_n += err.numel()
            se_each = (err ** 2).reshape(-1, err.shape[-1]).sum(0).numpy().astype(np.float64)
            self.joint_se_each = se_each if self.joint_se_each is None else self.joint_se_each + se_each
        self.reward_pred.append(pred_reward.numpy())
        self.reward_true.append(real_reward.numpy())

    def result(self) -> dict:
        out: dict = {"count": int(sum(len(r) for r in self.reward_true))}
        if self.image_n:
            out["image_mse"] = self.image_se / self.image_n
        if self.joint_n:
            out["joint_rmse"] = float(np.sqrt(self.joint_se_each.sum() / self.joint_n))
            out["joint_mae"] = self.joint_ae / self.joint_n
            rows = self.joint_n / len(self.joint_se_each)
            out["joint_rmse_each"] = [float(v) for v in np.sqrt(self.joint_se_each / rows)]
        pred, true = np.concatenate(self.reward_pred), np.concatenate(self.reward_true)
        sst = float(((true - true.mean()) ** 2).sum())
        out["reward_r2"] = 1.0 - float(((pred - true) ** 2).sum()) / sst if sst > 0 else float("nan")
        out["reward_rmse"] = float(np.sqrt(((pred - true) ** 2).mean()))
        return out


def _episode_tensors(ep: Episode) -> dict[str, torch.Tensor]:
    return batch_to_torch({k: v[None] for k, v in ep.items()})


@torch.no_grad()
def evaluate(model: WorldModel, episodes: Sequence[Episode], horizons: Sequence[int] = HORIZONS,
             out_dir: Optional[Path] = None, strip_context: int = 5, strip_horizon: int = 50) -> dict:
    """Metrics per horizon over `episodes`; with `out_dir`, also metrics.json, open_loop.png/.gif."""
    if not episodes:
        raise ValueError("evaluate needs at least one held-out episode")
    model = model.eval()
    horizons = sorted(set(int(k) for k in horizons))
    acc = {k: _Accumulator(model.obs_spec.angle_joints) for k in [0, *horizons]}
    for ep in episodes:
        batch = _episode_tensors(ep)
        steps = batch["joints"].shape[1]
        post = model.observe(batch, sample=False)
        h_all, z_all = post["h"][0], post["z"][0]
        images = batch.get("image")
        image_of = (lambda idx: images[0, idx]) if images is not None else (lambda idx: None)
        # Filtered reconstruction from step 1: reward[0] is the episode-start placeholder.
        acc[0].add(model.decode(h_all[1:], z_all[1:]), image_of(slice(1, None)), batch["joints"][0, 1:],
                   model.reward(h_all[1:], z_all[1:]), batch["reward"][0, 1:])
        h, z = h_all[:-1], z_all[:-1]              # start states s = 0 .. T-2
        starts = torch.arange(steps - 1)
        for k in range(1, max(horizons) + 1):
            target = torch.clamp(starts + k, max=steps - 1)
            h, z = model.prior_step(h, z, batch["action"][0, target])
            if k in acc:
                valid = (starts + k) <= steps - 1
                if not bool(valid.any()):
                    continue
                hv, zv, tv = h[valid], z[valid], target[valid]
                acc[k].add(model.decode(hv, zv), image_of(tv), batch["joints"][0, tv],
                           model.reward(hv, zv), batch["reward"][0, tv])
    report = {"episodes": len(episodes), "horizons": {str(k): a.result() for k, a in acc.items()
                                                       if a.reward_true}}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps(report, indent=1))
        if model.obs_spec.has_image:
            save_open_loop_media(model, episodes[0], out_dir, strip_context, strip_horizon)
    return report


def format_table(report: dict) -> str:
    """The per-horizon metrics as a fixed-width text table."""
    cols = ("count", "image_mse", "joint_rmse", "joint_mae", "reward_r2", "reward_rmse")
    lines = [f"{'horizon':>8} " + " ".join(f"{c:>11}" for c in cols)]
    for k, row in report["horizons"].items():
        label = "filter" if k == "0" else k
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append(f"{'-':>11}" if v is None else (f"{v:>11d}" if isinstance(v, int) else f"{v:>11.4f}"))
        lines.append(f"{label:>8} " + " ".join(cells))
    return "\n".join(lines)


def format_joint_table(report: dict, joint_names: Sequence[str]) -> str:
    """The RMSE of each joint entry per horizon (rows: joints), or "" without joints."""
    rows = {k: row["joint_rmse_each"] for k, row in report["horizons"].items() if "joint_rmse_each" in row}
    if not rows:
        return ""
    count = len(next(iter(rows.values())))
    names = list(joint_names) if len(joint_names) == count else [f"joint[{j}]" for j in range(count)]
    width = max(12, *(len(n) for n in names))
    lines = [f"{'rmse':<{width}} " + " ".join(f"{'filter' if k == '0' else 'h' + k:>8}" for k in rows)]
    for j, name in enumerate(names):
        lines.append(f"{name:<{width}} " + " ".join(f"{each[j]:>8.4f}" for each in rows.values()))
    return "\n".join(lines)


@torch.no_grad()
def open_loop_frames(model: WorldModel, batch: dict, context: int) -> dict[str, np.ndarray]:
    """real, reconstructed (posterior) and imagined (prior from step `context`-1) images, uint8 [B,T,H,W,3].

    Imagined frames before `context` are the reconstructions (the model saw those).
    """
    model = model.eval()
    batch = batch_to_torch(batch)
    b, steps = batch["joints"].shape[:2]
    post = model.observe(batch, sample=False)
    recon = model.decode(post["h"].flatten(0, 1), post["z"].flatten(0, 1))["image"].reshape(batch["image"].shape)
    h, z = post["h"][:, context - 1], post["z"][:, context - 1]
    imagined = [recon[:, t] for t in range(context)]
    for t in range(context, steps):
        h, z = model.prior_step(h, z, batch["action"][:, t])
        imagined.append(model.decode(h, z)["image"])
    to_u8 = lambda x: (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # noqa: E731
    return {"real": batch["image"].numpy(), "recon": to_u8(recon), "imagined": to_u8(torch.stack(imagined, 1))}


def open_loop_strip(model: WorldModel, batch: dict, context: int, max_frames: int = 16) -> np.ndarray:
    """One HWC uint8 image: per sequence, rows real / reconstructed / imagined over time."""
    frames = open_loop_frames(model, batch, context)
    steps = frames["real"].shape[1]
    cols = np.linspace(0, steps - 1, min(max_frames, steps)).round().astype(int)
    rows = []
    for i in range(frames["real"].shape[0]):
        for key in ("real", "recon", "imagined"):
            rows.append(np.concatenate(list(frames[key][i, cols]), axis=1))
    return np.concatenate(rows, axis=0)


def save_open_loop_media(model: WorldModel, ep: Episode, out_dir: Path, context: int, horizon: int) -> None:
    """open_loop.png (rows: real / imagined, every few steps) and open_loop.gif (real | imagined)."""
    import imageio.v2 as imageio

    length = min(len(ep["reward"]), context + horizon)
    window = {k: v[None, :length] for k, v in ep.items()}
    frames = open_loop_frames(model, window, context)
    real, imagined = frames["real"][0], frames["imagined"][0]
    cols = np.arange(context - 1, length, max(1, (length - context) // 10))
    strip = np.concatenate([np.concatenate(list(real[cols]), 1), np.concatenate(list(imagined[cols]), 1)], 0)
    imageio.imwrite(out_dir / "open_loop.png", strip)
    gif = [np.concatenate([r, p], 1) for r, p in zip(real, imagined)]
    imageio.mimsave(out_dir / "open_loop.gif", gif, duration=0.1)
