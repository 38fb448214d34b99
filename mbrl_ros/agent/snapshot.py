"""A model-based run's training state in a form small enough to commit, and its restoration.

    <run folder>/resume/
        manifest.json      what was taken (state.json, evaluation rows, training step), versions, sizes
        checkpoint.pt.xz   the trainer checkpoint (model, optimisers, RNG states), xz-compressed
        episodes.npz       per cached episode: reset seed, length, actions, rewards, and a digest
                           of every array the cache holds for it

Why not the folder itself: a 100k-frame run's episode cache is 12-100 MB of frames, grows with the
run, and would enter the repository's history again with every snapshot. It does not need to be
kept: MuJoCo is deterministic, so the same env reset with the same seed and driven by the same
actions gives the same frames and rewards, bit for bit. `restore` replays every episode and checks
it against its digests. Rewards, joints and termination flags must match exactly or the restore
is refused (another physics build would train the model on data it never collected); frames that
differ only in pixels (another renderer) are accepted with a warning, and counted in run.json.

The snapshot is taken from a stopped run (`mbrl-ros agent snapshot <folder>`): it is the state a
resumed run would start from (the checkpoint of the last update, the episodes state.json counts).
A resumed-from-snapshot run is a continuation in the same sense as a resumed run
(docs/dmc.md, "Resuming across machines"): exploration and planner RNGs are re-seeded.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import lzma
import re
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from tqdm import tqdm

from mbrl_ros.agent.runlog import RunNotContinuable, read_evals, versions, write_run_meta
from mbrl_ros.data.episodes import EpisodeCache, EpisodeRecorder, load_episode
from mbrl_ros.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

FOLDER = "resume"
MANIFEST = "manifest.json"
CHECKPOINT = "checkpoint.pt.xz"
EPISODES = "episodes.npz"
FORMAT = 1
EPISODE_KEY = re.compile(r"^episode(\d{6})$")
# What a replayed episode must reproduce exactly; the image may differ (renderer) with a warning.
EXACT_KEYS = ("joints", "action", "reward", "is_first", "is_terminal")


class SnapshotError(RunNotContinuable):
    """A snapshot cannot be taken from, or restored into, a run folder (the message says why)."""


def digest(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def has_snapshot(folder: Path) -> bool:
    return (Path(folder) / FOLDER / MANIFEST).is_file()


# ---------------------------------------------------------------------------------- take
def take(folder: Path) -> Path:
    """Write `<folder>/resume/` from a stopped run folder; returns the manifest's path."""
    from mbrl_ros.agent.common import training_seed

    folder = Path(folder)
    state = _read_json(folder / "state.json", "the run's state")
    meta = _read_json(folder / "run.json", "the run's metadata")
    checkpoint = folder / "checkpoint.pt"
    if not checkpoint.is_file():
        raise SnapshotError(f"{folder} has no checkpoint.pt: the run has not trained yet, nothing to keep "
                            "beyond evals.csv (a run this young restarts cheaply)")
    raw = checkpoint.read_bytes()
    step = _checkpoint_step(raw)
    if step != int(state.get("train_steps", -1)):
        raise SnapshotError(f"{folder}: checkpoint.pt is at training step {step} but state.json says "
                            f"{state.get('train_steps')}: is the run still running? Stop it first")
    seed, episodes = int(meta["seed"]), int(state["episodes"])
    cache = EpisodeCache(folder / "cache")
    files = _episode_files(cache, episodes, folder)
    rows = read_evals(folder / "evals.csv")
    if rows and rows[-1]["env_steps"] > int(state["env_steps"]):
        raise SnapshotError(f"{folder}: evals.csv has a row at {rows[-1]['env_steps']} env steps, past the "
                            f"{state['env_steps']} of state.json: is the run still running? Stop it first")
    lengths, seeds, actions, rewards, digests = [], [], [], [], []
    for i, path in enumerate(tqdm(files, desc="snapshot: episodes", unit="ep", leave=False)):
        ep = load_episode(path)
        lengths.append(len(ep["reward"]))
        seeds.append(training_seed(seed, i))
        actions.append(ep["action"])
        rewards.append(ep["reward"])
        digests.append({k: digest(v) for k, v in sorted(ep.items())})
    buf = io.BytesIO()
    np.savez_compressed(buf, lengths=np.asarray(lengths, np.int64), reset_seeds=np.asarray(seeds, np.int64),
                        actions=np.concatenate(actions) if actions else np.zeros((0, 0), np.float32),
                        rewards=np.concatenate(rewards) if rewards else np.zeros(0, np.float32),
                        digests=np.asarray(json.dumps(digests)))
    out = folder / FOLDER
    out.mkdir(exist_ok=True)
    packed = lzma.compress(raw, preset=6)
    atomic_write_bytes(out / CHECKPOINT, packed)
    atomic_write_bytes(out / EPISODES, buf.getvalue())
    manifest = {"format": FORMAT, "state": state, "seed": seed, "episodes": episodes,
                "env_steps": int(state["env_steps"]), "evals_rows": len(rows),
                "checkpoint": {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw),
                               "packed_bytes": len(packed)},
                "obs_spec": cache.obs_spec.to_dict() if cache.obs_spec else None,
                "action_spec": cache.action_spec.to_dict() if cache.action_spec else None,
                "versions": versions()}
    atomic_write_bytes(out / MANIFEST, json.dumps(manifest, indent=1).encode())
    if meta.get("status") == "running":  # killed without the chance to say so (SIGKILL, a lost machine)
        meta["status"] = "stopped"
        write_run_meta(folder / "run.json", meta)
    return out / MANIFEST


def _episode_files(cache, episodes: int, folder: Path) -> list[Path]:
    """The cache files of training episodes 0..episodes-1, in order (episodes past state.json's
    count belong to no saved state: a run stopped between writing an episode and its state)."""
    by_index = {}
    for key, source in cache.sources.items():
        match = EPISODE_KEY.match(key)
        if not match or len(source["episodes"]) != 1:
            raise SnapshotError(f"{folder}: the episode cache holds source {key!r}, which is not one of the "
                                "agent's own episodes; only agent run folders can be snapshotted")
        by_index[int(match.group(1))] = cache.root / source["episodes"][0]
    missing = [i for i in range(episodes) if i not in by_index or not by_index[i].is_file()]
    if missing:
        raise SnapshotError(f"{folder}: state.json counts {episodes} episodes but the cache lacks "
                            f"{len(missing)} of them (first: {missing[0]})")
    return [by_index[i] for i in range(episodes)]


def _checkpoint_step(raw: bytes) -> int:
    import torch

    payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False)
    return int(payload["step"])


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SnapshotError(f"{path} is missing ({what}): not a run folder, or one that never finished an "
                            "episode") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path} is corrupt ({what}): {exc}") from None


# ---------------------------------------------------------------------------------- restore
def restore(folder: Path, make_env: Callable, run_seed: int, progress: bool = True) -> dict:
    """Rebuild checkpoint.pt, cache/ and state.json of `folder` from its `resume/`, replaying every
    episode in a fresh env from `make_env()`; returns a record for run.json's "restores".

    Refuses (SnapshotError) a snapshot of another seed, one older than the folder's evals.csv, and
    any replay whose rewards, joints or termination differ from what was collected.
    """
    from mbrl_ros.spec import ActionSpec, ObsSpec

    folder = Path(folder)
    src = folder / FOLDER
    manifest = _read_json(src / MANIFEST, "the snapshot's manifest")
    if manifest.get("format") != FORMAT:
        raise SnapshotError(f"{src}: snapshot format {manifest.get('format')} is not {FORMAT}; "
                            "restart the run with --restart")
    if int(manifest["seed"]) != int(run_seed):
        raise SnapshotError(f"{src} is a snapshot of seed {manifest['seed']}, not of seed {run_seed}")
    rows = read_evals(folder / "evals.csv")
    if len(rows) != int(manifest["evals_rows"]):
        raise SnapshotError(f"{folder}: evals.csv holds {len(rows)} rows but the snapshot was taken at "
                            f"{manifest['evals_rows']} ({manifest['env_steps']} env steps): evals.csv and resume/ "
                            "come from different moments; take the snapshot again, or --restart")
    packed = (src / CHECKPOINT).read_bytes()
    raw = lzma.decompress(packed)
    if hashlib.sha256(raw).hexdigest() != manifest["checkpoint"]["sha256"]:
        raise SnapshotError(f"{src / CHECKPOINT} does not match the manifest's sha256 (damaged file)")
    with np.load(src / EPISODES, allow_pickle=False) as data:
        lengths, seeds = data["lengths"], data["reset_seeds"]
        actions, digests = data["actions"], json.loads(str(data["digests"]))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    env = make_env()
    cache = EpisodeCache(folder / "cache")
    obs_spec = ObsSpec.from_dict(manifest["obs_spec"]) if manifest.get("obs_spec") else None
    action_spec = ActionSpec.from_dict(manifest["action_spec"]) if manifest.get("action_spec") else None
    redrawn = 0
    # a warning so that it shows with --no-progress too: the replay takes minutes
    log.warning("restoring %s from its snapshot: replaying %d episodes (%d agent steps)", folder, len(lengths),
                int(lengths.sum()))
    bar = tqdm(total=int(lengths.sum()), desc="restore: replaying episodes", unit="step", disable=not progress)
    for i, (length, seed) in enumerate(zip(lengths, seeds)):
        ep_actions = actions[starts[i]:starts[i + 1]]
        episode = _replay(env, int(seed), ep_actions)
        got = {k: digest(v) for k, v in sorted(episode.items())}
        bad = [k for k in digests[i] if got.get(k) != digests[i][k]]
        if any(k in EXACT_KEYS for k in bad) or set(got) != set(digests[i]):
            raise SnapshotError(
                f"{src}: episode {i} (reset seed {seed}) replays differently ({', '.join(bad) or 'keys'} differ) on "
                f"this machine ({versions()}) than where it was collected ({manifest['versions']}); the run "
                "cannot continue on the data it collected. Install the snapshot's versions, or --restart")
        redrawn += int("image" in bad)
        cache.add([episode], source_key=f"episode{i:06d}", source_name="agent", obs_spec=obs_spec,
                  action_spec=action_spec)
        bar.update(int(length))
    bar.close()
    if redrawn:
        log.warning("%d of %d restored episodes render to different pixels on this machine (physics, rewards "
                    "and actions are identical); the run continues on the re-rendered frames", redrawn, len(lengths))
    atomic_write_bytes(folder / "checkpoint.pt", raw)
    atomic_write_bytes(folder / "state.json", json.dumps(manifest["state"]).encode())
    return {"env_steps": int(manifest["env_steps"]), "episodes": len(lengths),
            "episodes_rerendered": redrawn, "snapshot_versions": manifest["versions"], "versions": versions()}


def _replay(env, seed: int, actions: np.ndarray) -> dict:
    """One episode: reset with `seed`, then step the recorded actions (row 0 is the reset's zero
    action, as the recorder writes it)."""
    obs, _ = env.reset(seed=seed)
    recorder = EpisodeRecorder(obs, actions.shape[1])
    for action in actions[1:]:
        obs, reward, terminated, truncated, _ = env.step(action)
        recorder.add(obs, action, reward, terminal=terminated)
    return recorder.episode()


def describe(manifest_path: Path) -> str:
    """One line for the CLI: what the snapshot holds and its size on disk."""
    manifest = json.loads(Path(manifest_path).read_text())
    folder = Path(manifest_path).parent
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return (f"{folder}: {manifest['env_steps']} env steps, {manifest['episodes']} episodes, training step "
            f"{manifest['state'].get('train_steps')}, {size / 1e6:.1f} MB (checkpoint "
            f"{manifest['checkpoint']['bytes'] / 1e6:.1f} MB -> {manifest['checkpoint']['packed_bytes'] / 1e6:.1f} MB)")


def restore_if_needed(folder: Path, make_env: Callable, run_seed: int, progress: bool) -> Optional[dict]:
    """Restore when the folder has a snapshot but not the training state it holds (a fresh clone)."""
    folder = Path(folder)
    if not has_snapshot(folder) or (folder / "state.json").exists():
        return None
    return restore(folder, make_env, run_seed, progress=progress)
