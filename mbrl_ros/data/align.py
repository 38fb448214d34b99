"""Put timestamped streams onto the control-rate timeline, as episodes (numpy only).

The rules (docs/data.md), with ticks t_k = anchor + k * dt inside an episode:
  obs[k]       latest image / joint state stamped at or before t_k (+ a small tolerance)
  action[k]    latest command logged in [part start, t_k): the command applied during
               (t_{k-1}, t_k]; action[0] = 0
  reward[k]    sum of rewards logged in (t_k - dt/2, t_k + dt/2]: the reward published with
               obs k; reward[0] = 0
  is_first     at each episode start (episode topic) and after a gap
  is_terminal  a terminal message in tick k's window ends the episode at k (True only if
               its data is True, i.e. a real termination, not a time limit)

Episode-start messages cut the recording into parts; inside a part, stretches where an
observation stream is silent for more than `max_gap` split it further.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .bag_reader import fmt_time


@dataclass
class Stream:
    """Time-sorted messages of one topic: times (ns) and values (first axis = message)."""

    times: np.ndarray
    values: np.ndarray

    @classmethod
    def build(cls, times: list[int], values: list, dtype=None) -> "Stream":
        t = np.asarray(times, np.int64)
        order = np.argsort(t, kind="stable")
        v = np.asarray(values, dtype=dtype) if len(values) else np.zeros((0,), dtype or np.float64)
        return cls(t[order], v[order] if len(values) else v)

    def __len__(self) -> int:
        return len(self.times)

    def reshaped(self, *shape: int) -> "Stream":
        """The same stream with values of shape [N, *shape] (also when N = 0)."""
        return Stream(self.times, self.values.reshape(len(self.times), *shape))


@dataclass
class Recording:
    """The decoded streams of one bag. `images` is None when images are not used."""

    joints: Stream
    commands: Stream
    rewards: Stream
    episode_starts: np.ndarray  # log times (ns)
    terminals: Stream  # values: bool
    images: Optional[Stream] = None


@dataclass
class AlignResult:
    episodes: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # What the timeline did to the data (reported per bag): observation gaps that split an
    # episode, shorter silences bridged by holding the last observation, fragments too short
    # to keep, and steps that reuse the previous step's camera frame (camera slower than control).
    gaps_split: int = 0
    gaps_merged: int = 0
    fragments_dropped: int = 0
    repeated_frames: int = 0
    image_steps: int = 0


def covered_intervals(times: np.ndarray, lo: int, hi: int, max_gap: int, hold: int = 0) -> list[tuple[int, int]]:
    """Intervals [first, last + hold] of stamps in [lo, hi) with no silence longer than max_gap.

    `hold`: how long the last message of an interval stays the latest one (a stream's own period)."""
    t = times[(times >= lo) & (times < hi)]
    if len(t) == 0:
        return []
    cuts = np.nonzero(np.diff(t) > max_gap)[0]
    starts = np.concatenate([[0], cuts + 1])
    ends = np.concatenate([cuts, [len(t) - 1]])
    return [(int(t[s]), int(t[e]) + hold) for s, e in zip(starts, ends)]


def intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _latest_at_or_before(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the latest time <= t (-1 if none)."""
    return np.searchsorted(times, t, side="right") - 1


def align(rec: Recording, dt: int, max_gap: int, action_dim: int, tolerance: int,
          reward_fn: Optional[Callable] = None, where: str = "", min_steps: int = 2) -> AlignResult:
    """Cut `rec` into Dreamer-convention episodes on a grid of period `dt` ns (see module doc)."""
    res = AlignResult()
    half = dt // 2
    has_episode_topic = len(rec.episode_starts) > 0
    boundaries = [b - half for b in np.sort(rec.episode_starts)]
    # Anything before the first episode start is kept too: the recording began mid-episode.
    edges = [np.iinfo(np.int64).min] + boundaries + [np.iinfo(np.int64).max]
    stats = {"no_command": 0, "no_command_t": None, "no_reward": 0, "no_reward_t": None, "short": 0,
             "first_tick_terminals": []}
    # A camera slower than the control rate: its last frame before an episode's end is still the
    # latest frame for one camera period, so the final ticks use it (as mid-episode ticks reuse
    # frames) instead of being cut, which would lose every episode's last step and its terminal.
    # Only the images are held: the last tick is never later than the last joint state.
    frame_hold = 0
    if rec.images is not None and len(rec.images) > 1:
        frame_hold = int(min(np.median(np.diff(rec.images.times)), max_gap))

    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        cover = covered_intervals(rec.joints.times, lo, hi, max_gap)
        if rec.images is not None:
            cover = intersect(cover, covered_intervals(rec.images.times, lo, hi, max_gap, hold=frame_hold))
        first_in_part = True
        for start, end in cover:
            res.gaps_merged += _bridged_silences(rec, start, end, dt)
            if not first_in_part:
                res.gaps_split += 1
                res.warnings.append(f"{where}: gap of more than {max_gap / 1e9:.3f}s in the observations "
                                    f"before {fmt_time(start)}: a new episode starts there")
            first_in_part = False
            ticks = start + dt * np.arange((end + tolerance - start) // dt + 1, dtype=np.int64)
            for ep_ticks, terminal in _cut_at_terminals(ticks, rec.terminals, half, has_episode_topic,
                                                        stats["first_tick_terminals"]):
                if len(ep_ticks) < min_steps:
                    stats["short"] += 1
                    continue
                res.episodes.append(_episode(rec, ep_ticks, terminal, lo, half, action_dim, tolerance,
                                             reward_fn, stats))
                if rec.images is not None:
                    frames = _latest_at_or_before(rec.images.times, ep_ticks + tolerance)
                    res.repeated_frames += int((frames[1:] == frames[:-1]).sum())
                    res.image_steps += len(frames) - 1
    if stats["no_command"]:
        res.warnings.append(f"{where}: {stats['no_command']} steps had no command since the episode start "
                            f"(first at {fmt_time(stats['no_command_t'])}); their action is 0")
    if stats["no_reward"]:
        res.warnings.append(f"{where}: {stats['no_reward']} steps had no reward message "
                            f"(first at {fmt_time(stats['no_reward_t'])}); their reward is 0")
    if stats["first_tick_terminals"]:
        res.warnings.append(f"{where}: {len(stats['first_tick_terminals'])} terminal message(s) logged at an "
                            f"episode's first step (first at {fmt_time(stats['first_tick_terminals'][0])}): "
                            "ignored there, the episode is kept; a terminal logged with the next episode's "
                            "start means the reset took no time (docs/data.md)")
    res.fragments_dropped = stats["short"]
    if stats["short"]:
        res.warnings.append(f"{where}: dropped {stats['short']} fragment(s) shorter than {min_steps} steps")
    return res


def _bridged_silences(rec: Recording, start: int, end: int, dt: int) -> int:
    """Silences of an observation stream inside [start, end] longer than 1.5 of its usual spacing
    (and of the control period) but too short to split the episode: the last observation is held
    across them. A camera that is simply slower than the control rate is not counted here (its
    reused frames are the repeated-frame share)."""
    count = 0
    for stream in (rec.joints, rec.images):
        if stream is not None:
            spacing = np.diff(stream.times[(stream.times >= start) & (stream.times <= end)])
            if len(spacing):
                count += int((spacing > 1.5 * max(dt, float(np.median(spacing)))).sum())
    return count


def _cut_at_terminals(ticks: np.ndarray, terminals: Stream, half: int, has_episode_topic: bool,
                      first_tick: list):
    """Yield (ticks, is_terminal) pieces; a terminal message in tick k's window ends a piece at k.

    After a terminal, the ticks up to the next episode start belong to no episode when the
    bag has an episode topic (the robot is being reset); without one, a new episode starts.
    A terminal in the first tick's window ends no step of this piece (a step's terminal comes
    with its reward, k >= 1): it is the episode before's, logged with this one's start. It is
    skipped, and its time appended to `first_tick`, instead of cutting the whole piece away.
    """
    if len(ticks) == 0:
        return
    window_lo, window_hi = ticks[0] - half, ticks[-1] + half
    inside = (terminals.times > window_lo) & (terminals.times <= window_hi)
    begin = 0
    for t, value in zip(terminals.times[inside], terminals.values[inside]):
        k = int(np.searchsorted(ticks + half, t, side="left"))  # first tick whose window holds t
        if k == 0:
            first_tick.append(int(t))
            continue
        if k < begin:
            continue
        yield ticks[begin:k + 1], bool(value)
        begin = k + 1
        if has_episode_topic:
            return
    if begin < len(ticks):
        yield ticks[begin:], False


def _episode(rec: Recording, ticks: np.ndarray, terminal: bool, part_lo: int, half: int, action_dim: int,
             tolerance: int, reward_fn, stats: dict) -> dict:
    n = len(ticks)
    ep = {}
    j = _latest_at_or_before(rec.joints.times, ticks + tolerance)
    ep["joints"] = rec.joints.values[j].astype(np.float32)
    if rec.images is not None:
        ep["image"] = rec.images.values[_latest_at_or_before(rec.images.times, ticks + tolerance)]

    action = np.zeros((n, action_dim), np.float32)
    c = np.searchsorted(rec.commands.times, ticks[1:], side="left") - 1  # latest command logged < t_k
    valid = c >= 0
    valid[valid] = rec.commands.times[c[valid]] >= part_lo
    action[1:][valid] = rec.commands.values[c[valid]]
    if not valid.all():
        stats["no_command"] += int((~valid).sum())
        stats["no_command_t"] = stats["no_command_t"] or int(ticks[1:][~valid][0])
    ep["action"] = action

    reward = np.zeros(n, np.float32)
    if reward_fn is not None:
        reward[1:] = np.asarray(reward_fn(ep["joints"][1:], action[1:]), np.float32)
    else:
        r = rec.rewards
        # cumulative sums give the sum over each window (t_k - half, t_k + half] in one go
        csum = np.concatenate([[0.0], np.cumsum(r.values.astype(np.float64))])
        a = np.searchsorted(r.times, ticks[1:] - half, side="right")
        b = np.searchsorted(r.times, ticks[1:] + half, side="right")
        reward[1:] = (csum[b] - csum[a]).astype(np.float32)
        missing = b == a
        if missing.any():
            stats["no_reward"] += int(missing.sum())
            stats["no_reward_t"] = stats["no_reward_t"] or int(ticks[1:][missing][0])
    ep["reward"] = reward

    ep["is_first"] = np.zeros(n, bool)
    ep["is_first"][0] = True
    ep["is_terminal"] = np.zeros(n, bool)
    ep["is_terminal"][-1] = terminal
    ep["time_ns"] = ticks.copy()  # for reports; the ingester takes it out before storing
    return ep
