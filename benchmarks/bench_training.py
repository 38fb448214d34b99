"""Benchmark: train the world model on the camera reacher for a bounded time, then evaluate it.

    .venv/bin/python benchmarks/bench_training.py --minutes 15 --preset small

1. Collects random-policy episodes of mbrl_ros/Reacher2D-v0 (64x64 camera) into
   runs/bench_training/data/{train,heldout50} (EpisodeCache; reused when present).
2. Trains the preset for --minutes of wall time (or --steps), logging to TensorBoard.
3. Evaluates on the held-out episodes: 1-step reward R^2, open-loop image MSE and
   joint errors at horizons 1/5/15/50.
Prints the command, config, machine and figures; writes them to <out>/bench.json.

    .venv/bin/python benchmarks/bench_training.py --speed [--preset small] [--rounds 4] [--speed-threads 1]

Training throughput only (benchmarks/training_speed.py): gradient steps/s of the code before and
after the speed-ups of docs/world_model.md ("Training speed"), on the same synthetic 64x64 camera
data in the same process, rounds interleaved; then the loss parity check. Writes <out>/speed.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine  # noqa: E402


def collect(cache_dir: Path, env_id: str, episodes: int, seed0: int, image_size: int, image: bool = True) -> None:
    """Fill `cache_dir` with `episodes` random-policy episodes (skips when already there)."""
    from tqdm import tqdm

    import mbrl_ros.envs as envs
    from mbrl_ros.data.episodes import EpisodeCache, content_key, random_policy, rollout_episode

    cache = EpisodeCache(cache_dir)
    key = content_key(env_id, str(episodes), str(seed0), str(image_size), str(image))
    if cache.has_source(key):
        return
    env = envs.make(env_id, image_size=image_size, render_image=image)
    policy = random_policy(env.action_space.shape[0])
    eps = [rollout_episode(env, policy, seed=seed0 + i)
           for i in tqdm(range(episodes), desc=f"collect {cache_dir.name}")]
    env.close()
    cache.add(eps, key, f"{env_id.split('/')[-1]}-random", obs_spec=env.unwrapped.obs_spec,
              action_spec=env.unwrapped.action_spec)


def specs_of(env_id: str, image_size: int, image: bool):
    """The env's (ObsSpec, ActionSpec) (for caches written before the cache recorded them)."""
    import mbrl_ros.envs as envs

    env = envs.make(env_id, image_size=image_size, render_image=image)
    specs = env.unwrapped.obs_spec, env.unwrapped.action_spec
    env.close()
    return specs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="mbrl_ros/Reacher2D-v0")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--train-episodes", type=int, default=50)
    parser.add_argument("--heldout-episodes", type=int, default=50,
                        help="more than 10: the reward's +1 success steps are rare (about 1-2%%), and a "
                             "small held-out set over- or under-represents them")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--minutes", type=float, default=15.0, help="training wall-time budget")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps instead")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_training")
    parser.add_argument("--no-image", action="store_true", help="joints-only observations")
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override preset fields, as for `mbrl-ros train --set`")
    parser.add_argument("--speed", action="store_true", help="training throughput before/after + loss parity only")
    parser.add_argument("--rounds", type=int, default=4, help="--speed: interleaved timing rounds")
    parser.add_argument("--round-steps", type=int, default=3, help="--speed: gradient steps per round")
    parser.add_argument("--speed-threads", type=int, default=1, help="--speed: torch threads")
    parser.add_argument("--both-cores", action="store_true",
                        help="--speed: also time the old and the new code on two torch threads (a 2-core machine running nothing else)")
    args = parser.parse_args(argv)
    if args.speed:
        return speed(args)

    data = args.out / "data"
    collect(data / "train", args.env, args.train_episodes, 1000, args.image_size, not args.no_image)
    collect(data / f"heldout{args.heldout_episodes}", args.env, args.heldout_episodes, 900_000, args.image_size, not args.no_image)
    if args.collect_only:
        return 0

    import torch

    from mbrl_ros.data.episodes import EpisodeCache
    from mbrl_ros.training.evaluation import evaluate, format_table
    from mbrl_ros.training.train_cli import parse_overrides
    from mbrl_ros.training.trainer import Trainer
    from mbrl_ros.world_model import WorldModelConfig

    torch.set_num_threads(args.threads)
    train_cache = EpisodeCache(data / "train")
    train_eps = train_cache.episodes()
    heldout = EpisodeCache(data / f"heldout{args.heldout_episodes}").episodes()
    config = WorldModelConfig.preset(args.preset, **parse_overrides(args.overrides))
    obs_spec, action_spec = train_cache.obs_spec, train_cache.action_spec
    if obs_spec is None or action_spec is None:  # a cache written before it recorded them
        env_obs_spec, env_action_spec = specs_of(args.env, args.image_size, not args.no_image)
        obs_spec, action_spec = obs_spec or env_obs_spec, action_spec or env_action_spec
    trainer = Trainer.create(config, train_eps, obs_spec=obs_spec, action_dim=int(train_eps[0]["action"].shape[1]),
                             seed=args.seed, log_dir=args.out / "tb", device=args.device, action_spec=action_spec)
    ckpt = args.out / "checkpoint.pt"

    start = time.perf_counter()
    trainer.train(args.steps or 10 ** 9, max_seconds=None if args.steps else args.minutes * 60,
                  checkpoint_path=ckpt, save_every=200)
    train_s = time.perf_counter() - start
    trainer.save(ckpt)
    steps = trainer.step

    model = trainer.model.cpu().eval()
    report = evaluate(model, heldout, out_dir=args.out / "eval")
    figures = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "device": args.device,
        "torch_threads": args.threads,
        "env": args.env,
        "image": not args.no_image,
        "preset": args.preset,
        "config": config.to_dict(),
        "train_episodes": len(train_eps),
        "train_env_steps": sum(len(e["reward"]) for e in train_eps),
        "heldout_episodes": len(heldout),
        "train_seconds": round(train_s, 1),
        "grad_steps": steps,
        "grad_steps_per_s": round(steps / train_s, 3),
        "sequence_steps_per_s": round(steps * config.batch_size * config.seq_len / train_s, 1),
        "checkpoint": str(ckpt),
        "eval": report,
    }
    (args.out / "bench.json").write_text(json.dumps(figures, indent=1))
    print(f"command : {figures['command']}")
    print(f"machine : {figures['machine']} (shared with other jobs: timings are noisy)")
    print(f"env     : {args.env} ({'joints only' if args.no_image else f'{args.image_size}px camera + joints'})")
    print(f"config  : preset={args.preset} batch={config.batch_size} seq_len={config.seq_len} "
          f"deter={config.deter} stoch={config.stoch} hidden={config.hidden} cnn_depth={config.cnn_depth}")
    print(f"data    : {len(train_eps)} train episodes ({figures['train_env_steps']} steps), "
          f"{len(heldout)} held-out")
    print(f"train   : {steps} grad steps in {train_s:.0f} s = {figures['grad_steps_per_s']} steps/s "
          f"({figures['sequence_steps_per_s']} sequence steps/s, batch x seq_len)")
    print(format_table(report))
    print(f"checkpoint: {ckpt}")
    return 0


def speed(args) -> int:
    from common import command

    import training_speed

    start = time.perf_counter()
    figures = training_speed.measure(args.preset, rounds=args.rounds, steps=args.round_steps,
                                     threads=args.speed_threads, both_cores=args.both_cores)
    parity = training_speed.loss_parity(args.preset)
    paired = {k.removeprefix("paired_ratio_"): figures.pop(k) for k in list(figures) if k.startswith("paired_ratio_")}
    ratios = {name: f["steps_per_s"] / figures["before"]["steps_per_s"] for name, f in figures.items() if name != "before"}
    out = {"command": command(), "machine": machine(), "preset": args.preset, "threads": args.speed_threads,
           "steps_per_s": figures, "ratio_vs_before": ratios, "paired_ratio_median": paired, "parity": parity,
           "wall_s": round(time.perf_counter() - start, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(out, indent=1))
    print(f"command : {out['command']}")
    print(f"machine : {out['machine']} (shared: rounds are interleaved so load changes hit both)")
    print(f"config  : preset={args.preset}, {args.speed_threads} torch thread(s), synthetic 64x64 camera data")
    for name, f in figures.items():
        print(f"{name:7s} : {f['steps_per_s']:.3f} steps/s (median of rounds {f['rounds']})")
    for name, ratio in ratios.items():
        print(f"ratio   : {name} / before = {ratio:.2f}x (medians); per round, paired: median {paired[name]:.2f}x")
    if "before_2t" in figures:
        same = figures["after_2t"]["steps_per_s"] / figures["before_2t"]["steps_per_s"]
        print(f"ratio   : after_2t / before_2t = {same:.2f}x (medians); per round, paired: median "
              f"{paired['after_2t_vs_before_2t']:.2f}x (the code alone, both on two threads)")
    print(f"parity  : loss {parity['loss_before']:.6g} vs {parity['loss_after']:.6g} (rel diff "
          f"{parity['loss_rel_diff']:.1e}); grad max abs diff {parity['grad_max_abs_diff']:.1e} of max "
          f"{parity['grad_max_abs']:.3g}; {parity['train_steps_compared']} training steps: loss metrics "
          f"max rel diff {parity['train_loss_max_rel_diff']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
