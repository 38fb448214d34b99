"""rosbag2 recordings -> episodes in the cache (`ingest_bags`), and the bag writers.

    from mbrl_ros.data.bags import IngestConfig, ingest_bags
    config = IngestConfig.from_yaml("config/ingest.yaml")     # or IngestConfig.for_env(env)
    report = ingest_bags(["bags/"], EpisodeCache("cache/"), config)
    print(report.summary())

Topic layout, alignment rules and failure behaviour: docs/data.md. Bags are read in
MCAP and sqlite3 storage; damaged bags keep their readable part and every problem is
reported (report.warnings / report.errors, and the `mbrl_ros.data.bags` logger) naming
the bag, topic and time. Re-ingesting a bag with the same config is a no-op.
"""
from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from mbrl_ros.spec import ActionSpec, ObsSpec

from . import ros_messages as rm
from .align import Recording, Stream, align
from .bag_reader import fmt_time, find_bags, iter_messages
from .bag_writer import BagWriter, SegmentedBagWriter, segment_is_being_recorded  # noqa: F401 (re-export)
from .episodes import EpisodeCache, content_key

log = logging.getLogger(__name__)

JOINT_FIELDS = ("position_velocity", "position")
REWARD_SOURCES = ("topic", "task", "none")
TASK_SOURCES = ("task", "reward_fn")  # "reward_fn": the old name, kept as given so cache keys stay the same

# Field -> the YAML type it must have (checked in from_dict, so a wrong type is one line naming the key).
_TYPES = {"image_size": "list of 2 integers or null", "control_rate_hz": "number or null",
          "image_topic": "string", "joint_topic": "string", "command_topic": "string", "reward_topic": "string",
          "episode_topic": "string", "terminal_topic": "string", "joint_fields": "string",
          "reward_source": "string", "task": "string or null", "max_gap_s": "number",
          "stamp_tolerance_s": "number", "active_grace_s": "number", "min_episode_steps": "integer",
          "joint_names": "list of strings", "continuous_joints": "list of strings", "action_spec": "mapping"}


@dataclass(frozen=True)
class IngestConfig:
    """How to turn a bag into episodes.

    joint_names   the joints vector is the positions of these joints (matched by name in
                  JointState, any order, extra joints ignored) then their velocities;
                  with joint_fields="position", positions only.
    continuous_joints  those of joint_names that are unlimited revolute joints (URDF
                  "continuous"): the model reads their angle as (sin, cos) (ObsSpec.angle_joints).
    image_size    (H, W) of the stored images (other sizes are resized); None: no images.
    action_spec   command limits in robot units (commands are mapped to [-1, 1]).
    control_rate_hz  the tick rate; None: derived from the command log times (pauses longer
                  than max_gap_s left out; see _control_period_ns), and reported per bag.
    reward_source "topic" (sum of reward messages per step), "task" (`task`'s reward of the
                  joints and action: a task YAML, a module:function or an env id; see
                  mbrl_ros.data.tasks; "reward_fn" is the old name) or "none" (a robot without a
                  reward: rewards are 0 and the cache says it has none; train the world model
                  reward-free, then `mbrl-ros relabel` with a task).
    max_gap_s     an observation stream silent for longer splits the episode.
    active_grace_s  a bag without metadata.yaml modified less than this ago is assumed to be
                  still recording and is skipped (0 reads it anyway).
    """

    joint_names: tuple[str, ...]
    action_spec: ActionSpec
    image_size: Optional[tuple[int, int]] = (64, 64)
    control_rate_hz: Optional[float] = None
    image_topic: str = "/camera/image_raw"
    joint_topic: str = "/joint_states"
    command_topic: str = "/mbrl/commands"
    reward_topic: str = "/mbrl/reward"
    episode_topic: str = "/mbrl/episode"
    terminal_topic: str = "/mbrl/terminal"
    joint_fields: str = "position_velocity"
    reward_source: str = "topic"
    task: Optional[str] = None
    max_gap_s: float = 0.5
    stamp_tolerance_s: float = 0.001
    active_grace_s: float = 10.0
    min_episode_steps: int = 2
    continuous_joints: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "continuous_joints", tuple(self.continuous_joints))
        unknown = [n for n in self.continuous_joints if n not in self.joint_names]
        if unknown:
            raise ValueError(f"IngestConfig: continuous_joints {unknown} are not in joint_names {list(self.joint_names)}")
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(int(s) for s in self.image_size))
        if not self.joint_names:
            raise ValueError("IngestConfig: joint_names must name at least one joint")
        if self.joint_fields not in JOINT_FIELDS:
            raise ValueError(f"IngestConfig: joint_fields must be one of {JOINT_FIELDS}, got '{self.joint_fields}'")
        if self.reward_source not in REWARD_SOURCES + TASK_SOURCES:
            raise ValueError(f"IngestConfig: reward_source must be one of {list(REWARD_SOURCES)}, "
                             f"got '{self.reward_source}'")
        if self.reward_source in TASK_SOURCES and not self.task:
            raise ValueError("IngestConfig: reward_source='task' needs task (a task YAML, module:function or env id)")
        if self.control_rate_hz is not None and self.control_rate_hz <= 0:
            raise ValueError(f"IngestConfig: control_rate_hz must be > 0, got {self.control_rate_hz}")
        if self.max_gap_s <= 0:
            raise ValueError(f"IngestConfig: max_gap_s must be > 0, got {self.max_gap_s}")

    @property
    def obs_spec(self) -> ObsSpec:
        names = [f"{n}.pos" for n in self.joint_names]
        if self.joint_fields == "position_velocity":
            names += [f"{n}.vel" for n in self.joint_names]
        else:
            names = list(self.joint_names)
        shape = (*self.image_size, 3) if self.image_size else None
        # positions come first in both layouts, so joint k's angle is entry k
        angles = tuple(self.joint_names.index(n) for n in self.continuous_joints)
        return ObsSpec(joint_dim=len(names), image_shape=shape, joint_names=tuple(names), angle_joints=angles)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["joint_names"] = list(self.joint_names)
        d["continuous_joints"] = list(self.continuous_joints)
        if not self.continuous_joints:
            del d["continuous_joints"]  # keeps the fingerprint (hence cache keys) of older configs
        d["action_spec"] = self.action_spec.to_dict()
        d["image_size"] = list(self.image_size) if self.image_size else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "IngestConfig":
        """From a plain dict (e.g. YAML). `action_spec` is a dict (ActionSpec.to_dict); an
        `obs_spec` dict may give the image size instead of `image_size`."""
        d = dict(d)
        known = {f.name for f in fields(cls)}
        obs = d.pop("obs_spec", None)
        if obs is not None and "image_size" not in d:
            shape = obs.get("image_shape")
            d["image_size"] = tuple(shape[:2]) if shape else None
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"IngestConfig: unknown keys {unknown}; known: {sorted(known)}")
        if "action_spec" not in d or "joint_names" not in d:
            raise ValueError("IngestConfig: 'joint_names' and 'action_spec' are required")
        for key, value in d.items():
            if not _has_type(value, _TYPES.get(key, "")):
                raise ValueError(f"IngestConfig: {key} must be a {_TYPES[key]}, got {value!r}")
        spec = d["action_spec"]
        try:
            d["action_spec"] = spec if isinstance(spec, ActionSpec) else ActionSpec.from_dict(spec)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"IngestConfig: action_spec {spec!r} is not {{dim, low, high[, names]}} ({exc})") \
                from None
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: Path) -> "IngestConfig":
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ValueError(f"ingest config {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of IngestConfig keys (optionally under 'ingest:')")
        try:
            return cls.from_dict(data.get("ingest", data))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def for_env(cls, env, **overrides) -> "IngestConfig":
        """The config matching an env of mbrl_ros.envs (what `mbrl-ros collect` records)."""
        u = env.unwrapped
        names, fields_ = joint_layout(u.obs_spec)
        shape = u.obs_spec.image_shape
        continuous = tuple(names[i] for i in u.obs_spec.angle_joints) if fields_ == "position_velocity" else ()
        kwargs = dict(joint_names=names, joint_fields=fields_, action_spec=u.action_spec,
                      continuous_joints=continuous, image_size=tuple(shape[:2]) if shape else None,
                      control_rate_hz=1.0 / float(u.control_dt))
        kwargs.update(overrides)
        return cls(**kwargs)

    def fingerprint(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _has_type(value, kind: str) -> bool:
    """Whether a YAML value fits the `_TYPES` description (an empty description: anything)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    checks = {
        "": True, "mapping": isinstance(value, (dict, ActionSpec)), "string": isinstance(value, str),
        "string or null": value is None or isinstance(value, str), "number": number,
        "number or null": value is None or number,
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "list of strings": isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
        "list of 2 integers or null": value is None or (isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)),
    }
    return checks[kind]


def joint_layout(obs_spec: ObsSpec) -> tuple[tuple[str, ...], str]:
    """(JointState names, joint_fields) that carry `obs_spec`'s joints vector.

    Names "<j>.pos"... then "<j>.vel"... -> joints j with position and velocity; anything
    else (a gymnasium task's state vector) -> one JointState entry per element, position only.
    """
    names = obs_spec.joint_names or tuple(f"state[{i}]" for i in range(obs_spec.joint_dim))
    half = len(names) // 2
    pos, vel = names[:half], names[half:]
    if (len(names) % 2 == 0 and half > 0 and all(n.endswith(".pos") for n in pos)
            and [n[:-4] for n in pos] == [n[:-4] for n in vel if n.endswith(".vel")]):
        return tuple(n[:-4] for n in pos), "position_velocity"
    return tuple(names), "position"


# --- report -------------------------------------------------------------------------------

@dataclass
class BagResult:
    bag: str
    status: str  # "ingested" | "already ingested" | "recording" | "failed"
    key: str = ""
    episodes: int = 0
    steps: int = 0
    warnings: list[str] = field(default_factory=list)
    error: Optional[str] = None
    # for ingested bags: rate_hz, rate_from, gaps_split, gaps_merged, fragments_dropped,
    # repeated_frames (a share, None without images); see bag_to_episodes
    timeline: dict = field(default_factory=dict)

    def describe(self) -> str:
        """One line: status, episodes, and how the bag was put on the control timeline."""
        line = f"bag {self.bag}: {self.status}"
        if self.status == "ingested":
            line += f", {self.episodes} episode(s), {self.steps} steps"
        tl = self.timeline
        if tl:
            line += f"; {tl['rate_hz']:.2f} Hz ({tl['rate_from']})"
            line += f"; gaps: {tl['gaps_split']} split an episode, {tl['gaps_merged']} bridged"
            if tl["fragments_dropped"]:
                line += f", {tl['fragments_dropped']} fragment(s) too short dropped"
            if tl.get("repeated_frames") is not None:
                line += f"; repeated frames {100 * tl['repeated_frames']:.0f}%"
        return line


@dataclass
class IngestReport:
    """What `ingest_bags` did, per bag; `paths` are the new episode files."""

    bags: list[BagResult] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    @property
    def episodes(self) -> int:
        return sum(b.episodes for b in self.bags)

    @property
    def steps(self) -> int:
        return sum(b.steps for b in self.bags)

    @property
    def warnings(self) -> list[str]:
        return [w for b in self.bags for w in b.warnings]

    @property
    def errors(self) -> list[str]:
        return [b.error for b in self.bags if b.error]

    def summary(self) -> str:
        counts = defaultdict(int)
        for b in self.bags:
            counts[b.status] += 1
        status = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no bags"
        lines = [f"{len(self.bags)} bag(s): {status}; {self.episodes} new episodes, {self.steps} steps"]
        lines += [b.describe() for b in self.bags if b.timeline]
        lines += [f"warning: {w}" for w in dict.fromkeys(self.warnings)]  # each once, in order
        lines += [f"error: {e}" for e in self.errors]
        return "\n".join(lines)

    @property
    def ingested_nothing(self) -> bool:
        """No bag gave episodes now or in an earlier run (an empty folder, every bag failed ...)."""
        return not any(b.status in ("ingested", "already ingested") for b in self.bags)


class IngestError(ValueError):
    """A bag cannot give any episode (missing topic, wrong joints, ...)."""


# --- ingest -------------------------------------------------------------------------------

def bag_fingerprint(bag: Path) -> str:
    """Stable across copies: metadata.yaml, and each storage file's name, size, first and last MiB."""
    bag = Path(bag)
    parts: list[bytes | str] = []
    files = [bag] if bag.is_file() else sorted(p for p in bag.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in files:
        size = path.stat().st_size
        parts.append(f"{path.name}:{size}")
        with path.open("rb") as f:
            parts.append(f.read(2**20))
            if size > 2**20:
                f.seek(max(2**20, size - 2**20))
                parts.append(f.read())
    return content_key(*parts)


def ingest_bags(bag_paths: Iterable[Path] | Path, cache: EpisodeCache, config: IngestConfig,
                progress: bool = True) -> IngestReport:
    """Ingest rosbag2 recordings (bag directories, storage files, or folders of bags) into `cache`.

    Never raises for a bad bag: its problem is in the report (and logged). A bag already
    ingested with the same config is skipped.
    """
    if isinstance(bag_paths, (str, Path)):
        bag_paths = [bag_paths]
    bags = find_bags(bag_paths)
    report = IngestReport()
    reward_fn = reward_function(config)
    try:
        from tqdm import tqdm

        iterator = tqdm(bags, desc="ingest", unit="bag", disable=not progress or len(bags) < 2)
    except ImportError:  # pragma: no cover
        iterator = bags
    for bag in iterator:
        result = _ingest_one(bag, cache, config, reward_fn, report)
        report.bags.append(result)
        for w in result.warnings:
            log.warning(w)
        if result.error:
            log.error(result.error)
    return report


def reward_function(config: IngestConfig) -> Optional[Callable]:
    """f(joints, action) giving each step's reward, or None to read the reward topic.

    "task": the task, checked against this config's obs spec (a task built for another
    joint vector is a ValueError naming both sizes); "none": zeros (the cache records that
    the episodes carry no reward, so training leaves the reward and value heads alone).
    """
    if config.reward_source == "none":
        return no_reward
    if config.reward_source not in TASK_SOURCES:
        return None
    from .tasks import load_task

    return load_task(config.task, config.obs_spec, config.action_spec)


def no_reward(joints, action) -> np.ndarray:
    return np.zeros(np.shape(joints)[:-1], np.float64)


def reward_label(config: IngestConfig) -> str:
    """What the cache index records as the episodes' reward: "topic <name>", "task <spec>" or "none"."""
    if config.reward_source == "topic":
        return f"topic {config.reward_topic}"
    return "none" if config.reward_source == "none" else f"task {config.task}"


def _ingest_one(bag: Path, cache: EpisodeCache, config: IngestConfig, reward_fn, report: IngestReport) -> BagResult:
    result = BagResult(bag=str(bag), status="failed")
    if bag.is_dir() and not (bag / "metadata.yaml").exists():
        if segment_is_being_recorded(bag):
            result.status = "recording"  # the logger's open segment: normal, not worth a warning
            return result
        newest = max((p.stat().st_mtime for p in bag.iterdir()), default=0.0)
        age = time.time() - newest
        if age < config.active_grace_s:
            result.status = "recording"
            result.warnings.append(f"bag {bag}: no metadata.yaml and modified {age:.1f}s ago: assuming it is "
                                   f"still being recorded; skipped (active_grace_s={config.active_grace_s})")
            return result
    try:
        result.key = content_key(bag_fingerprint(bag), config.fingerprint())
    except OSError as exc:
        result.error = f"bag {bag}: cannot read: {exc}"
        return result
    if cache.has_source(result.key):
        result.status = "already ingested"
        return result
    try:
        episodes = bag_to_episodes(bag, config, result.warnings.append, reward_fn, result.timeline)
    except IngestError as exc:
        result.error = str(exc)
        return result
    report.paths += cache.add(episodes, result.key, source_name=bag.name, obs_spec=config.obs_spec,
                              action_spec=config.action_spec, reward=reward_label(config))
    result.status = "ingested"
    result.episodes = len(episodes)
    result.steps = sum(len(ep["reward"]) for ep in episodes)
    return result


def bag_to_episodes(bag: Path, config: IngestConfig, warn: Callable[[str], None],
                    reward_fn: Optional[Callable] = None, timeline: Optional[dict] = None) -> list[dict]:
    """Read one bag and cut it into episodes (not stored). Raises IngestError if it gives none.

    `timeline`, if given, is filled with how the bag met the control timeline: rate_hz and
    rate_from, gaps_split / gaps_merged, fragments_dropped, repeated_frames (a share)."""
    bag = Path(bag)
    topics = {config.joint_topic, config.command_topic, config.episode_topic, config.terminal_topic}
    if config.image_size is not None:
        topics.add(config.image_topic)
    if config.reward_source == "topic":
        topics.add(config.reward_topic)
    messages = iter_messages(bag, topics, warn)
    rec = _decode(bag, messages, config, warn)
    dt, rate_from = _control_period_ns(bag, config, rec, warn)
    try:
        result = align(rec, dt=dt, max_gap=int(config.max_gap_s * 1e9), action_dim=config.action_spec.dim,
                       tolerance=int(config.stamp_tolerance_s * 1e9), reward_fn=reward_fn,
                       where=f"bag {bag}", min_steps=config.min_episode_steps)
    except ValueError as exc:  # a task that does not fit the recorded vectors
        raise IngestError(f"bag {bag}: {exc}") from None
    for w in result.warnings:
        warn(w)
    if timeline is not None:
        timeline.update(rate_hz=1e9 / dt, rate_from=rate_from, gaps_split=result.gaps_split,
                        gaps_merged=result.gaps_merged, fragments_dropped=result.fragments_dropped,
                        repeated_frames=(result.repeated_frames / result.image_steps
                                         if result.image_steps else None))
    if not result.episodes:
        raise IngestError(f"bag {bag}: no episode of at least {config.min_episode_steps} steps could be formed "
                          f"({len(rec.joints)} joint states, {len(rec.images) if rec.images else 0} images)")
    for ep in result.episodes:
        ep.pop("time_ns")
    return result.episodes


def _control_period_ns(bag: Path, config: IngestConfig, rec: Recording,
                       warn: Callable[[str], None]) -> tuple[int, str]:
    """(control period in ns, where it came from).

    Derived from the commands, leaving out pauses longer than max_gap_s (resets between
    episodes), so pauses cannot drag the rate down (the mean spacing of 200-step, 20 Hz
    episodes with 2 s resets is 60 ms: 16.7 Hz). The median spacing gives the period
    roughly; each run of commands between pauses then gives it precisely as its span over
    its number of periods (a dropped command counts as two periods), which averages the
    jitter of the log times out instead of letting a grid a fraction of a ms off drift by
    a whole tick over an episode. A rate within 0.5% of a whole number of Hz is taken as that
    number (controllers run at whole rates; the rest is jitter, and a grid 0.1% off loses a
    step every few hundred). Irregular spacing is reported: ticks then repeat or skip commands.
    """
    if config.control_rate_hz is not None:
        return int(round(1e9 / config.control_rate_hz)), "control_rate_hz"
    times = rec.commands.times
    all_spacing = np.diff(times)
    keep = (all_spacing > 0) & (all_spacing <= config.max_gap_s * 1e9)
    spacing = all_spacing[keep]
    if len(spacing) < 2:
        raise IngestError(f"bag {bag}: control_rate_hz is not set and topic {config.command_topic} has too few "
                          "commands to derive it; set control_rate_hz in the ingest config")
    rough = float(np.median(spacing))
    cuts = np.nonzero(~keep)[0]
    runs = zip(np.concatenate([[0], cuts + 1]), np.concatenate([cuts, [len(times) - 1]]))
    spans = [(int(times[e] - times[s]), round((times[e] - times[s]) / rough)) for s, e in runs if e > s]
    periods = sum(n for _, n in spans)
    period = sum(span for span, _ in spans) / periods if periods else rough
    whole = round(1e9 / period)
    if whole >= 1 and abs(1e9 / period - whole) <= 0.005 * whole:
        period = 1e9 / whole
    off = float(np.mean(np.abs(spacing - period) > 0.25 * period))
    if off > 0.2:
        warn(f"bag {bag}: command spacing is irregular ({100 * off:.0f}% of {len(spacing)} intervals differ from "
             f"the median {period / 1e6:.1f} ms by more than 25%): derived {1e9 / period:.2f} Hz; set "
             "control_rate_hz if that is not the controller's rate")
    return int(round(period)), f"derived from {len(times)} commands in {len(spans)} run(s)"


class _Problems:
    """Groups repeated per-message problems into one warning: what, how often, first time."""

    def __init__(self):
        self.seen: dict[tuple[str, str], list] = {}

    def add(self, topic: str, what: str, t_ns: int) -> None:
        entry = self.seen.setdefault((topic, what), [0, t_ns])
        entry[0] += 1

    def flush(self, bag: Path, warn: Callable[[str], None]) -> None:
        for (topic, what), (count, t_ns) in self.seen.items():
            warn(f"bag {bag}: topic {topic} at {fmt_time(t_ns)}: {what}; message skipped"
                 + (f" ({count} messages, first one shown)" if count > 1 else ""))


def _decode(bag: Path, messages, config: IngestConfig, warn: Callable[[str], None]) -> Recording:
    """Deserialise the raw messages into time-sorted streams, skipping (and reporting) bad ones."""
    expected = {config.joint_topic: rm.JOINT_STATE, config.command_topic: rm.COMMANDS,
                config.reward_topic: rm.FLOAT64, config.episode_topic: rm.INT64,
                config.terminal_topic: rm.BOOL, config.image_topic: rm.IMAGE}
    problems = _Problems()
    by_topic: dict[str, list] = defaultdict(list)
    wrong_type: dict[str, str] = {}
    for m in messages:
        if m.msgtype and m.msgtype != expected[m.topic]:
            wrong_type[m.topic] = m.msgtype
            continue
        try:
            msg = rm.deserialize(m.data, expected[m.topic])
        except Exception as exc:
            problems.add(m.topic, f"cannot deserialise ({type(exc).__name__}: {exc})", m.log_ns)
            continue
        if m.topic == config.image_topic and config.image_size is not None:
            msg = _decode_frame(msg, config, problems)  # now, so full-size frames never pile up
            if msg is None:
                continue
        by_topic[m.topic].append((m.log_ns, msg))
    for topic, msgtype in wrong_type.items():
        raise IngestError(f"bag {bag}: topic {topic} has type {msgtype}, expected {expected[topic]}")

    required = [(config.joint_topic, "joint states"), (config.command_topic, "commands")]
    if config.image_size is not None:
        required.append((config.image_topic, "images"))
    if config.reward_source == "topic":
        required.append((config.reward_topic, "rewards"))
    for topic, what in required:
        if not by_topic.get(topic):
            raise IngestError(f"bag {bag}: required topic {topic} ({expected[topic]}, {what}) has no readable "
                              f"messages; set the topic name in the ingest config if it was recorded under another "
                              f"name")
    for topic in (config.episode_topic, config.terminal_topic):
        if not by_topic.get(topic):
            warn(f"bag {bag}: topic {topic} has no messages: "
                 + ("episodes start only at the bag start and after gaps" if topic == config.episode_topic
                    else "no step is marked terminal"))

    joints = _joint_stream(bag, by_topic[config.joint_topic], config, problems)
    commands_t, commands_v = [], []
    dim = config.action_spec.dim
    for t, msg in by_topic[config.command_topic]:
        data = np.asarray(msg.data, np.float64)
        if data.shape != (dim,):
            problems.add(config.command_topic, f"command has {data.size} values, the action spec has {dim}", t)
        elif not np.all(np.isfinite(data)):
            problems.add(config.command_topic, "command contains NaN/inf", t)
        else:
            commands_t.append(t)
            commands_v.append(config.action_spec.from_robot(data))
    rewards = [(t, float(msg.data)) for t, msg in by_topic.get(config.reward_topic, [])]
    for t, r in rewards:
        if not np.isfinite(r):
            problems.add(config.reward_topic, "reward is NaN/inf", t)
    rewards = [(t, r) for t, r in rewards if np.isfinite(r)]
    images = None
    if config.image_size is not None:
        images = _image_stream(by_topic[config.image_topic], config)
    problems.flush(bag, warn)

    rec = Recording(
        joints=joints,
        commands=Stream.build(commands_t, commands_v, np.float32).reshaped(dim),
        rewards=Stream.build([t for t, _ in rewards], [r for _, r in rewards], np.float64),
        episode_starts=np.sort(np.asarray([t for t, _ in by_topic.get(config.episode_topic, [])], np.int64)),
        terminals=Stream.build([t for t, _ in by_topic.get(config.terminal_topic, [])],
                               [bool(m.data) for _, m in by_topic.get(config.terminal_topic, [])], bool),
        images=images,
    )
    if len(rec.joints) == 0:
        raise IngestError(f"bag {bag}: topic {config.joint_topic}: no usable joint state (see warnings)")
    if images is not None and len(images) == 0:
        raise IngestError(f"bag {bag}: topic {config.image_topic}: no usable image (see warnings)")
    return rec


def _joint_stream(bag: Path, items, config: IngestConfig, problems: _Problems) -> Stream:
    times, values = [], []
    with_velocity = config.joint_fields == "position_velocity"
    index_cache: dict[tuple[str, ...], Optional[np.ndarray]] = {}
    for t_log, msg in items:
        t = rm.stamp_ns(msg.header)
        names = tuple(msg.name)
        if names not in index_cache:  # the name order rarely changes: look it up once per layout
            lookup = {n: i for i, n in enumerate(names)}
            missing = [n for n in config.joint_names if n not in lookup]
            if missing and not times and not index_cache:
                # The very first message lacks a configured joint: the config does not fit this robot.
                raise IngestError(f"bag {bag}: topic {config.joint_topic} at {fmt_time(t)}: joint(s) {missing} "
                                  f"not in the message (it has {list(names)}); fix joint_names in the ingest config")
            index_cache[names] = None if missing else np.array([lookup[n] for n in config.joint_names])
            if missing:
                problems.add(config.joint_topic, f"joint(s) {missing} missing", t)
        idx = index_cache[names]
        if idx is None:
            problems.add(config.joint_topic, "configured joint(s) missing", t)
            continue
        pos = np.asarray(msg.position, np.float64)
        vel = np.asarray(msg.velocity, np.float64)
        if len(pos) != len(names) or (with_velocity and len(vel) != len(names)):
            problems.add(config.joint_topic, f"{len(names)} names but {len(pos)} positions / {len(vel)} velocities", t)
            continue
        vector = np.concatenate([pos[idx], vel[idx]]) if with_velocity else pos[idx]
        if not np.all(np.isfinite(vector)):
            problems.add(config.joint_topic, "joint values contain NaN/inf", t)
            continue
        times.append(t)
        values.append(vector.astype(np.float32))
    return Stream.build(times, values, np.float32).reshaped(len(config.obs_spec.joint_names))


def _decode_frame(msg, config: IngestConfig, problems: _Problems) -> Optional[tuple[int, np.ndarray]]:
    """(stamp, RGB frame at the configured size), or None (reported) for an unusable frame."""
    t = rm.stamp_ns(msg.header)
    try:
        return t, rm.decode_image(msg, config.image_size)
    except ValueError as exc:
        problems.add(config.image_topic, str(exc), t)
        return None


def _image_stream(items, config: IngestConfig) -> Stream:
    stream = Stream.build([t for _, (t, _) in items], [f for _, (_, f) in items], np.uint8)
    return stream.reshaped(*config.image_size, 3)
