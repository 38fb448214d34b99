"""The model-based agent as a library loop: the seed pipeline without ROS.

    collect real episodes (random at first, then the planner + exploration noise)
      -> EpisodeCache -> Trainer (train_ratio gradient steps per env step)
      -> export_to_store (ONNX, parity-checked) -> ModelStore.poll()
      -> ControlLoop over the ModelStore (the controller node's core) + exploration noise -> act ... repeat

Acting goes through exactly the controller core the robot runs (ControlLoop: ONNX
bundle, belief filter, planner), without a wall-clock deadline so the figures do
not depend on the machine's speed; torch is only used to train. The run folder holds the cache,
the checkpoint, the model store and `state.json`, so a killed run continues
from its last finished episode (the partial episode in flight is dropped).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from mbrl_ros.agent import snapshot
from mbrl_ros.agent.common import (ControlPolicy, Policy, RandomPolicy, control_loop, evaluate, evaluation_policy,
                                   frame_skip, make_env, training_seed)
from mbrl_ros.agent.config import AgentConfig
from mbrl_ros.agent.runlog import RunLog, check_continuable, supersede_run_folder
from mbrl_ros.data.episodes import EpisodeCache, EpisodeRecorder, validate_episode
from mbrl_ros.fileio import atomic_write_bytes

log = logging.getLogger(__name__)


def with_absorbing_steps(ep: dict, steps: int, rng: np.random.Generator) -> dict:
    """The training view of an episode that ended in a real termination: `steps` extra steps that
    stay in the terminal observation with reward 0 under random actions (the "absorbing state" of
    Kostrikov et al. 2019, DAC).

    Why: the exported `imagine` graph scores a plan by its predicted rewards only, and the model
    never saw what follows a termination, so its rewards past a fall (e.g. the pendulum's) are
    extrapolation the planner can exploit. With these steps "after the end" is learned as
    "reward 0 from here on". They are not env steps: the cache keeps the real episode unchanged,
    and time-limit endings (is_terminal False) are left as they are.
    """
    if steps <= 0 or not bool(ep["is_terminal"][-1]):
        return ep
    out = {}
    for key, value in ep.items():
        pad = np.repeat(value[-1:], steps, axis=0)
        if key == "action":
            pad = rng.uniform(-1.0, 1.0, pad.shape).astype(value.dtype)
        elif key == "reward":
            pad = np.zeros_like(pad)
        elif key == "is_first":
            pad = np.zeros_like(pad)
        out[key] = np.concatenate([value, pad])
    return validate_episode(out)


class MBRLAgent:
    """One run of the model-based agent on one task and seed, in `out`."""

    def __init__(self, config: AgentConfig, seed: int, out: Path, progress: bool = True, restart: bool = False):
        import torch

        self.config, self.m, self.seed, self.out = config, config.mbrl, int(seed), Path(out)
        self.progress = progress
        self.checkpoint = self.out / "checkpoint.pt"
        self.state_path = self.out / "state.json"
        if restart:
            supersede_run_folder(self.out)
        # A fresh clone of a run that was snapshotted (resume/, docs/dmc.md): rebuild its training
        # state by replaying the kept actions before anything reads it.
        started = time.perf_counter()
        restored = snapshot.restore_if_needed(self.out, lambda: make_env(config), self.seed, progress)
        if restored:  # before the session's wall clock starts: kept with the restore, not in wall_s
            restored["seconds"] = round(time.perf_counter() - started, 2)
        state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        check_continuable(self.out, self._training_state(state))
        torch.set_num_threads(max(1, self.m.threads))
        self.env, self.eval_env = make_env(config), make_env(config)
        self.frame_skip = frame_skip(self.env)
        self.action_dim = int(self.env.action_space.shape[0])
        self.action_spec = self.env.unwrapped.action_spec
        self.obs_spec = self.env.unwrapped.obs_spec
        self.log = RunLog(self.out, config.run_meta("mbrl", self.seed, self.frame_skip))
        if restored:
            self.log.update(restores=[*self.log.meta.get("restores", []), restored])
        self.cache = EpisodeCache(self.out / "cache")
        self.env_steps = int(state.get("env_steps", 0))
        self.episodes = int(state.get("episodes", 0))
        self.last_update = int(state.get("last_update", 0))
        self.trainer = None
        self.export_refusals = int(self.log.meta.get("export_refusals", 0))
        self.store = None
        self.explore: Optional[ControlPolicy] = None
        self.random = RandomPolicy(self.action_dim, seed=self.seed)
        if self.checkpoint.exists():  # resuming: model, optimiser and data as they were
            from mbrl_ros.training.trainer import Trainer

            self.trainer = Trainer.resume(self.checkpoint, self._training_view(self.cache.episodes()), log_dir=None,
                                          action_spec=self.action_spec)
            self._open_store()
            if self.store.current is None:  # restored from a snapshot, which keeps no bundles
                # The export draws random test inputs; forking keeps the restored torch RNG where a
                # resume of the original folder (which exports nothing) has it.
                with torch.random.fork_rng(), self.log.timed("export"):
                    self._publish()

    def _training_state(self, state: dict) -> list[Path]:
        """The files a continued run needs, given its state.json (see runlog.check_continuable)."""
        files = [self.state_path]
        if int(state.get("episodes", 0)) > 0:
            files.append(self.out / "cache")
        if int(state.get("last_update", 0)) > 0:
            files.append(self.checkpoint)
        return files

    # ------------------------------------------------------------------ model
    def _world_model_config(self):
        from mbrl_ros.world_model.config import WorldModelConfig

        return WorldModelConfig.preset(self.m.preset, **self.m.overrides)

    def _training_view(self, episodes: list[dict]) -> list[dict]:
        """Episodes as the world model trains on them (see `with_absorbing_steps`)."""
        rng = np.random.default_rng(self.seed + 7)
        return [with_absorbing_steps(ep, self.m.absorbing_steps, rng) for ep in episodes]

    def _usable_episodes(self) -> int:
        """Cached episodes long enough for one training window (short random episodes may not be)."""
        seq_len = self._world_model_config().seq_len
        return sum(1 for ep in self._training_view(self.cache.episodes()) if len(ep["reward"]) >= seq_len)

    def _open_store(self) -> None:
        from mbrl_ros.runtime.model_store import ModelStore

        if self.store is None:
            self.store = ModelStore(self.out / "models", self.obs_spec, self.action_spec, load_now=False)
        self.store.poll()
        if self.store.current is not None and self.explore is None:
            # the loop swaps to each bundle published later by itself (it reads store.current per tick)
            self.explore = ControlPolicy(self._control_loop(self.seed), noise=self.m.explore_noise, seed=self.seed)

    def _control_loop(self, seed: int):
        return control_loop(self.store, self.m.planner, self.m.planner_config, seed, self.action_spec)

    def random_episode(self) -> bool:
        """Whether the next training episode acts randomly: before the first model, and every
        `random_episode_every`-th episode after it (counted over the run's episodes, so a resumed
        run keeps the same schedule)."""
        every = int(self.m.random_episode_every)
        return self.explore is None or (every > 0 and (self.episodes + 1) % every == 0)

    def model_learning_rate(self) -> float:
        """The world model's learning rate for the next training chunk (MBRLConfig.lr_model_end)."""
        start = self._world_model_config().lr_model
        if self.m.lr_model_end is None:
            return start
        span = self.m.budget if self.m.lr_model_decay_steps is None else int(self.m.lr_model_decay_steps)
        progress = min(1.0, self.env_steps / max(1, span))
        return start + (float(self.m.lr_model_end) - start) * progress

    def _train_and_publish(self, steps: int) -> None:
        """`steps` gradient steps, then export + publish a bundle and swap the planner onto it."""
        from mbrl_ros.training.trainer import Trainer

        if self.trainer is None:
            self.trainer = Trainer.create(self._world_model_config(), self._training_view(self.cache.episodes()),
                                          obs_spec=self.obs_spec, action_dim=self.action_dim, seed=self.seed,
                                          action_spec=self.action_spec)
            steps += self.m.pretrain_steps
        if steps > 0:
            self.trainer.set_learning_rate("world", self.model_learning_rate())
            with self.log.timed("train"):
                self.trainer.train(steps, progress=False)
        self.last_update = self.env_steps
        # The model changes only here, so the checkpoint is saved only here, together with the
        # state.json that describes it: a resumed run trains on from the model `last_update` names.
        with self.log.timed("save"):
            self.trainer.save(self.checkpoint)
            self._save_state()
        with self.log.timed("export"):
            self._publish()

    def _publish(self) -> None:
        """Export the trainer's model as a bundle and swap the planner onto it."""
        from mbrl_ros.export import ParityError, export_to_store

        try:
            export_to_store(self.trainer.model, self.out / "models", fused_horizon=self.m.fused_horizon,
                            training_step=self.trainer.step, action_spec=self.action_spec, keep=2)
        except ParityError as exc:
            # As on the robot: a bundle that fails parity is never published; the planner keeps the
            # last good one and the next update tries again with the further-trained model.
            self.export_refusals += 1
            log.warning("export refused at %d env steps, keeping the previous bundle: %s", self.env_steps, exc)
            self.log.update(export_refusals=self.export_refusals)
            return
        self._open_store()

    # ---------------------------------------------------------------- persistence
    def _save_state(self) -> None:
        state = {"env_steps": self.env_steps, "episodes": self.episodes, "last_update": self.last_update,
                 "train_steps": self.trainer.step if self.trainer else 0}
        atomic_write_bytes(self.state_path, json.dumps(state).encode())
        self.log.update(env_steps=self.env_steps, frames=self.env_steps * self.frame_skip,
                        train_steps=state["train_steps"])

    def _evaluate(self, point: int) -> dict:
        if self.store is None or self.store.current is None:
            policy: Policy = RandomPolicy(self.action_dim, seed=self.seed + 1)
        else:  # a fresh controller on the same models, no exploration noise
            policy = evaluation_policy(self.store, self.config, self.seed, self.action_spec)
        with self.log.timed("eval"):
            returns = evaluate(self.eval_env, policy, self.config.eval.episodes, desc=f"eval@{point}",
                               progress=self.progress, seed_base=self.config.eval.seed_base)
        row = self.log.add_eval(point, point * self.frame_skip, returns)
        self._save_state()
        return row

    # ---------------------------------------------------------------- the loop
    def run(self) -> RunLog:
        with self.log.stopped_on_interrupt():  # the saved state stands
            return self._run()

    def _run(self) -> RunLog:
        budget = self.m.budget
        pending = self.log.pending(self.config.eval.points(budget), self.env_steps)
        bar = tqdm(total=budget, initial=self.env_steps, desc=f"mbrl {self.config.name} seed{self.seed}",
                   unit="step", disable=not self.progress)
        obs, recorder, policy = None, None, None
        while True:
            # A due update runs before the evaluations: a run stopped after an episode's state was
            # saved but before that step's update would otherwise evaluate the previous model when
            # it resumes. In a run that is not stopped the order is the same either way.
            if self.trainer is not None and self.env_steps - self.last_update >= self.m.update_every:
                self._train_and_publish(int(round(self.m.train_ratio * (self.env_steps - self.last_update))))
            while pending and pending[0] <= self.env_steps:
                row = self._evaluate(pending.pop(0))
                bar.set_postfix(eval=f"{row['return_mean']:.1f}")
            if self.env_steps >= budget:
                break
            if obs is None:  # new training episode
                with self.log.timed("env"):
                    obs, _ = self.env.reset(seed=training_seed(self.seed, self.episodes))
                recorder = EpisodeRecorder(obs, self.action_dim)
                policy = self.random if self.random_episode() else self.explore
                policy.reset()
            with self.log.timed("act"):
                action = policy.act(obs)
            with self.log.timed("env"):
                obs, reward, terminated, truncated, _ = self.env.step(action)
            recorder.add(obs, action, reward, terminal=terminated)
            self.env_steps += 1
            self.log.count_steps()
            bar.update(1)
            if terminated or truncated:
                episode = recorder.episode()
                self.cache.add([episode], source_key=f"episode{self.episodes:06d}", source_name="agent",
                               obs_spec=self.obs_spec, action_spec=self.action_spec)
                if self.trainer is not None:
                    self.trainer.add_episodes(self._training_view([episode]))
                self.episodes += 1
                obs = None
                if self.trainer is None and self.episodes >= self.m.seed_episodes and self._usable_episodes() > 0:
                    self._train_and_publish(int(round(self.m.train_ratio * self.env_steps)))
                self._save_state()
        bar.close()
        self._save_state()
        self.log.finish(env_steps=self.env_steps, frames=self.env_steps * self.frame_skip)
        return self.log


def run_mbrl(config: AgentConfig, seed: int, out: Path, progress: bool = True, restart: bool = False) -> RunLog:
    """Run (or continue; with `restart`, start afresh) the model-based agent; returns the run's log."""
    return MBRLAgent(config, seed, out, progress=progress, restart=restart).run()
