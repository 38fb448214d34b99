"""Tasks: a reward a user states without writing a node, checked against the observation spec.

    task = load_task("config/tasks/reach.yaml", obs_spec, action_spec)   # a task YAML
    task = load_task("my_pkg.rewards:keep_level", obs_spec, action_spec)  # a Python function
    task = load_task("mbrl_ros/CartpoleSwingup-v0", obs_spec, action_spec)  # an env's reward
    reward = task(joints[..., J], action[..., A])                           # [...] float64

A task YAML (every name is an entry of the obs spec's joint_names, or a joint name that
gets ".pos" / ".vel" appended; actions are the normalised [-1, 1] commands):

    task:
      name: reach_home
      terms:
        - {type: reach, joints: [shoulder, elbow], target: [0.5, -0.3], weight: 1.0, margin: 0.3}
        - {type: hold, joint: wrist, setpoint: 0.0, weight: 0.5}
        - {type: velocity, joints: [shoulder, elbow], weight: 0.01}
        - {type: effort, weight: 0.001}

reward = sum of the terms:
  reach     -weight * |q - target| (joint-space distance; angles of continuous joints wrap),
            or with `margin`: weight * exp(-(d/margin)^2 * 2.3) in (0, 1], 0.1 at the margin
  hold      -weight * sum (q - setpoint)^2 over the listed joints
  velocity  -weight * sum v^2 of the listed entries (default: every "*.vel" entry)
  effort    -weight * sum a^2 of the listed actions (default: all), by action name or index

A `module:function` is called as f(joints, action) and must say which vector it reads:
`f.joint_names = [...]` (it then gets exactly those entries, in that order, whatever
the robot's order) or `f.joint_dim = N` (checked against the spec's size). Reading the
whole vector by position without saying so is refused: on another robot's vector a
slice like j[..., 8:10] is silently empty (the bug this module exists to prevent).
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from mbrl_ros.spec import ActionSpec, ObsSpec

TERM_TYPES = ("reach", "hold", "velocity", "effort")
TERM_KEYS = {
    "reach": {"type", "joints", "target", "weight", "margin"},
    "hold": {"type", "joint", "joints", "setpoint", "weight"},
    "velocity": {"type", "joints", "weight"},
    "effort": {"type", "actions", "weight"},
}
TASK_KEYS = {"name", "terms"}
_GAUSS_01 = -np.log(0.1)  # exp(-(d/margin)^2 * this) is 0.1 at d = margin


class TaskError(ValueError):
    """A task that does not fit the observation/action spec, or a malformed task file."""


@dataclass(frozen=True)
class Task:
    """reward(joints[..., J], action[..., A]) over vectors of the spec's sizes, checked on every call."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray], Any]
    joint_dim: int
    action_dim: int
    source: str = ""  # what it was loaded from (file, module:function, env id)
    description: dict = field(default_factory=dict)  # what a manifest / cache index records

    def __call__(self, joints, action) -> np.ndarray:
        j = np.asarray(joints, np.float64)
        a = np.asarray(action, np.float64)
        if j.shape[-1:] != (self.joint_dim,):
            raise TaskError(f"task {self.name}: joint vector has {j.shape[-1] if j.ndim else 0} entries, "
                            f"the task was built for {self.joint_dim}")
        if a.shape[-1:] != (self.action_dim,):
            raise TaskError(f"task {self.name}: action has {a.shape[-1] if a.ndim else 0} entries, "
                            f"the task was built for {self.action_dim}")
        reward = np.asarray(self.fn(j, a), np.float64)
        if reward.shape != j.shape[:-1]:
            raise TaskError(f"task {self.name}: reward has shape {reward.shape}, expected {j.shape[:-1]} "
                            "(one value per step)")
        if not np.all(np.isfinite(reward)):
            raise TaskError(f"task {self.name}: reward contains NaN/inf")
        return reward

    def fingerprint(self) -> str:
        return json.dumps({"name": self.name, "source": self.source, **self.description}, sort_keys=True,
                          default=str)


def load_task(spec: str, obs_spec: ObsSpec, action_spec: ActionSpec) -> Task:
    """A Task from a task YAML path, a `module:function`, or an mbrl_ros env id (its joint reward)."""
    spec = str(spec).strip()
    if not spec:
        raise TaskError("task: empty; give a task YAML, a module:function or an env id")
    if spec.endswith((".yaml", ".yml")):
        path = Path(spec)
        if not path.is_file():
            raise TaskError(f"task file {path} does not exist")
        return task_from_yaml(path, obs_spec, action_spec)
    if spec.startswith("mbrl_ros/"):
        return _env_task(spec, obs_spec, action_spec)
    if ":" in spec:
        return _function_task(spec, obs_spec, action_spec)
    raise TaskError(f"task {spec!r}: not a .yaml file, a module:function or an mbrl_ros/ env id")


def task_from_yaml(path: Path, obs_spec: ObsSpec, action_spec: ActionSpec) -> Task:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise TaskError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    data = data.get("task", data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise TaskError(f"{path}: expected a mapping with 'terms' (optionally under 'task:')")
    try:
        return task_from_dict(data, obs_spec, action_spec, source=str(path))
    except TaskError as exc:
        raise TaskError(f"{path}: {exc}") from None


def task_from_dict(data: dict, obs_spec: ObsSpec, action_spec: ActionSpec, source: str = "") -> Task:
    unknown = sorted(set(data) - TASK_KEYS)
    if unknown:
        raise TaskError(f"unknown task keys {unknown}; known: {sorted(TASK_KEYS)}")
    terms = data.get("terms")
    if not isinstance(terms, list) or not terms:
        raise TaskError("'terms' must be a non-empty list of reward terms "
                        f"(types {list(TERM_TYPES)})")
    names = _require_names(obs_spec, "a task YAML")
    parts = [_term(i, t, names, obs_spec, action_spec) for i, t in enumerate(terms)]

    def reward(joints: np.ndarray, action: np.ndarray) -> np.ndarray:
        return sum(part(joints, action) for part in parts)

    name = str(data.get("name") or Path(source).stem or "task")
    return Task(name, reward, obs_spec.joint_dim, action_spec.dim, source, {"terms": terms})


def _require_names(obs_spec: ObsSpec, who: str) -> tuple[str, ...]:
    names = tuple(obs_spec.joint_names)
    if len(names) != obs_spec.joint_dim:
        raise TaskError(f"{who} names joints, but the observation spec has {len(names)} names for "
                        f"{obs_spec.joint_dim} joint entries; ingest with joint_names set")
    return names


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise TaskError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _resolve(name, names: tuple[str, ...], suffix: str, what: str) -> int:
    """Index of `name` in the joint vector: an exact entry, or a joint name + suffix (".pos"/".vel")."""
    if not isinstance(name, str):
        raise TaskError(f"{what}: joint names are strings, got {name!r}")
    for candidate in (name, f"{name}{suffix}"):
        if candidate in names:
            return names.index(candidate)
    raise TaskError(f"{what}: {name!r} is not in the observation (entries: {list(names)})")


def _as_list(value, what: str) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _term(i: int, term, names, obs_spec: ObsSpec, action_spec: ActionSpec) -> Callable:
    where = f"term {i}"
    if not isinstance(term, dict) or term.get("type") not in TERM_TYPES:
        raise TaskError(f"{where}: needs 'type' one of {list(TERM_TYPES)}, got {term!r}")
    kind = term["type"]
    where = f"term {i} ({kind})"
    unknown = sorted(set(term) - TERM_KEYS[kind])
    if unknown:
        raise TaskError(f"{where}: unknown keys {unknown}; known: {sorted(TERM_KEYS[kind])}")
    weight = _number(term.get("weight", 1.0), f"{where}: weight")
    if kind in ("reach", "hold"):
        joints = _as_list(term.get("joints", term.get("joint")), where)
        if not joints:
            raise TaskError(f"{where}: name the joint(s) with 'joints' (or 'joint')")
        idx = np.array([_resolve(n, names, ".pos", where) for n in joints])
        key = "target" if kind == "reach" else "setpoint"
        goal = np.array([_number(v, f"{where}: {key}") for v in _as_list(term.get(key), where)])
        if kind == "hold" and len(goal) == 1:
            goal = np.repeat(goal, len(idx))
        if len(goal) != len(idx):
            raise TaskError(f"{where}: {len(idx)} joint(s) but {len(goal)} {key} value(s)")
        wrap = np.isin(idx, obs_spec.angle_joints)  # continuous joints: the short way round

        def error(j):
            d = j[..., idx] - goal
            return np.where(wrap, (d + np.pi) % (2 * np.pi) - np.pi, d)

        if kind == "hold":
            return lambda j, a: -weight * np.square(error(j)).sum(-1)
        if "margin" in term:
            margin = _number(term["margin"], f"{where}: margin")
            if margin <= 0:
                raise TaskError(f"{where}: margin must be > 0, got {margin}")
            return lambda j, a: weight * np.exp(-_GAUSS_01 * np.square(np.linalg.norm(error(j), axis=-1) / margin))
        return lambda j, a: -weight * np.linalg.norm(error(j), axis=-1)
    if kind == "velocity":
        listed = _as_list(term.get("joints"), where)
        idx = np.array([_resolve(n, names, ".vel", where) for n in listed] if listed else
                       [k for k, n in enumerate(names) if n.endswith(".vel")], dtype=np.int64)
        if len(idx) == 0:
            raise TaskError(f"{where}: the observation has no '.vel' entries; list them with 'joints'")
        return lambda j, a: -weight * np.square(j[..., idx]).sum(-1)
    listed = _as_list(term.get("actions"), where)
    idx = np.arange(action_spec.dim)
    if listed:
        idx = np.array([_action_index(n, action_spec, where) for n in listed])
    return lambda j, a: -weight * np.square(a[..., idx]).sum(-1)


def _action_index(name, action_spec: ActionSpec, where: str) -> int:
    if isinstance(name, int) and not isinstance(name, bool) and 0 <= name < action_spec.dim:
        return name
    if isinstance(name, str) and name in action_spec.names:
        return action_spec.names.index(name)
    raise TaskError(f"{where}: action {name!r} is neither an index < {action_spec.dim} nor one of the "
                    f"action names {list(action_spec.names)}")


def _function_task(spec: str, obs_spec: ObsSpec, action_spec: ActionSpec) -> Task:
    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise TaskError(f"task {spec}: cannot import module {module_name!r} ({exc})") from None
    except AttributeError:
        raise TaskError(f"task {spec}: module {module_name!r} has no {attr!r}") from None
    if not callable(fn):
        raise TaskError(f"task {spec}: {attr!r} is not callable")
    return function_task(fn, obs_spec, action_spec, name=spec)


def function_task(fn: Callable, obs_spec: ObsSpec, action_spec: ActionSpec, name: str = "") -> Task:
    """Wrap f(joints, action) after checking the vector it declares (`joint_names` or `joint_dim`)."""
    name = name or getattr(fn, "__name__", "task")
    wanted = getattr(fn, "joint_names", None)
    if wanted is not None:
        names = _require_names(obs_spec, f"task {name} (joint_names)")
        idx = np.array([_resolve(n, names, "", f"task {name}") for n in wanted])
        return Task(name, lambda j, a: fn(j[..., idx], a), obs_spec.joint_dim, action_spec.dim, name,
                    {"joint_names": list(wanted)})
    dim = getattr(fn, "joint_dim", None)
    if dim is None:
        raise TaskError(f"task {name}: say which joint vector it reads: set {name.split(':')[-1]}.joint_names = "
                        f"[...] (entries of {list(obs_spec.joint_names)}) or .joint_dim = N")
    if int(dim) != obs_spec.joint_dim:
        raise TaskError(f"task {name} reads a joint vector of {int(dim)} entries, the observation spec has "
                        f"{obs_spec.joint_dim} ({list(obs_spec.joint_names)})")
    return Task(name, fn, obs_spec.joint_dim, action_spec.dim, name, {"joint_dim": int(dim)})


def _env_task(env_id: str, obs_spec: ObsSpec, action_spec: ActionSpec) -> Task:
    from mbrl_ros.envs import reward_fn

    try:
        fn = reward_fn(env_id)
    except KeyError as exc:
        raise TaskError(str(exc.args[0])) from None
    if fn is None:
        raise TaskError(f"task {env_id}: its reward is not a function of the recorded joints; "
                        "use reward_source 'topic' or state a task YAML")
    return function_task(fn, obs_spec, action_spec, name=env_id)


def describe(task: Optional[Task]) -> Optional[dict]:
    """What a cache index / manifest records about a task (None: no task)."""
    return None if task is None else {"name": task.name, "source": task.source, **task.description}
