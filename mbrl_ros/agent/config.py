"""AgentConfig: one YAML file per task, fixed before any run (config/agent/<task>.yaml).

    task:            id + env kwargs, the threshold return (fixed in advance), eval schedule
    mbrl:            world-model preset + overrides, train ratio, planner + its config, budget
    sac / ppo:       stable-baselines3 kwargs (empty = SB3 defaults), budget, policy obs

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

METHODS = ("mbrl", "sac", "ppo")
# Eval episodes use seeds EVAL_SEED_BASE + i; training episodes (common.training_seed) stay far below.
EVAL_SEED_BASE = 1_000_000_000


@dataclass
class EvalConfig:
    """When and how the learning curve is measured (identical for all methods)."""

    every: int = 1000          # env steps between evaluations ...
    sparse_after: int = 0      # ... until here (0 = never sparser), then
    sparse_every: int = 0      # every this many env steps (keeps long baseline runs' eval cost bounded)
    episodes: int = 3          # eval episodes per point, seeds EVAL_SEED_BASE + 0..episodes-1

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
    # The world model's learning rate falls linearly with env steps from its config value (lr_model)
    # to this at the budget (None: constant). Early on a high rate learns fast from little data; late,
    # a high rate lets one update undo what the earlier ones learnt (docs/experiments/inverted_pendulum.md).
    lr_model_end: Optional[float] = None
    threads: int = 1                       # torch threads (the machine is shared)

    def __post_init__(self):
        if self.lr_model_end is not None and not float(self.lr_model_end) > 0:
            raise ValueError(f"mbrl.lr_model_end must be > 0 (or left out for a constant rate), got {self.lr_model_end}")


@dataclass
class BaselineConfig:
    """A stable-baselines3 baseline; `kwargs` go to the SB3 constructor (empty = SB3 defaults)."""

    budget: int = 50_000
    kwargs: dict = field(default_factory=dict)
    policy_obs: str = "joints"             # joints (MlpPolicy on the state vector) | dict (MultiInputPolicy)
    threads: int = 1


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
    return merge_config(base, raw)


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
    source: str = ""
    # Methods whose budget `with_budget` overrode, with the budget the config file gives them.
    budget_overridden: dict = field(default_factory=dict)

    def budget(self, method: str) -> int:
        return int(getattr(self, method).budget)

    def config_budget(self, method: str) -> int:
        """The budget the config file gives `method`, whatever a run was told to stop at."""
        return int(self.budget_overridden.get(method, self.budget(method)))

    def run_meta(self, method: str, seed: int, frame_skip: int) -> dict:
        """What `run.json` records of this config for one run of `method` (both agents; each
        adds its own fields after these)."""
        return {"task": self.name, "env_id": self.env_id, "method": method, "seed": seed,
                "threshold": self.threshold, "budget": self.budget(method),
                "config_budget": self.config_budget(method), "frame_skip": frame_skip,
                "config": self.to_dict(), "config_file": self.source}

    def with_budget(self, method: str, budget: int) -> "AgentConfig":
        """This config with `method` run to `budget` env steps; the file's budget is kept, so a
        run stopped short of it is reported as short, not as finished."""
        return replace(self, **{method: replace(getattr(self, method), budget=int(budget))},
                       budget_overridden={**self.budget_overridden, method: self.config_budget(method)})

    @classmethod
    def from_dict(cls, d: dict, source: str = "") -> "AgentConfig":
        d = dict(d)
        task = dict(d.pop("task"))
        sections = {"eval": EvalConfig, "mbrl": MBRLConfig, "sac": BaselineConfig, "ppo": BaselineConfig}
        built = {}
        for key, klass in sections.items():
            raw = d.pop(key, None) or {}
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
