"""Episodes as dicts of aligned arrays, stored atomically as compressed .npz.

Step t of an episode of length T holds (docs/DESIGN.md, Dreamer convention):
  image[t]  uint8[H,W,3]  observation at t (optional key)
  joints[t] float32[J]    observation at t
  action[t] float32[A]    action applied *before* obs t; action[0] = 0
  reward[t] float32       reward received on arriving at obs t; reward[0] = 0
  is_first[t] bool        True at t = 0 only
  is_terminal[t] bool     True only on a real termination (not a time limit)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from mbrl_ros.fileio import atomic_write_bytes

REQUIRED_KEYS = ("joints", "action", "reward", "is_first", "is_terminal")
DTYPES = {
    "image": np.uint8,
    "joints": np.float32,
    "action": np.float32,
    "reward": np.float32,
    "is_first": bool,
    "is_terminal": bool,
}

Episode = dict  # str -> np.ndarray, see module docstring


def validate_episode(ep: Episode, name: str = "episode") -> Episode:
    """Check keys, lengths, dtypes and finiteness; return the episode with canonical dtypes."""
    missing = [k for k in REQUIRED_KEYS if k not in ep]
    if missing:
        raise ValueError(f"{name}: missing keys {missing}")
    length = len(ep["joints"])
    if length < 2:
        raise ValueError(f"{name}: needs at least 2 steps, has {length}")
    out = {}
    for key, value in ep.items():
        arr = np.asarray(value)
        if len(arr) != length:
            raise ValueError(f"{name}: '{key}' has {len(arr)} steps, 'joints' has {length}")
        if key in DTYPES:
            arr = arr.astype(DTYPES[key], copy=False)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            bad = int(np.argwhere(~np.isfinite(arr.reshape(length, -1)))[0][0])
            raise ValueError(f"{name}: '{key}' has NaN/inf at step {bad}")
        out[key] = arr
    if "image" in out and (out["image"].ndim != 4 or out["image"].shape[-1] != 3):
        raise ValueError(f"{name}: 'image' must be [T,H,W,3], got {out['image'].shape}")
    if not out["is_first"][0]:
        raise ValueError(f"{name}: is_first[0] must be True")
    return out


def save_episode(path: Path, ep: Episode) -> Path:
    """Validate and write one episode as compressed .npz, atomically."""
    import io

    ep = validate_episode(ep, str(path))
    buf = io.BytesIO()
    np.savez_compressed(buf, **ep)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def load_episode(path: Path) -> Episode:
    """Read one episode; a corrupt file raises ValueError naming it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            ep = {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError ...
        raise ValueError(f"cannot read episode file {path}: {exc}") from exc
    return validate_episode(ep, str(path))


class EpisodeCache:
    """A directory of episode .npz files plus `index.json` recording which sources were ingested.

    Re-ingesting a source whose key (e.g. a bag segment's content hash) is already
    in the index is a no-op, so the trainer can rescan a bag folder cheaply.
    """

    INDEX = "index.json"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._index = self._read_index()

    def _read_index(self) -> dict:
        path = self.root / self.INDEX
        if not path.exists():
            return {"sources": {}}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"episode cache index {path} is corrupt: {exc}") from exc

    def has_source(self, key: str) -> bool:
        return key in self._index["sources"]

    @property
    def sources(self) -> dict:
        """Source key -> its index record ({"name", "episodes": [file names], ...}), in ingest order."""
        return dict(self._index["sources"])

    @property
    def obs_spec(self):
        """The ObsSpec recorded with the episodes (joint names, angle joints), or None if none was."""
        from mbrl_ros.spec import ObsSpec

        raw = self._index.get("obs_spec")
        return ObsSpec.from_dict(raw) if raw else None

    @property
    def action_spec(self):
        """The ActionSpec recorded with the episodes (the robot's command limits), or None."""
        from mbrl_ros.spec import ActionSpec

        raw = self._index.get("action_spec")
        return ActionSpec.from_dict(raw) if raw else None

    @property
    def rewards(self) -> list[str]:
        """Where the sources' rewards came from ("topic /mbrl/reward", "task <spec>", "none"), each once."""
        return sorted({src.get("reward", "topic") for src in self._index["sources"].values()})

    @property
    def reward_free(self) -> bool:
        """Whether some episodes carry no reward (ingested with reward_source none): their reward
        arrays are placeholders, so training must leave the reward and value heads alone."""
        return "none" in self.rewards

    def add(self, episodes: Iterable[Episode], source_key: str, source_name: str = "",
            obs_spec=None, action_spec=None, reward: Optional[str] = None) -> list[Path]:
        """Store episodes coming from one source; returns their paths ([] if already ingested).

        `obs_spec` and `action_spec` (the source's) are recorded so training from the cache
        alone knows the joint names, which joints are angles and the robot's command limits
        (which a model bundle carries to the controller); the latest ones given win.
        `reward` says where the episodes' rewards came from ("none": they have none).
        """
        if self.has_source(source_key):
            return []
        if obs_spec is not None:
            self._index["obs_spec"] = obs_spec.to_dict()
        if action_spec is not None:
            self._index["action_spec"] = action_spec.to_dict()
        paths, tag = [], _key_tag(source_key)
        for i, ep in enumerate(episodes):
            path = self.root / f"{_safe(source_name or source_key)[:40]}-{tag}-{i:04d}.npz"
            if path.exists():  # another source's file: never overwrite recorded data
                raise ValueError(f"episode cache {self.root}: {path.name} already exists for another source "
                                 f"(adding source {source_key!r})")
            paths.append(save_episode(path, ep))
        self._index["sources"][source_key] = {"name": source_name, "episodes": [p.name for p in paths]}
        if reward is not None:
            self._index["sources"][source_key]["reward"] = reward
        atomic_write_bytes(self.root / self.INDEX, json.dumps(self._index, indent=1).encode())
        return paths

    def paths(self) -> list[Path]:
        return sorted(p for p in self.root.glob("*.npz") if not p.name.startswith("."))

    def episodes(self) -> list[Episode]:
        return [load_episode(p) for p in self.paths()]

    def num_steps(self) -> int:
        return sum(len(ep["reward"]) for ep in self.episodes())


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _key_tag(source_key: str) -> str:
    """A short file-name part that is different for every source key.

    Short plain keys (the agent's "episode000123") are used whole; long ones (content
    hashes of bag segments) by a hash prefix. Cutting keys to a fixed prefix, as before,
    mapped the agent's episodes 0-9, 10-19, ... onto one file each.
    """
    if len(source_key) <= 24 and _safe(source_key) == source_key:
        return source_key
    return content_key(source_key)[:16]


def content_key(*parts: bytes | str) -> str:
    """A stable hash for dedup keys (bag segment contents, config)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
    return h.hexdigest()


class SequenceSampler:
    """Uniformly samples fixed-length windows [B, T, ...] from a list of episodes.

    Windows never cross episode boundaries; episodes shorter than T are skipped
    (with an error if none is long enough). Sampling is weighted by the number
    of windows each episode offers, so every window is equally likely.
    """

    def __init__(self, episodes: list[Episode], batch_size: int, seq_len: int, seed: Optional[int] = None):
        if batch_size < 1 or seq_len < 2:
            raise ValueError(f"batch_size >= 1 and seq_len >= 2 required, got {batch_size}, {seq_len}")
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.rng = np.random.default_rng(seed)
        self.episodes: list[Episode] = []
        self._windows = np.zeros(0, np.int64)
        self.extend(episodes)

    def extend(self, episodes: Iterable[Episode]) -> None:
        """Add episodes (e.g. freshly ingested ones) to the pool."""
        for ep in episodes:
            if len(ep["reward"]) >= self.seq_len:
                self.episodes.append(ep)
        self._windows = np.array([len(ep["reward"]) - self.seq_len + 1 for ep in self.episodes], np.int64)
        self._frames = np.array([len(ep["reward"]) - 1 for ep in self.episodes], np.int64)  # steps >= 1

    @property
    def num_steps(self) -> int:
        return int(sum(len(ep["reward"]) for ep in self.episodes))

    def sample_frames(self, count: int, keys: tuple[str, ...] = ("image", "joints", "reward")) -> dict[str, np.ndarray]:
        """`count` single steps drawn uniformly from all episodes (step 0 excluded: its reward is a
        placeholder), as [count, ...] arrays of `keys` (those the episodes have)."""
        if not self.episodes:
            raise ValueError(f"no episode has at least seq_len={self.seq_len} steps")
        which = self.rng.choice(len(self.episodes), size=count, p=self._frames / self._frames.sum())
        steps = 1 + (self.rng.random(count) * self._frames[which]).astype(np.int64)
        return {k: np.stack([self.episodes[e][k][t] for e, t in zip(which, steps)])
                for k in keys if k in self.episodes[0]}

    def sample(self) -> dict[str, np.ndarray]:
        if not self.episodes:
            raise ValueError(f"no episode has at least seq_len={self.seq_len} steps")
        probs = self._windows / self._windows.sum()
        which = self.rng.choice(len(self.episodes), size=self.batch_size, p=probs)
        batch: dict[str, list] = {}
        for e in which:
            ep = self.episodes[e]
            start = int(self.rng.integers(0, self._windows[e]))
            for key, value in ep.items():
                batch.setdefault(key, []).append(value[start:start + self.seq_len])
        out = {k: np.stack(v) for k, v in batch.items()}
        # A window that starts mid-episode starts the model's memory there too.
        out["is_first"] = out["is_first"].copy()
        out["is_first"][:, 0] = True
        return out


class EpisodeRecorder:
    """Builds one Episode (docs/DESIGN.md convention) step by step."""

    def __init__(self, obs: dict, action_dim: int):
        self.steps = {k: [] for k in ("joints", "action", "reward", "is_first", "is_terminal")}
        if "image" in obs:
            self.steps["image"] = []
        self.add(obs, np.zeros(action_dim, np.float32), 0.0, first=True, terminal=False)

    def add(self, obs: dict, action, reward: float, first: bool = False, terminal: bool = False) -> None:
        for key in ("image", "joints"):
            if key in self.steps:
                self.steps[key].append(np.asarray(obs[key]))
        self.steps["action"].append(np.asarray(action, np.float32))
        self.steps["reward"].append(np.float32(reward))
        self.steps["is_first"].append(first)
        self.steps["is_terminal"].append(bool(terminal))

    def episode(self) -> Episode:
        return validate_episode({k: np.stack(v) for k, v in self.steps.items()})


def rollout_episode(env, policy: Callable[[dict, np.random.Generator], np.ndarray], seed: int,
                    max_steps: Optional[int] = None) -> Episode:
    """Run one episode of a gymnasium env with dict observations into an Episode.

    `policy(obs, rng) -> action in [-1, 1]`. Stops at termination, truncation or max_steps.
    """
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    recorder = EpisodeRecorder(obs, env.action_space.shape[0])
    t = 0
    while max_steps is None or t < max_steps:
        action = np.asarray(policy(obs, rng), np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        recorder.add(obs, action, reward, terminal=bool(terminated))
        t += 1
        if terminated or truncated:
            break
    return recorder.episode()


def random_policy(action_dim: int) -> Callable[[dict, np.random.Generator], np.ndarray]:
    """Uniform random actions in [-1, 1]."""
    return lambda obs, rng: rng.uniform(-1.0, 1.0, size=action_dim).astype(np.float32)
