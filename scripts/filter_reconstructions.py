"""What a run's world model makes of the run's own episodes: filter each chosen episode with the
checkpoint, print the predicted vs real return, and draw real frames above the model's
reconstructions (the posterior decoded) at fixed steps.

    .venv/bin/python scripts/filter_reconstructions.py --run results/dmc_reacher_easy/mbrl/seed100 \
        --out docs/img/dmc_reacher_pilot_filter.png

Episodes: the last two the run collected and its best one (`--episodes` names cache files
instead). These are training episodes, so the figures are in-sample: a model that cannot
reconstruct or reward-predict them has not learnt what they show. For held-out figures use
`mbrl-ros evaluate` on episodes from scripts/random_episode_cache.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEPS = (1, 50, 100, 200, 300, 400, 500)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="results/<task>/mbrl/seed<S> (checkpoint.pt and cache/)")
    p.add_argument("--episodes", nargs="*", default=None, help="cache file names (default: last two and best)")
    p.add_argument("--out", type=Path, required=True, help="PNG: per episode a row of real frames, then the model's")
    p.add_argument("--scale", type=int, default=3, help="pixel magnification of the PNG")
    args = p.parse_args(argv)

    import imageio.v2 as imageio
    import torch

    from mbrl_ros.data.episodes import load_episode
    from mbrl_ros.world_model.checkpoint import load_world_model

    torch.set_num_threads(1)
    model, payload = load_world_model(args.run / "checkpoint.pt")
    model.eval()
    files = sorted((args.run / "cache").glob("*.npz"))
    if not files:
        raise SystemExit(f"no episodes in {args.run / 'cache'}")
    returns = {f.name: float(load_episode(f)["reward"].sum()) for f in files}
    names = args.episodes or list(dict.fromkeys([*(f.name for f in files[-2:][::-1]), max(returns, key=returns.get)]))
    print(f"{args.run} checkpoint at gradient step {payload['step']}; {len(files)} episodes, returns "
          + " ".join(f"{r:.0f}" for r in returns.values()))
    rows = []
    for name in names:
        ep = load_episode(args.run / "cache" / name)
        with torch.no_grad():
            post = model.observe({k: v[None] for k, v in ep.items()}, sample=False)
            h, z = post["h"][0], post["z"][0]
            reward = model.reward(h, z).numpy()
            images = model.decode(h, z)["image"].numpy()
        real = ep["reward"]
        corr = np.corrcoef(reward[1:], real[1:])[0, 1] if real[1:].std() > 0 else float("nan")
        print(f"{name}: return {real[1:].sum():.1f}, predicted {reward[1:].sum():.1f}, "
              f"per-step correlation {corr:.3f}, mean |error| {np.abs(reward[1:] - real[1:]).mean():.3f}")
        steps = [t for t in STEPS if t < len(real)]
        rows.append(np.concatenate([ep["image"][t] for t in steps], 1))
        rows.append(np.concatenate([(images[t] * 255).round().astype(np.uint8) for t in steps], 1))
    strip = np.concatenate(rows, 0).repeat(args.scale, 0).repeat(args.scale, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(args.out, strip)
    print(f"wrote {args.out} (per episode: real frames at steps {', '.join(map(str, steps))}, then the model's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
