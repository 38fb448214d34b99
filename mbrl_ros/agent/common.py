"""What every method shares: the env instances, step/frame accounting, evaluation episodes.

All methods act in `make_env(config)` (the same gymnasium env, same kwargs) and
are evaluated by `evaluate()` on the same eval seeds, so the learning curves of
the model-based agent and the SB3 baselines are measured the same way.
"""
from __future__ import annotations

import math
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


class BundleStore:
    """One loaded bundle as a model store (what ControlLoop reads), to act with a bundle on its own."""

    def __init__(self, bundle):
        self.current = bundle
        self.root = bundle.path


def control_loop(store, planner: str, planner_config: dict, seed: int, action_spec=None):
    """The robot's controller core (mbrl_ros.runtime.control.ControlLoop) set up to act in an env.

    No wall-clock deadline: the planner runs its full configured search, so a learning curve does
    not depend on how fast the machine is. No rate limit: the agent's actions are not limited. The
    loop reads `store.current` at every tick, so a bundle the agent publishes is swapped in as on
    the robot.
    """
    from mbrl_ros.runtime.control import ControlConfig, ControlLoop

    config = ControlConfig(planner=planner, planner_config=dict(planner_config), max_delta=2.0,
                           planning_budget_s=math.inf, seed=seed)
    return ControlLoop(store, config, action_spec)


def evaluation_policy(store, config, run_seed: int, action_spec=None) -> "ControlPolicy":
    """The greedy policy the agent evaluates run `run_seed` with: a fresh controller on `store`'s
    models, the config's planner seeded with run_seed + 1 (the exploring controller uses run_seed),
    no exploration noise. Scripts that replay a run's bundles call this too, so a replay
    reproduces the run's evaluations."""
    m = config.mbrl
    return ControlPolicy(control_loop(store, m.planner, m.planner_config, run_seed + 1, action_spec))


class ControlPolicy(Policy):
    """A policy acting through a ControlLoop: each act() is one `loop.tick()` on the env's observation.

    The observation is stamped `now` (one env step is one control tick), so it is never stale.
    noise: std of Gaussian exploration noise added to the tick's action outside the loop (0 for
    evaluation); the noisy action is what the env gets, and `loop.applied()` passes it back, so it
    is also what the next belief update and the planner's warm start see.
    A tick that does not plan (an observation the model refuses, a planner failure) raises
    RuntimeError: a learning curve must not quietly contain the controller's safe commands.
    """

    def __init__(self, loop, noise: float = 0.0, seed: Optional[int] = None):
        if not noise >= 0:
            raise ValueError(f"exploration noise must be >= 0, got {noise!r}")
        self.loop, self.noise = loop, float(noise)
        self.rng = np.random.default_rng(seed)
        self.ticks = 0
        self.last_result = None  # the last tick's TickResult (its action before the noise; plan info)

    def reset(self) -> None:
        self.loop.reset()

    def act(self, obs: dict) -> np.ndarray:
        from mbrl_ros.runtime.control import Observation

        now = self.ticks / self.loop.config.control_rate_hz
        self.ticks += 1
        result = self.loop.tick(now, Observation(joints=obs["joints"], joints_stamp=now,
                                                 image=obs.get("image"), image_stamp=now))
        self.last_result = result
        if result.mode != "plan":
            raise RuntimeError(f"controller did not plan ({result.mode}): {result.reason}")
        action = result.action.copy()
        if self.noise > 0:
            noisy = action + self.noise * self.rng.standard_normal(action.shape)
            action = np.clip(noisy, -1.0, 1.0).astype(np.float32)
            self.loop.applied(action)
        return action


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
             infos: Optional[list] = None, seed_base: int = EVAL_SEED_BASE) -> list[float]:
    """Returns of `episodes` evaluation episodes on seeds `seed_base` + i (no exploration noise:
    the caller passes its greedy policy). These steps are not counted as training env steps.
    `infos`: a list that gets one list of step infos per episode."""
    returns = []
    for i in tqdm(range(episodes), desc=desc, leave=False, disable=not progress):
        episode_infos = [] if infos is not None else None
        ret, _ = run_episode(env, policy, seed_base + i, episode_infos)
        returns.append(ret)
        if infos is not None:
            infos.append(episode_infos)
    return returns
