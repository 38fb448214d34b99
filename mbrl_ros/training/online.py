"""The online trainer: bag segments in, new model bundles out, while the robot runs.

Watches the logger's bag folder, ingests each closed segment once
(mbrl_ros.data.bags.ingest_bags; segments still being recorded are skipped),
trains the world model `train_ratio` gradient steps per new transition, and
every `export_every` steps exports a parity-checked bundle and publishes it
atomically (mbrl_ros.export.export_to_store). It shares nothing with the
controller but two folders, so it can run on another machine that mounts them.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from mbrl_ros.data.bags import IngestConfig, ingest_bags
from mbrl_ros.data.episodes import EpisodeCache, load_episode
from mbrl_ros.export import export_to_store
from mbrl_ros.runtime.manifest import DEFAULT_FUSED_HORIZON
from mbrl_ros.training.online_parameters import ONLINE_DEFAULTS, ONLINE_PARAMETERS
from mbrl_ros.training.trainer import Trainer
from mbrl_ros.world_model.config import WorldModelConfig

log = logging.getLogger(__name__)


@dataclass
class OnlineConfig:
    bag_dir: Path
    work_dir: Path  # episode cache, checkpoint, TensorBoard logs
    model_store: Path  # where new bundles are published
    ingest: IngestConfig
    init_checkpoint: Optional[Path] = None  # continue from this (e.g. the shipped model's checkpoint)
    # Defaults and checks of the fields the trainer node also exposes: ONLINE_PARAMETERS.
    preset: str = ONLINE_DEFAULTS["preset"]  # fresh model when there is no checkpoint
    train_ratio: float = ONLINE_DEFAULTS["train_ratio"]  # gradient steps per new real transition
    chunk_steps: int = 10  # gradient steps between data polls
    export_every: int = ONLINE_DEFAULTS["export_every"]  # gradient steps between published bundles
    # A robot can log faster than this machine trains. Beyond this many owed steps the excess
    # is dropped (and counted): training samples the whole cache anyway, so only the ratio is
    # lost, and the trainer does not work off an hours-long backlog after the robot stops. 0: no cap.
    max_steps_owed: int = ONLINE_DEFAULTS["max_steps_owed"]
    fused_horizon: int = DEFAULT_FUSED_HORIZON  # exported imagine graph's length = the controller's CEM/MPPI horizon
    min_episodes: int = 1  # start training once this many episodes are cached
    seed: int = ONLINE_DEFAULTS["seed"]
    # torch threads: leave the other core to the sim and controller (the node's default comes from
    # its cpu_share parameters, a node-layer table this layer cannot import)
    threads: int = 1

    def __post_init__(self):
        for name in ("bag_dir", "work_dir", "model_store"):
            setattr(self, name, Path(getattr(self, name)))
        if self.init_checkpoint:
            self.init_checkpoint = Path(self.init_checkpoint)
        for name, param in ONLINE_PARAMETERS.items():
            setattr(self, name, param.check(getattr(self, name), strict=False))
        if self.chunk_steps < 1:
            raise ValueError(f"chunk_steps must be >= 1, got {self.chunk_steps}")


class OnlineTrainer:
    def __init__(self, config: OnlineConfig):
        self.config = config
        torch.set_num_threads(max(1, config.threads))
        self.cache = EpisodeCache(config.work_dir / "cache")
        self.checkpoint = config.work_dir / "checkpoint.pt"
        self.trainer: Optional[Trainer] = None
        self.steps_owed = 0.0  # gradient steps earned by new data, not yet taken
        self.steps_dropped = 0.0  # owed steps given up because training fell behind (max_steps_owed)
        self.new_transitions = 0
        self.exports = 0
        self.last_version: Optional[str] = None
        self.last_export_step = 0
        self.last_error: Optional[str] = None  # the latest recoverable problem (bad segment, failed export)
        self.failure: Optional[str] = None  # the exception that ended run(): training has stopped
        self.stopping = threading.Event()  # set by run()'s caller to end the current chunk early

    # ---------------------------------------------------------------- data
    def poll_data(self) -> int:
        """Ingest closed segments not seen before; returns the number of new transitions."""
        return self.add_episodes(self.ingest_new())

    def ingest_new(self) -> list[dict]:
        """The episodes of closed segments not seen before. An error here is the data's (a bad
        segment), not the trainer's: run() reports it and polls again."""
        report = ingest_bags([self.config.bag_dir], self.cache, self.config.ingest, progress=False)
        for message in report.errors:
            log.warning("ingest: %s", message)
        return [load_episode(p) for p in report.paths]

    def add_episodes(self, episodes: list[dict]) -> int:
        """Hand new episodes to the trainer (creating it once enough are cached); returns the new
        transitions. An error here (a checkpoint that does not load, a missing module) is the
        trainer's own."""
        if self.trainer is None:
            self._create_trainer()  # from everything cached, including earlier runs' episodes
        elif episodes:
            self.trainer.add_episodes(episodes)
        if not episodes:
            return 0
        steps = sum(len(ep["reward"]) - 1 for ep in episodes)
        self.new_transitions += steps
        self.steps_owed += steps * self.config.train_ratio
        log.info("ingested %d episodes (%d transitions) from %s", len(episodes), steps, self.config.bag_dir)
        self._cap_debt()
        return steps

    def _cap_debt(self) -> None:
        cap = self.config.max_steps_owed
        if cap and self.steps_owed > cap:
            excess = self.steps_owed - cap
            self.steps_dropped += excess
            self.steps_owed = float(cap)
            log.warning("training is behind the data: dropped %.0f owed steps (%.0f in all; max_steps_owed %d)",
                        excess, self.steps_dropped, cap)

    def _create_trainer(self) -> None:
        episodes = self.cache.episodes()
        if len(episodes) < self.config.min_episodes:
            return
        kwargs = dict(log_dir=self.config.work_dir / "tb", action_spec=self.config.ingest.action_spec)
        if self.checkpoint.exists():
            self.trainer = Trainer.resume(self.checkpoint, episodes, **kwargs)
        elif self.config.init_checkpoint and self.config.init_checkpoint.exists():
            self.trainer = Trainer.resume(self.config.init_checkpoint, episodes, **kwargs)
        else:
            cfg = WorldModelConfig.preset(self.config.preset)
            if self.config.ingest.reward_source == "none":  # bags without a reward: no reward head (data.md)
                cfg = cfg.reward_free()
            self.trainer = Trainer.create(cfg, episodes, obs_spec=self.config.ingest.obs_spec,
                                          action_dim=self.config.ingest.action_spec.dim, seed=self.config.seed,
                                          **kwargs)
        self.last_export_step = self.trainer.step
        log.info("training from step %d on %d cached episodes", self.trainer.step, len(episodes))

    # ------------------------------------------------------------ training
    def train_some(self) -> int:
        """Take up to `chunk_steps` owed gradient steps; export when due. Returns steps taken."""
        if self.trainer is None or self.steps_owed < 1:
            return 0
        n = int(min(self.config.chunk_steps, self.steps_owed))
        taken = 0
        try:
            while taken < n and not self.stopping.is_set():  # one step at a time: a stop is honoured fast
                self.trainer.train(1, progress=False)
                taken += 1
        except ValueError as exc:  # e.g. no episode long enough yet
            self.last_error = str(exc)
            self.steps_owed = 0
            return 0
        self.steps_owed -= taken
        if self.stopping.is_set():
            return taken
        if self.trainer.step - self.last_export_step >= self.config.export_every:
            self.export()
        return taken

    def export(self) -> Optional[str]:
        """Checkpoint, then export + parity-check + publish a bundle. A failed export publishes nothing."""
        self.trainer.save(self.checkpoint)
        try:
            result = export_to_store(self.trainer.model, self.config.model_store, training_step=self.trainer.step,
                                     fused_horizon=self.config.fused_horizon,
                                     action_spec=self.config.ingest.action_spec,
                                     source_data={"cache": str(self.cache.root), "steps": self.new_transitions})
        except Exception as exc:  # noqa: BLE001 - the controller keeps its model; we keep training
            self.last_error = f"export failed: {exc}"
            log.error(self.last_error)
            return None
        finally:
            self.last_export_step = self.trainer.step
        self.exports += 1
        self.last_version = result.version
        log.info("published %s (step %d)", result.version, self.trainer.step)
        return result.version

    def run(self, stop: threading.Event, poll_s: float = 2.0, raise_errors: bool = False) -> None:
        """Poll and train until `stop` is set.

        Bad data (a segment that does not ingest) is reported in `last_error` and polled past.
        Any other exception ends the run: it is kept in `failure` ("Type: message") and, with
        raise_errors, raised to the caller (the node reports it as ERROR); without, logged.
        """
        self.stopping = stop
        next_poll = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= next_poll:
                    try:
                        episodes = self.ingest_new()
                    except Exception as exc:  # noqa: BLE001 - bad data must not kill the trainer
                        self.last_error = f"ingest failed: {exc}"
                        log.exception("ingest failed")
                        episodes = []
                    self.add_episodes(episodes)
                    next_poll = time.monotonic() + poll_s
                if self.train_some() == 0:
                    stop.wait(0.2)
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            if raise_errors:
                raise
            log.exception("online training stopped")

    def status(self) -> dict[str, str]:
        t = self.trainer
        out = {"train_step": str(t.step if t else 0), "exports": str(self.exports),
               "last_version": self.last_version or "none", "new_transitions": str(self.new_transitions),
               "steps_owed": f"{self.steps_owed:.0f}", "steps_dropped": f"{self.steps_dropped:.0f}",
               "cached_episodes": str(len(self.cache.paths()))}
        if t and t.last_metrics:
            out.update({k: f"{v:.4g}" for k, v in t.last_metrics.items() if k.startswith("loss/")})
        if self.last_error:
            out["last_error"] = self.last_error
        if self.failure:
            out["failure"] = self.failure
        return out
