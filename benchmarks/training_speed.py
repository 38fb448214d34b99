"""Training throughput of the world model: the layouts/thread settings of networks.py before and
after, on the same data in the same process, with a parity check of the losses.

    .venv/bin/python benchmarks/bench_training.py --speed [--preset small] [--rounds 4] [--steps 3]

Variants (each a Trainer from the same seed, so identical weights and batches):
    before        conv weights and decoder activations NCHW, glibc's default malloc (the code before)
    after         channels-last convs (networks.set_channels_last) + freed memory kept in the heap
                  (training/allocator.py)
    after_2t      `after` with two torch threads (--both-cores): both cores of a 2-core machine that
                  runs nothing else (the agent's `mbrl.threads: 2`)
    before_2t     `before` with two torch threads (--both-cores): what the second core alone gives the
                  old code, so after_2t / before_2t is the code's speed-up at equal threads
`before` and `after` run with the thread count given (--speed-threads, default 1: the agent's
mbrl.threads default). The allocator setting and the thread count are process-wide, so they are
switched before each variant's round.
Timing: rounds of `steps` gradient steps, the variants interleaved round by round (ABCABC...) so
a shared machine's load changes hit all of them alike; steps/s = median over rounds.
Parity: the world-model loss and its gradient norm on one batch with the same torch seed, and
the metrics of the first training steps, before vs after (float32 rounding only).
"""
from __future__ import annotations

import time

import numpy as np


def synthetic_episodes(n: int = 4, steps: int = 200, joints: int = 5, actions: int = 1, seed: int = 0) -> list[dict]:
    """Random camera episodes: the compute of a training step depends on shapes, not pixel values."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = steps + 1
        out.append({"image": rng.integers(0, 256, (t, 64, 64, 3), dtype=np.uint8),
                    "joints": rng.standard_normal((t, joints)).astype(np.float32),
                    "action": rng.uniform(-1, 1, (t, actions)).astype(np.float32),
                    "reward": rng.random(t).astype(np.float32),
                    "is_first": np.r_[True, np.zeros(steps, bool)], "is_terminal": np.zeros(t, bool)})
    return out


def make_trainer(preset: str, episodes: list[dict], channels_last: bool, seed: int = 0, **overrides):
    from mbrl_ros.spec import ObsSpec
    from mbrl_ros.training.trainer import Trainer
    from mbrl_ros.world_model import WorldModelConfig
    from mbrl_ros.world_model.networks import set_channels_last

    ep = episodes[0]
    spec = ObsSpec(joint_dim=int(ep["joints"].shape[1]), image_shape=tuple(ep["image"].shape[1:]))
    trainer = Trainer.create(WorldModelConfig.preset(preset, **overrides), episodes, obs_spec=spec,
                             action_dim=int(ep["action"].shape[1]), seed=seed, log_dir=None)
    set_channels_last(trainer.model, channels_last)
    return trainer


def loss_parity(preset: str = "small", episodes=None, steps: int = 3) -> dict:
    """Max relative differences before vs after: one batch's loss and gradient norm, then the
    metrics of `steps` training steps from the same start."""
    import torch

    episodes = episodes or synthetic_episodes()
    before = make_trainer(preset, episodes, channels_last=False)
    after = make_trainer(preset, episodes, channels_last=True)
    batch = before.sampler.sample()
    after.sampler.sample()  # keep the two samplers' streams in step for the training steps below
    out = {}
    for name, tr in (("before", before), ("after", after)):
        torch.manual_seed(123)
        tr.model.zero_grad(set_to_none=True)
        loss, _ = tr.model.loss(batch)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in tr.model.world_parameters() if p.grad is not None])
        out[name] = (float(loss.detach()), grads)
        tr.model.zero_grad(set_to_none=True)
    rel = lambda a, b: abs(a - b) / max(abs(a), 1e-12)
    result = {"loss_before": out["before"][0], "loss_after": out["after"][0],
              "loss_rel_diff": rel(out["before"][0], out["after"][0]),
              "grad_max_abs_diff": float((out["before"][1] - out["after"][1]).abs().max()),
              "grad_max_abs": float(out["before"][1].abs().max())}
    worst = 0.0
    for _ in range(steps):
        torch.manual_seed(before.step)
        mb = before.train_step()
        torch.manual_seed(after.step)
        ma = after.train_step()
        worst = max(worst, max(rel(mb[k], ma[k]) for k in mb if k.startswith("loss/") and abs(mb[k]) > 1e-3))
    result["train_steps_compared"] = steps
    result["train_loss_max_rel_diff"] = worst
    return result


def measure(preset: str = "small", rounds: int = 4, steps: int = 3, episodes=None, threads: int = 1,
            both_cores: bool = False) -> dict:
    """steps/s per variant: median over interleaved rounds (see the module docstring)."""
    import torch

    from mbrl_ros.training.allocator import keep_freed_memory

    episodes = episodes or synthetic_episodes()
    # name: (trainer, keep freed memory, torch threads)
    variants = {"before": (make_trainer(preset, episodes, False), False, threads),
                "after": (make_trainer(preset, episodes, True), True, threads)}
    if both_cores:
        variants["after_2t"] = (make_trainer(preset, episodes, True), True, 2)
        variants["before_2t"] = (make_trainer(preset, episodes, False), False, 2)
    old_threads = torch.get_num_threads()
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for name, (tr, keep, n_threads) in variants.items():  # warm-up: oneDNN primitive caches, heap
            keep_freed_memory(keep)
            torch.set_num_threads(n_threads)
            tr.train_step()
        for _ in range(rounds):
            for name, (tr, keep, n_threads) in variants.items():
                keep_freed_memory(keep)
                torch.set_num_threads(n_threads)
                tr.train_step()  # one step in the new allocator and thread settings before timing
                start = time.perf_counter()
                for _ in range(steps):
                    tr.train_step()
                times[name].append(steps / (time.perf_counter() - start))
    finally:
        torch.set_num_threads(old_threads)
        keep_freed_memory(True)
    out = {name: {"steps_per_s": float(np.median(v)), "rounds": [round(x, 3) for x in v]} for name, v in times.items()}
    # Paired by round (the two ran back to back, under about the same load): the robust figure.
    for name in variants:
        if name != "before":
            out[f"paired_ratio_{name}"] = float(np.median(np.array(times[name]) / np.array(times["before"])))
    if both_cores:  # the code's own speed-up on two threads, paired the same way
        out["paired_ratio_after_2t_vs_before_2t"] = float(np.median(np.array(times["after_2t"])
                                                                   / np.array(times["before_2t"])))
    return out
