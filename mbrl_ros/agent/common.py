"""What every method shares: the env instances, step/frame accounting, evaluation episodes.

All methods act in `make_env(config)` (the same gymnasium env, same kwargs) and
are evaluated by `evaluate()` on the same eval seeds, so the learning curves of
the model-based agent and the SB3 baselines are measured the same way.
"""
from __future__ import annotations

from typing import Callable, Optional

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import mbrl_ros.envs as envs
from mbrl_ros.agent.config import EVAL_SEED_BASE, AgentConfig


def make_env(config: AgentConfig) -> gym.Env:
    """The task env with the mbrl_ros contract (dict obs, actions in [-1, 1])."""
    return envs.make(config.env_id, **config.env_kwargs)


def frame_skip(env: gym.Env) -> int:
    """Physics frames per agent action (the action repeat): frames = env steps x this."""
    return int(getattr(env.unwrapped, "frame_skip", 1))


def training_seed(run_seed: int, episode: int) -> int:
    """Reset seed of training episode `episode` of run `run_seed` (disjoint from the eval seeds)."""
    return run_seed * 100_003 + episode


def resume_seed(run_seed: int, steps_done: int) -> int:
    """Seed of every RNG of a baseline run resumed after `steps_done` env steps: a fresh stream
    per (run, resume point), so a resumed run neither replays its first episodes nor its first
    exploration noise."""
    return int(np.random.SeedSequence([int(run_seed), int(steps_done)]).generate_state(1)[0])


class Policy:
    """What evaluate() drives: reset() at episode start, act(obs) -> action in [-1, 1]."""

    def reset(self) -> None:  # pragma: no cover - interface
        pass

    def act(self, obs: dict) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class RandomPolicy(Policy):
    def __init__(self, action_dim: int, seed: int = 0):
        self.action_dim = action_dim
        self.rng = np.random.default_rng(seed)

    def act(self, obs: dict) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)


class FunctionPolicy(Policy):
    """Wraps `f(obs) -> action` (e.g. an SB3 model's deterministic predict)."""

    def __init__(self, fn: Callable[[dict], np.ndarray]):
        self.fn = fn

    def act(self, obs: dict) -> np.ndarray:
        return np.asarray(self.fn(obs), np.float32)


def run_episode(env: gym.Env, policy: Policy, seed: int, infos: Optional[list] = None,
                trace: Optional[list] = None) -> tuple[float, int]:
    """One episode; returns (undiscounted return, env steps). `infos`: a list to append each step's
    info to; `trace`: a list to append (None, start observation, False) and then each step's
    (action, next observation, terminated) to."""
    obs, _ = env.reset(seed=seed)
    policy.reset()
    if trace is not None:
        trace.append((None, obs, False))
    total, steps = 0.0, 0
    while True:
        action = policy.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        steps += 1
        if infos is not None:
            infos.append(info)
        if trace is not None:
            trace.append((action, obs, terminated))
        if terminated or truncated:
            return total, steps


def evaluate(env: gym.Env, policy: Policy, episodes: int, desc: str = "eval", progress: bool = True,
             infos: Optional[list] = None) -> list[float]:
    """Returns of `episodes` evaluation episodes on the fixed eval seeds (no exploration noise:
    the caller passes its greedy policy). These steps are not counted as training env steps.
    `infos`: a list that gets one list of step infos per episode."""
    returns = []
    for i in tqdm(range(episodes), desc=desc, leave=False, disable=not progress):
        episode_infos = [] if infos is not None else None
        ret, _ = run_episode(env, policy, EVAL_SEED_BASE + i, episode_infos)
        returns.append(ret)
        if infos is not None:
            infos.append(episode_infos)
    return returns
