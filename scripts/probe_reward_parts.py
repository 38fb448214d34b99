"""Diagnostic: which part of a reward the world model's reward head has learnt.

    .venv/bin/python scripts/probe_reward_parts.py --checkpoint results/reacher/mbrl/seed0/checkpoint.pt \
        --cache results/reacher_rewardscale/mbrl/seed1/cache --last 40

Many MuJoCo rewards are "task term - w * |action|^2" (Reacher-v5: -distance(fingertip,
target) - |a|^2). The action cost is easy to learn and, under random or noisy actions, has
most of the variance, so a reward head can score a high R^2 while knowing nothing about
the task term the planner needs to aim. This fits w by least squares on the recorded
(reward, |a|^2) pairs, removes w * |a|^2 from both the real and the predicted 1-step
reward (the prior step with the recorded action, as the planners see it) and prints the
R^2 of what is left. Numbers on episodes the model trained on are an upper bound.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def r_squared(real: np.ndarray, pred: np.ndarray) -> float:
    return 1.0 - float(((real - pred) ** 2).sum()) / float(((real - real.mean()) ** 2).sum())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="an episode cache (an agent run's cache/)")
    parser.add_argument("--last", type=int, default=40, help="use the cache's last N episodes")
    args = parser.parse_args(argv)

    import torch

    from mbrl_ros.data.episodes import EpisodeCache
    from mbrl_ros.world_model.checkpoint import load_world_model
    from mbrl_ros.world_model.model import batch_to_torch

    torch.set_num_threads(1)
    model, payload = load_world_model(args.checkpoint)
    episodes = EpisodeCache(args.cache).episodes()[-args.last:]
    if not episodes:
        print(f"no episodes in {args.cache}", file=sys.stderr)
        return 1
    real, pred, action_sq = [], [], []
    with torch.no_grad():
        for ep in episodes:
            batch = batch_to_torch({k: v[None] for k, v in ep.items()})
            post = model.observe(batch, sample=False)
            h, z = post["h"][0], post["z"][0]
            h1, z1 = model.prior_step(h[:-1], z[:-1], batch["action"][0, 1:])  # 1-step prior, step 1..T-1
            pred.append(model.reward(h1, z1).numpy())
            real.append(batch["reward"][0, 1:].numpy())
            action_sq.append((batch["action"][0, 1:] ** 2).sum(-1).numpy())
    real, pred, action_sq = (np.concatenate(x).astype(np.float64) for x in (real, pred, action_sq))
    weight = -float(np.polyfit(action_sq, real, 1)[0])
    task_real, task_pred = real + weight * action_sq, pred + weight * action_sq
    print(f"checkpoint {args.checkpoint} (step {payload['step']}), {len(episodes)} episodes of {args.cache}, "
          f"{len(real)} steps")
    print(f"reward: R^2 {r_squared(real, pred):.3f}  (variance {real.var():.5f})")
    print(f"action cost: fitted w = {weight:.3f}, variance of w|a|^2 {(weight * action_sq).var():.5f}")
    print(f"task term (reward + w|a|^2): R^2 {r_squared(task_real, task_pred):.3f}  "
          f"(variance {task_real.var():.5f}, squared error {((task_real - task_pred) ** 2).mean():.5f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
