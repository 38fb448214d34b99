"""AgentConfig: one YAML file per task, fixed before any run (config/agent/<task>.yaml).

    task:            id + env kwargs, the threshold return (fixed in advance), eval schedule
    mbrl:            world-model preset + overrides, train ratio, planner + its config, budget
    sac / ppo:       stable-baselines3 kwargs (empty = SB3 defaults), budget, policy obs
    sac_utd / ppo_zoo / sac_drq:   optional stronger baselines (baselines.py), each with its own
                     budget fixed here before any run, and `source` saying where its settings come from
    protocol:        the tuning trials that chose this config (docs/protocol.md); a variant adds
                     its own to its bases'

Every method of a task is run on the same env (same id and kwargs), counts env
steps as agent actions (frames = steps x frame_skip) and is evaluated at the
same env-step points (`eval_points`) on the same eval episode seeds.

A variant of a task names its base and only what it changes:

    extends: reacher.yaml          # relative to this file; bases may extend others in turn
    task: {name: reacher_icem}     # required: each variant has its own results/<task>/ folder
    mbrl: {planner_config: {noise_beta: 2.0}}

Mappings merge key by key (so `mbrl.overrides` and `planner_config` keep the base's other
keys); any other value replaces the base's. The resolved config is what runs and what
run.json records.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import yaml

METHODS = ("mbrl", "sac", "ppo", "sac_utd", "ppo_zoo", "sac_drq")
# Optional baseline sections: a config without one cannot run that method.
OPTIONAL_BASELINES = ("sac_utd", "ppo_zoo", "sac_drq")
# Eval episodes use seeds EVAL_SEED_BASE + i; training episodes (common.training_seed) stay far below.
EVAL_SEED_BASE = 1_000_000_000
# Tuning runs (`agent run --tuning`) are evaluated on their own episodes, so that no choice is made
# on the episodes the reported runs are evaluated on (docs/protocol.md).
TUNING_EVAL_SEED_BASE = 1_500_000_000


@dataclass
class EvalConfig:
    """When and how the learning curve is measured (identical for all methods)."""

    every: int = 1000          # env steps between evaluations ...
    sparse_after: int = 0      # ... until here (0 = never sparser), then
    sparse_every: int = 0      # every this many env steps (keeps long baseline runs' eval cost bounded)
    episodes: int = 3          # eval episodes per point, seeds seed_base + 0..episodes-1
    # Set by the run's role, never by a config file: EVAL_SEED_BASE for reported runs,
    # TUNING_EVAL_SEED_BASE for tuning runs (AgentConfig.with_role).
    seed_base: int = EVAL_SEED_BASE

    def points(self, budget: int) -> list[int]:
        """The env-step counts at which a run with `budget` steps is evaluated (incl. step 0 and the budget)."""
        pts, step = [0], 0
        while step < budget:
            dense = not self.sparse_after or step < self.sparse_after
            step += self.every if dense else (self.sparse_every or self.every)
            pts.append(min(step, budget))
        return pts


@dataclass
class MBRLConfig:
    """The model-based agent: world model -> ONNX bundle -> planner, relearned as data arrives."""

    budget: int = 10_000                   # total env steps (agent actions)
    seed_episodes: int = 5                 # random-policy episodes before the first model
    preset: str = "tiny"                   # WorldModelConfig preset ...
    overrides: dict = field(default_factory=dict)  # ... and field overrides
    train_ratio: float = 0.5               # gradient steps per env step
    pretrain_steps: int = 200              # extra gradient steps on the seed data before the first model
    update_every: int = 250                # env steps between (train -> export -> swap model)
    planner: str = "cem"
    planner_config: dict = field(default_factory=dict)  # CEM/MPPI horizon: fused_horizon (leave it out)
    fused_horizon: int = 12                # exported imagine graph's length = the CEM/MPPI horizon (docs/planners.md)
    absorbing_steps: int = 0               # reward-0 steps appended after a real termination (training only)
    explore_noise: float = 0.3             # Gaussian std added to the planner's action while collecting
    # Every n-th training episode after the first model acts with uniform random actions (0: never):
    # exploration that does not depend on the model, so a model that is wrong about where reward is
    # (a blind planner steers to the same wrong place) still sees new rewarded states (docs/experiments/dmc.md).
    random_episode_every: int = 0
    # The world model's learning rate falls linearly with env steps from its config value (lr_model)
    # to this at the budget (None: constant). Early on a high rate learns fast from little data; late,
    # a high rate lets one update undo what the earlier ones learnt (docs/experiments/inverted_pendulum.md).
    lr_model_end: Optional[float] = None
    lr_model_decay_steps: Optional[int] = None  # env steps over which it falls, then stays (None: the budget)
    threads: int = 1                       # torch threads (the machine is shared)

    def __post_init__(self):
        if int(self.random_episode_every) < 0:
            raise ValueError(f"mbrl.random_episode_every must be >= 0 (0: never), got {self.random_episode_every}")
        if self.lr_model_end is not None and not float(self.lr_model_end) > 0:
            raise ValueError(f"mbrl.lr_model_end must be > 0 (or left out for a constant rate), got {self.lr_model_end}")
        if self.lr_model_decay_steps is not None and not (int(self.lr_model_decay_steps) > 0 and self.lr_model_end is not None):
            raise ValueError(f"mbrl.lr_model_decay_steps must be > 0 and needs mbrl.lr_model_end, got "
                             f"{self.lr_model_decay_steps} (lr_model_end {self.lr_model_end})")


@dataclass
class BaselineConfig:
    """A stable-baselines3 baseline; `kwargs` go to the SB3 constructor (empty = SB3 defaults)."""

    budget: int = 50_000
    kwargs: dict = field(default_factory=dict)
    policy_obs: str = "joints"             # joints (MlpPolicy on the state vector) | dict (MultiInputPolicy)
    threads: int = 1
    source: str = ""                       # where `kwargs` come from (e.g. rl-baselines3-zoo's file and commit)
    # VecNormalize (running mean/std of observations and returns), as rl-baselines3-zoo's `normalize: true`;
    # the evaluations see the observations normalized with the training statistics, frozen.
    normalize: bool = False
    # DrQ-style random shift of image observations in every sampled replay batch (pixels of
    # replicate-padding each side; 0 = none). Off-policy methods with dict observations only.
    random_shift_pad: int = 0

    def __post_init__(self):
        if int(self.random_shift_pad) < 0:
            raise ValueError(f"random_shift_pad must be >= 0, got {self.random_shift_pad}")


@dataclass
class TuningTrial:
    """A trial that chose (part of) this config: its runs' seeds are never reported (docs/protocol.md)."""

    seeds: list
    method: str = "mbrl"
    eval_episodes: str = "tuning"          # tuning (own episodes) | reported (the reported runs' episodes: pre-protocol)
    what: str = ""

    def __post_init__(self):
        if not isinstance(self.seeds, list) or not all(isinstance(s, int) for s in self.seeds):
            raise ValueError(f"a tuning trial's seeds must be a list of integers, got {self.seeds!r}")
        if self.eval_episodes not in ("tuning", "reported"):
            raise ValueError(f"a tuning trial's eval_episodes must be 'tuning' or 'reported', got {self.eval_episodes!r}")


@dataclass
class ProtocolConfig:
    tuning_trials: list = field(default_factory=list)   # of TuningTrial

    def __post_init__(self):
        self.tuning_trials = [t if isinstance(t, TuningTrial) else TuningTrial(**t) for t in self.tuning_trials]


def merge_config(base: dict, changes: dict) -> dict:
    """`base` with `changes` applied: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_extends(path: Path, _chain: tuple = ()) -> dict:
    """The YAML mapping at `path` with its `extends:` chain applied (the base first)."""
    path = Path(path)
    if path.resolve() in _chain:
        raise ValueError(f"{path}: 'extends' loops: " + " -> ".join(str(p) for p in (*_chain, path.resolve())))
    if not path.is_file():
        where = f" (named by {_chain[-1]})" if _chain else ""
        raise FileNotFoundError(f"agent config {path} not found{where}")
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: an agent config must be a YAML mapping, got {type(raw).__name__}")
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    base = resolve_extends(path.parent / str(base_name), (*_chain, path.resolve()))
    name = (raw.get("task") or {}).get("name")
    if not name or name == (base.get("task") or {}).get("name"):
        raise ValueError(f"{path}: a config that extends {base_name} must give its own task.name "
                         "(each config's runs go to results/<task.name>/)")
    merged = merge_config(base, raw)
    # A variant was chosen on its base's trials too: their seeds stay tuning seeds for it.
    trials = [*((base.get("protocol") or {}).get("tuning_trials") or []),
              *((raw.get("protocol") or {}).get("tuning_trials") or [])]
    if trials:
        merged["protocol"] = {**(merged.get("protocol") or {}), "tuning_trials": trials}
    return merged


@dataclass
class AgentConfig:
    name: str
    env_id: str
    env_kwargs: dict
    threshold: float
    eval: EvalConfig
    mbrl: MBRLConfig
    sac: BaselineConfig
    ppo: BaselineConfig
    sac_utd: Optional[BaselineConfig] = None
    ppo_zoo: Optional[BaselineConfig] = None
    sac_drq: Optional[BaselineConfig] = None
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    role: str = "reported"                 # reported | tuning (`agent run --tuning`; docs/protocol.md)
    source: str = ""
    # Methods whose budget `with_budget` overrode, with the budget the config file gives them.
    budget_overridden: dict = field(default_factory=dict)

    def section(self, method: str):
        """The config section of `method`; a clear error when the config has none."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
        section = getattr(self, method)
        if section is None:
            raise ValueError(f"{self.source or self.name}: no '{method}' section: a baseline's budget and "
                             "settings are fixed in the config before any run (docs/protocol.md)")
        return section

    def budget(self, method: str) -> int:
        return int(self.section(method).budget)

    def config_budget(self, method: str) -> int:
        """The budget the config file gives `method`, whatever a run was told to stop at."""
        return int(self.budget_overridden.get(method, self.budget(method)))

    def run_meta(self, method: str, seed: int, frame_skip: int) -> dict:
        """What `run.json` records of this config for one run of `method` (both agents; each
        adds its own fields after these)."""
        from mbrl_ros.agent.protocol import run_record

        return {"task": self.name, "env_id": self.env_id, "method": method, "seed": seed,
                "threshold": self.threshold, "budget": self.budget(method),
                "config_budget": self.config_budget(method), "frame_skip": frame_skip,
                "config": self.to_dict(), "config_file": self.source,
                "protocol": run_record(self, method, seed)}

    def with_role(self, role: str) -> "AgentConfig":
        """This config for a `role` run: tuning runs are evaluated on the tuning episodes."""
        if role not in ("reported", "tuning"):
            raise ValueError(f"role must be 'reported' or 'tuning', got {role!r}")
        base = TUNING_EVAL_SEED_BASE if role == "tuning" else EVAL_SEED_BASE
        return replace(self, role=role, eval=replace(self.eval, seed_base=base))

    def with_budget(self, method: str, budget: int) -> "AgentConfig":
        """This config with `method` run to `budget` env steps; the file's budget is kept, so a
        run stopped short of it is reported as short, not as finished."""
        return replace(self, **{method: replace(self.section(method), budget=int(budget))},
                       budget_overridden={**self.budget_overridden, method: self.config_budget(method)})

    @classmethod
    def from_dict(cls, d: dict, source: str = "") -> "AgentConfig":
        d = dict(d)
        task = dict(d.pop("task"))
        sections = {"eval": EvalConfig, "mbrl": MBRLConfig, "sac": BaselineConfig, "ppo": BaselineConfig,
                    **{m: BaselineConfig for m in OPTIONAL_BASELINES}, "protocol": ProtocolConfig}
        built = {}
        for key, klass in sections.items():
            if key in OPTIONAL_BASELINES and d.get(key) is None:
                d.pop(key, None)
                continue
            raw = d.pop(key, None) or {}
            if key == "eval" and "seed_base" in raw:
                raise ValueError(f"{source}: eval.seed_base is set by the run's role (agent run --tuning), "
                                 "not by a config file")
            if key == "mbrl" and "horizon" in raw:
                raise ValueError(f"{source}: mbrl.horizon is now mbrl.fused_horizon (the exported imagine "
                                 "graph's length, which CEM/MPPI plan over)")
            try:
                built[key] = klass(**raw)
            except TypeError as exc:
                raise ValueError(f"{source}: section '{key}': {exc}") from exc
        if d:
            raise ValueError(f"{source}: unknown sections {sorted(d)}; known: task, {', '.join(sections)}")
        try:
            return cls(name=task.pop("name"), env_id=task.pop("env_id"), env_kwargs=dict(task.pop("env_kwargs", {})),
                       threshold=float(task.pop("threshold")), source=source, **built)
        except KeyError as exc:
            raise ValueError(f"{source}: task needs {exc}") from exc
        finally:
            if task:
                raise ValueError(f"{source}: unknown task keys {sorted(task)}")

    @classmethod
    def load(cls, path: Path) -> "AgentConfig":
        return cls.from_dict(resolve_extends(Path(path)), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)
