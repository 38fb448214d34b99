"""Write random-action episodes of a package env straight into an episode cache (no bags), e.g.
held-out episodes for `mbrl-ros evaluate --cache` with the env kwargs a run used:

    MUJOCO_GL=egl .venv/bin/python scripts/random_episode_cache.py --env mbrl_ros/dmc-reacher_easy-v0 \
        --env-kwargs '{"image_size": 64, "action_repeat": 2, "proprio": false}' \
        --episodes 10 --seed 900000 --out runs/dmc_reacher_heldout

Why not `mbrl-ros collect` + `--bags`: a bag carries joint states, and a pixels-only DMC run
(proprio false) has none, so its checkpoint reads no joints; this writes exactly the
observation the run's env gives. Episode i uses seed + i (pick seeds no run trains or is
evaluated on).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mbrl_ros.data.collect_cli import env_kwargs_json  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", required=True, help="env id from mbrl_ros.envs")
    p.add_argument("--env-kwargs", type=env_kwargs_json, default={}, help="JSON, as a run config's task.env_kwargs")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="episode cache folder (created)")
    args = p.parse_args(argv)

    from tqdm import tqdm

    from mbrl_ros import envs
    from mbrl_ros.data.episodes import EpisodeCache, random_policy, rollout_episode

    env = envs.make(args.env, **args.env_kwargs)
    base = env.unwrapped
    policy = random_policy(env.action_space.shape[0])
    episodes = [rollout_episode(env, policy, seed=args.seed + i)
                for i in tqdm(range(args.episodes), desc=f"random episodes of {args.env}", unit="episode")]
    args.out.mkdir(parents=True, exist_ok=True)
    cache = EpisodeCache(args.out)
    cache.add(episodes, source_key=f"random:{args.env}:{json.dumps(args.env_kwargs, sort_keys=True)}:{args.seed}",
              source_name="random", obs_spec=base.obs_spec, action_spec=base.action_spec)
    print(f"wrote {len(episodes)} episodes ({sum(len(e['reward']) - 1 for e in episodes)} steps) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
