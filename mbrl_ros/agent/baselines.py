"""stable-baselines3 SAC / PPO on the same env instances, step accounting and eval schedule.

Methods (each a section of the agent config, budget fixed there before any run):
    sac, ppo     SB3 defaults (or the config's kwargs)
    sac_utd      SAC at a higher update-to-data ratio (gradient_steps > 1 per env step)
    ppo_zoo      PPO with rl-baselines3-zoo's tuned hyperparameters (`source` names the file and commit;
                 `normalize: true` as the zoo's VecNormalize)
    sac_drq      SAC on images with DrQ-style random-shift augmentation of the replay batches (drq.py)

The SB3 model acts in `make_env(config)` (the same mbrl_ros env as the model-based
agent), seen through `JointsObs` (MlpPolicy on the state vector) or as the dict
observation (MultiInputPolicy, camera tasks). `num_timesteps` (n_envs = 1) is
the env-step count; `EvalScheduleCallback` evaluates the deterministic policy
at exactly `config.eval.points(budget)` on the shared eval seeds.

Resumable: at every evaluation, and between evaluations every `save_every_s` seconds of
wall-clock (at an episode end for SAC, at a rollout start for PPO, so no collected step is
left out of what is saved), the model (and SAC's replay buffer) is saved in the run folder; a
rerun loads them and learns the remaining steps. Past `sparse_after` evaluations can be an hour
apart on the camera tasks, which is what the timed saves are for.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from mbrl_ros.agent.common import FunctionPolicy, evaluate, frame_skip, make_env, resume_seed
from mbrl_ros.agent.config import METHODS, AgentConfig
from mbrl_ros.agent.runlog import RunLog, check_continuable, supersede_run_folder


class JointsObs(gym.ObservationWrapper):
    """Dict obs -> its 'joints' state vector (for MlpPolicy)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = env.observation_space["joints"]

    def observation(self, observation: dict) -> np.ndarray:
        return observation["joints"]


def wrap_for_sb3(env: gym.Env, policy_obs: str) -> gym.Env:
    if policy_obs == "joints":
        return JointsObs(env)
    if policy_obs == "dict":
        return env
    raise ValueError(f"policy_obs must be 'joints' or 'dict', got {policy_obs!r}")


def greedy_policy(model, normalizer=None) -> FunctionPolicy:
    """An SB3 model as the evaluations drive it: its deterministic action (on observations normalized
    with the training statistics, frozen, when it learnt behind a VecNormalize)."""
    if normalizer is None:
        return FunctionPolicy(lambda obs: model.predict(obs, deterministic=True)[0])
    return FunctionPolicy(lambda obs: model.predict(normalizer.normalize_obs(obs), deterministic=True)[0])


# File names in a baseline's run folder.
MODEL_FILE, BUFFER_FILE, NORMALIZER_FILE = "model.zip", "replay_buffer.pkl", "vecnormalize.pkl"


def algo_class(method: str):
    """The SB3 class (SAC or PPO) a baseline method runs."""
    from stable_baselines3 import PPO, SAC

    return {"sac": SAC, "ppo": PPO}[algo_of(method)]


def saved_greedy_policy(method: str, folder: Path, env: gym.Env, normalize: bool) -> tuple[FunctionPolicy, int]:
    """The greedy policy of the model a run folder last saved, driving `env` (wrapped for SB3) as
    the run's evaluations did: with its VecNormalize statistics, frozen, when it learnt behind one.
    Also returns the env steps the model had taken when it was saved."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    model = algo_class(method).load(str(folder / MODEL_FILE), device="cpu")
    normalizer = None
    if normalize:
        normalizer = VecNormalize.load(str(folder / NORMALIZER_FILE), DummyVecEnv([lambda: env]))
        normalizer.training = False
    return greedy_policy(model, normalizer), int(model.num_timesteps)


def algo_of(method: str) -> str:
    """'sac' or 'ppo': the SB3 algorithm a baseline method runs."""
    algo = method.split("_")[0]
    if method not in METHODS or algo not in ("sac", "ppo"):
        raise ValueError(f"baseline method must be one of {', '.join(m for m in METHODS if m != 'mbrl')}, got {method!r}")
    return algo


ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "elu": "ELU", "gelu": "GELU"}


def sb3_kwargs(b) -> dict:
    """The SB3 constructor kwargs of a baseline section: YAML names turned into the objects SB3 takes
    (policy_kwargs.activation_fn: relu -> torch.nn.ReLU; random_shift_pad -> the DrQ replay buffer)."""
    import torch.nn as nn

    kwargs = dict(b.kwargs)
    policy_kwargs = dict(kwargs.get("policy_kwargs") or {})
    if isinstance(policy_kwargs.get("activation_fn"), str):
        name = policy_kwargs["activation_fn"].lower()
        if name not in ACTIVATIONS:
            raise ValueError(f"policy_kwargs.activation_fn must be one of {sorted(ACTIVATIONS)}, got {name!r}")
        policy_kwargs["activation_fn"] = getattr(nn, ACTIVATIONS[name])
    if policy_kwargs:
        kwargs["policy_kwargs"] = policy_kwargs
    if b.random_shift_pad:
        from mbrl_ros.agent.drq import RandomShiftReplayBuffer

        if b.policy_obs != "dict":
            raise ValueError("random_shift_pad needs image observations (policy_obs: dict)")
        kwargs["replay_buffer_class"] = RandomShiftReplayBuffer
        kwargs["replay_buffer_kwargs"] = {**(kwargs.get("replay_buffer_kwargs") or {}), "pad": int(b.random_shift_pad)}
    return kwargs


class EvalScheduleCallback(BaseCallback):
    """Evaluates at the scheduled env-step points, logs to the RunLog, saves the model for resuming."""

    def __init__(self, agent: "BaselineAgent"):
        super().__init__()
        self.agent = agent
        self.episode_ended = False

    def _on_training_start(self) -> None:
        self.agent.evaluate_due(self.model)

    def _on_step(self) -> bool:
        self.agent.bar.update(self.model.num_timesteps - self.agent.bar.n)
        self.agent.evaluate_due(self.model)
        self.episode_ended = bool(np.any(self.locals.get("dones", False)))
        return True

    def _on_rollout_start(self) -> None:
        # Timed saves happen here, where every collected step is stored (SB3 stores a step after
        # `_on_step`) and trained on; SAC's wait for an episode end, so that a resumed run starts
        # a fresh episode where one began. (The saves at evaluations keep the evaluated weights,
        # and so leave out the one step collected but not yet stored.)
        if (self.agent.algo == "ppo" or self.episode_ended) and self.agent.save_time():
            self.agent.save(self.model)


class BaselineAgent:
    """One SB3 run (a baseline method: sac, ppo, sac_utd, ppo_zoo, sac_drq) on one task and seed, in `out`."""

    def __init__(self, config: AgentConfig, method: str, seed: int, out: Path, progress: bool = True,
                 restart: bool = False, save_every_s: float = 600.0):
        import torch

        self.algo = algo_of(method)
        self.config, self.method, self.seed, self.out = config, method, int(seed), Path(out)
        self.b = config.section(method)
        if self.b.normalize and self.b.policy_obs != "joints":
            raise ValueError(f"{method}: normalize needs policy_obs: joints (VecNormalize of the state vector)")
        self.kwargs = sb3_kwargs(self.b)
        self.progress = progress
        self.model_path = self.out / MODEL_FILE
        self.buffer_path = self.out / BUFFER_FILE
        self.normalizer_path = self.out / NORMALIZER_FILE
        self.save_every_s = float(save_every_s)
        self._last_save = time.monotonic()
        if restart:
            supersede_run_folder(self.out)
        check_continuable(self.out, [self.model_path] + ([self.normalizer_path] if self.b.normalize else []))
        torch.set_num_threads(max(1, self.b.threads))
        env = make_env(config)
        self.frame_skip = frame_skip(env)
        self.env = wrap_for_sb3(env, self.b.policy_obs)
        self.normalizer = None
        if self.b.normalize:
            self.env = self.normalizer = self._normalized(self.env)
        # No reset here: SB3 seeds the env (and torch, numpy, the action space) with the model's seed
        # when it builds or loads the model, and the first reset of learn() uses that seed.
        self.eval_env = wrap_for_sb3(make_env(config), self.b.policy_obs)
        self.log = RunLog(self.out, {**config.run_meta(method, self.seed, self.frame_skip),
                                     "sb3_kwargs": self.b.kwargs or "stable-baselines3 defaults",
                                     **({"sb3_source": self.b.source} if self.b.source else {}),
                                     **({"normalize": True} if self.b.normalize else {}),
                                     **({"random_shift_pad": self.b.random_shift_pad} if self.b.random_shift_pad else {})})
        self.pending: list[int] = []  # set in run(), once the step count of a resumed model is known
        self.bar = None

    def _normalized(self, env: gym.Env):
        """The env behind a VecNormalize: its saved statistics when the run resumes, else fresh ones."""
        from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

        venv = DummyVecEnv([lambda: env])
        if self.model_path.exists() and self.normalizer_path.exists():
            return VecNormalize.load(str(self.normalizer_path), venv)
        return VecNormalize(venv, gamma=float(self.b.kwargs.get("gamma", 0.99)))

    def _new_model(self):
        policy = "MlpPolicy" if self.b.policy_obs == "joints" else "MultiInputPolicy"
        return algo_class(self.method)(policy, self.env, seed=self.seed, verbose=0, device="cpu", **self.kwargs)

    def evaluate_due(self, model) -> None:
        steps = int(model.num_timesteps)
        while self.pending and self.pending[0] <= steps:
            point = self.pending.pop(0)
            returns = evaluate(self.eval_env, greedy_policy(model, self.normalizer), self.config.eval.episodes,
                               desc=f"eval@{point}", progress=self.progress, seed_base=self.config.eval.seed_base)
            # SB3 checks the callback after every env step, so `steps == point` here.
            row = self.log.add_eval(point, point * self.frame_skip, returns)
            if self.bar is not None:
                self.bar.set_postfix(eval=f"{row['return_mean']:.1f}")
            if point > 0:
                self.save(model)  # records the step count too
            else:
                self.log.update(env_steps=steps, frames=steps * self.frame_skip)

    def save(self, model) -> None:
        """Model (+ replay buffer) into the run folder, each written whole before it replaces the old."""
        tmp_model = self.out / "model.tmp.zip"
        model.save(tmp_model)
        if hasattr(model, "save_replay_buffer"):
            tmp_buffer = self.out / "replay_buffer.tmp.pkl"
            model.save_replay_buffer(tmp_buffer)
            os.replace(tmp_buffer, self.buffer_path)
        if self.normalizer is not None:  # the statistics the saved model's inputs were normalized with
            tmp_norm = self.out / "vecnormalize.tmp.pkl"
            self.normalizer.save(str(tmp_norm))
            os.replace(tmp_norm, self.normalizer_path)
        os.replace(tmp_model, self.model_path)
        steps = int(model.num_timesteps)
        self.log.update(env_steps=steps, frames=steps * self.frame_skip)
        self._last_save = time.monotonic()

    def save_time(self) -> bool:
        """Whether `save_every_s` has passed since the last save."""
        return time.monotonic() - self._last_save >= self.save_every_s

    def run(self) -> RunLog:
        with self.log.stopped_on_interrupt():  # the last timed save stands
            return self._run()

    def _run(self) -> RunLog:
        if self.model_path.exists():  # resume where the last save left it
            model = algo_class(self.method).load(self.model_path, env=self.env, device="cpu")
            if self.buffer_path.exists() and hasattr(model, "load_replay_buffer"):
                model.load_replay_buffer(self.buffer_path)
            # load() reseeds every RNG with the run seed, as at the run's start: left so, the resumed
            # run would replay its first episodes' starts (targets) and exploration noise.
            model.set_random_seed(resume_seed(self.seed, model.num_timesteps))
        else:
            model = self._new_model()
        done = int(model.num_timesteps)
        self.pending = self.log.pending(self.config.eval.points(self.b.budget), done)
        self.bar = tqdm(total=self.b.budget, initial=done, desc=f"{self.method} {self.config.name} seed{self.seed}",
                        unit="step", disable=not self.progress)
        remaining = self.b.budget - done
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=EvalScheduleCallback(self),
                        reset_num_timesteps=done == 0)
        self.evaluate_due(model)
        self.bar.close()
        steps = int(model.num_timesteps)
        self.log.finish(env_steps=steps, frames=steps * self.frame_skip)
        return self.log


def run_baseline(config: AgentConfig, method: str, seed: int, out: Path, progress: bool = True,
                 restart: bool = False, save_every_s: float = 600.0) -> RunLog:
    return BaselineAgent(config, method, seed, out, progress=progress, restart=restart,
                         save_every_s=save_every_s).run()
