"""`mbrl-ros relabel`: give a trained world model a (new) task without re-ingesting or retraining it.

    mbrl-ros relabel --checkpoint runs/r1/checkpoint.pt --cache runs/r1/cache \
        --task config/tasks/reach.yaml --out runs/r1-reach --steps 2000
    mbrl-ros export --checkpoint runs/r1-reach/checkpoint.pt --store models/

Re-computes every episode's reward with the task (a task YAML, a module:function or an env
id: mbrl_ros.data.tasks; checked against the cache's observation spec), writes the
relabelled episodes to <out>/cache (for `mbrl-ros evaluate`), and trains only what the
reward touches: the reward head, the actor and the value, on the checkpoint's frozen
encoder and dynamics (Trainer.for_heads). Writes <out>/checkpoint.pt and <out>/task.json.

This is where a task lives for a model trained without a reward (reward_source none):
the relabelled checkpoint exports to a bundle with has_reward true, which the controller
plans with; the reward-free bundle it came from is refused by the controller.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CHECKPOINT = "checkpoint.pt"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="the trained world model (.pt)")
    parser.add_argument("--cache", type=Path, required=True, help="the episode cache it was trained on")
    parser.add_argument("--task", required=True, help="task YAML, module:function, or mbrl_ros env id")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.pt, task.json, cache/, tb/")
    parser.add_argument("--steps", type=int, required=True, help="gradient steps of the heads")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="training fields for the heads, e.g. --set lr_value=3e-4 train_actor=false")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much wall time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")


def relabel(episodes: list[dict], task) -> list[dict]:
    """The episodes with reward[t] = task(joints[t], action[t]) for t >= 1 (reward[0] stays the
    episode-start placeholder 0, as ingest writes it)."""
    import numpy as np

    out = []
    for ep in episodes:
        ep = dict(ep)
        reward = np.zeros(len(ep["reward"]), np.float32)
        reward[1:] = task(ep["joints"][1:], ep["action"][1:])
        ep["reward"] = reward
        out.append(ep)
    return out


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ValueError as exc:  # bad task, cache, checkpoint or override: one line
        print(f"mbrl-ros relabel: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..data.episodes import EpisodeCache, content_key
    from ..data.tasks import describe, load_task
    from ..spec import ActionSpec, ObsSpec
    from ..world_model.checkpoint import load_checkpoint
    from .train_cli import parse_overrides
    from .trainer import Trainer

    torch.set_num_threads(max(1, args.threads))
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if not args.cache.is_dir():
        raise ValueError(f"cache folder {args.cache} does not exist")
    ckpt = args.out / CHECKPOINT
    if ckpt.exists():
        raise ValueError(f"{ckpt} exists; choose another --out")
    payload = load_checkpoint(args.checkpoint)
    model_obs = ObsSpec.from_dict(payload["obs_spec"])
    cache = EpisodeCache(args.cache)
    # the names the task reads: the cache's (from the ingest config), else the checkpoint's
    obs_spec = cache.obs_spec or model_obs
    if obs_spec.joint_dim != model_obs.joint_dim:
        raise ValueError(f"cache {args.cache} has {obs_spec.joint_dim} joint entries, checkpoint "
                         f"{args.checkpoint} {model_obs.joint_dim}")
    action_spec = cache.action_spec or (ActionSpec.from_dict(payload["action_spec"]) if payload.get("action_spec")
                                        else ActionSpec(int(payload["action_dim"])))
    task = load_task(args.task, obs_spec, action_spec)
    episodes = cache.episodes()
    if not episodes:
        raise ValueError(f"no episodes in {args.cache}")
    episodes = relabel(episodes, task)
    rewards = np.concatenate([ep["reward"][1:] for ep in episodes])
    print(f"task {task.name}: {len(episodes)} episodes, {len(rewards)} steps relabelled; reward mean "
          f"{rewards.mean():.4g}, min {rewards.min():.4g}, max {rewards.max():.4g}", file=sys.stderr)
    if float(rewards.std()) == 0.0:
        print(f"mbrl-ros relabel: warning: task {task.name} gives the same reward ({rewards[0]:.4g}) on every "
              "step of these episodes: the heads cannot learn what to prefer", file=sys.stderr)

    args.out.mkdir(parents=True, exist_ok=True)
    relabelled = EpisodeCache(args.out / "cache")
    relabelled.add(episodes, content_key(json.dumps(sorted(p.name for p in cache.paths())), task.fingerprint()),
                   source_name=f"relabel-{task.name}", obs_spec=obs_spec, action_spec=action_spec,
                   reward=f"task {args.task}")
    trainer = Trainer.for_heads(args.checkpoint, episodes, config_overrides=parse_overrides(args.overrides),
                                log_dir=args.out / "tb", device=args.device, action_spec=action_spec)
    # the task goes with the checkpoint into the exported bundle's manifest (source_data.episodes)
    trainer.notes["source_data"] = json.loads(json.dumps({"task": describe(task), "cache": str(args.cache)},
                                                         default=str))
    (args.out / "task.json").write_text(json.dumps(describe(task), indent=1, default=str))
    (args.out / "config.json").write_text(json.dumps(trainer.config.to_dict(), indent=1))
    start = trainer.step
    trainer.train(args.steps, max_seconds=args.minutes * 60 if args.minutes else None, checkpoint_path=ckpt,
                  save_every=max(args.steps, 1))
    trainer.close()
    loss = trainer.last_metrics.get("loss/reward", float("nan"))
    print(f"heads trained {trainer.step - start} steps on the frozen world model of step {start}: "
          f"loss/reward={loss:.4g}; checkpoint {ckpt}")
    print(f"next: mbrl-ros export --checkpoint {ckpt} --store MODEL_STORE")
    return 0
