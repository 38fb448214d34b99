"""Write rosbag2 recordings without ROS: single bags and rolling segments.

`BagWriter` writes one rosbag2 directory (metadata.yaml + MCAP by default, or sqlite3),
readable by `ros2 bag info/play` and by rosbags. It takes either CDR bytes (what an
rclpy subscription with raw=True delivers) or typestore message objects.

`SegmentedBagWriter` rolls over to a new bag directory `<root>/<prefix>_<NNNN>/` when
the open one exceeds a duration or size, closing (and fsyncing) the old one first, so a
crash loses at most the open segment. While a segment is open it holds an exclusive
lock on `<segment>/.recording.lock`; the ingester skips a locked segment (still being
recorded) and salvages an unlocked one without metadata.yaml (the recorder crashed).
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Optional, Sequence

from rosbags.rosbag2 import StoragePlugin, Writer

from mbrl_ros.fileio import fsync_tree

from . import ros_messages

log = logging.getLogger(__name__)

STORAGE = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
ON_FULL = ("stop", "delete_oldest")  # what SegmentedBagWriter does at its disk cap
LOCK_NAME = ".recording.lock"


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def segment_is_being_recorded(bag_dir: Path) -> bool:
    """True if a live SegmentedBagWriter holds this segment's lock."""
    lock = Path(bag_dir) / LOCK_NAME
    if not lock.exists():
        return False
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our lock if we got it
    return False


class BagWriter:
    """One rosbag2 directory. Topics are added on their first message.

    `storage`: "mcap" (default, what `ros2 bag record -s mcap` writes) or "sqlite3".
    Use as a context manager or call `close()`; closing writes metadata.yaml and fsyncs.
    """

    def __init__(self, path: Path, storage: str = "mcap"):
        if storage not in STORAGE:
            raise ValueError(f"storage must be one of {sorted(STORAGE)}, got '{storage}'")
        self.path = Path(path)
        self.storage = storage
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=STORAGE[storage])
        self._writer.open()
        self._connections: dict[str, object] = {}
        self.bytes_written = 0
        self.message_count = 0
        self.start_ns: Optional[int] = None
        self.end_ns: Optional[int] = None
        self.closed = False

    def _connection(self, topic: str, msgtype: str, msgdef: Optional[str], type_hash: Optional[str],
                    qos: Sequence = ()):
        conn = self._connections.get(topic)
        if conn is None:
            if msgdef is None and msgtype not in ros_messages.typestore().types:
                raise ValueError(f"bag {self.path}: topic {topic}: message type '{msgtype}' is unknown to the "
                                 f"{ros_messages.ros2_store_name()} typestore; pass msgdef and type_hash")
            conn = self._writer.add_connection(topic, msgtype, typestore=ros_messages.typestore(),
                                               msgdef=msgdef, rihs01=type_hash, offered_qos_profiles=qos)
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise ValueError(f"bag {self.path}: topic {topic} already carries {conn.msgtype}, got {msgtype}")
        return conn

    def write_raw(self, topic: str, msgtype: str, timestamp_ns: int, cdr: bytes, *,
                  msgdef: Optional[str] = None, type_hash: Optional[str] = None, qos: Sequence = ()) -> None:
        """Write one CDR-serialised message; `timestamp_ns` is the log (receive) time."""
        if self.closed:
            raise ValueError(f"bag {self.path} is closed")
        conn = self._connection(topic, msgtype, msgdef, type_hash, qos)
        self._writer.write(conn, int(timestamp_ns), cdr)
        self.bytes_written += len(cdr)
        self.message_count += 1
        self.start_ns = timestamp_ns if self.start_ns is None else min(self.start_ns, timestamp_ns)
        self.end_ns = timestamp_ns if self.end_ns is None else max(self.end_ns, timestamp_ns)

    def write(self, topic: str, msg, timestamp_ns: int) -> None:
        """Write one typestore message object (see `ros_messages`)."""
        self.write_raw(topic, msg.__msgtype__, timestamp_ns, ros_messages.serialize(msg))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._writer.close()
        fsync_tree(self.path)

    def abort(self) -> None:
        """Stop without metadata (what a crash leaves behind); for tests and emergencies."""
        self.closed = True
        self._writer.abort()

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SegmentedBagWriter:
    """Rolling rosbag2 segments `<root>/<prefix>_<NNNN>/`, each a complete bag once closed.

    A segment is closed and a new one opened when it spans `max_segment_s` of log time or
    holds `max_segment_bytes`. With `split_topic` set (e.g. the episode topic) the roll
    waits for the next message on that topic, so episodes are not cut in two, unless the
    segment grows past twice its limits.

    `max_total_bytes` caps the disk use of all segments under `root` with our prefix.
    When a roll would exceed it, `on_full` decides (default "stop"):
      "stop"           close the open segment and drop everything after, with one warning:
                       recorded data is never deleted behind the user's back;
      "delete_oldest"  delete the oldest closed segments until there is room, warning per
                       deleted segment (for robots that must keep logging unattended).
    `on_segment_closed(path)` is called after each segment is closed and fsynced.
    """

    def __init__(self, root: Path, prefix: str = "segment", storage: str = "mcap",
                 max_segment_s: float = 300.0, max_segment_bytes: int = 512 * 2**20,
                 max_total_bytes: Optional[int] = None, on_full: str = "stop",
                 split_topic: Optional[str] = None,
                 on_segment_closed: Optional[Callable[[Path], None]] = None):
        if on_full not in ON_FULL:
            raise ValueError(f"on_full must be 'stop' or 'delete_oldest', got '{on_full}'")
        if max_segment_s <= 0 or max_segment_bytes <= 0:
            raise ValueError("max_segment_s and max_segment_bytes must be > 0")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.storage = storage
        self.max_segment_ns = int(max_segment_s * 1e9)
        self.max_segment_bytes = int(max_segment_bytes)
        self.max_total_bytes = max_total_bytes
        self.on_full = on_full
        self.split_topic = split_topic
        self.on_segment_closed = on_segment_closed
        self.closed_segments: list[Path] = []
        self.stopped = False
        self.dropped_messages = 0
        self._bag: Optional[BagWriter] = None
        self._lock_fd: Optional[int] = None
        self._next_index = self._first_free_index()
        # Bytes of the closed segments on disk, kept up to date so the cap check stays cheap.
        self._closed_bytes = sum(_dir_size(p) for p in self._segments_on_disk())

    # --- segments ---
    def _segments_on_disk(self) -> list[Path]:
        return sorted(p for p in self.root.glob(f"{self.prefix}_*") if p.is_dir() and p.name[len(self.prefix) + 1:].isdigit())

    def _first_free_index(self) -> int:
        # Continue numbering after a restart instead of refusing to overwrite.
        existing = [int(p.name[len(self.prefix) + 1:]) for p in self._segments_on_disk()]
        return max(existing, default=-1) + 1

    @property
    def current_path(self) -> Optional[Path]:
        return self._bag.path if self._bag else None

    def _open_segment(self) -> None:
        path = self.root / f"{self.prefix}_{self._next_index:04d}"
        self._next_index += 1
        self._bag = BagWriter(path, self.storage)
        self._lock_fd = os.open(path / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def _close_segment(self) -> None:
        bag, self._bag = self._bag, None
        if bag is None:
            return
        bag.close()
        if self._lock_fd is not None:
            os.unlink(bag.path / LOCK_NAME)
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        fsync_tree(bag.path)
        self._closed_bytes += _dir_size(bag.path)
        self.closed_segments.append(bag.path)
        log.info("closed bag segment %s (%d messages)", bag.path, bag.message_count)
        if self.on_segment_closed:
            self.on_segment_closed(bag.path)

    def roll(self) -> None:
        """Close the open segment now; the next message opens a new one."""
        self._close_segment()

    def _segment_full(self, timestamp_ns: int, hard: bool) -> bool:
        bag = self._bag
        if bag is None or bag.start_ns is None:
            return False
        factor = 2 if hard else 1
        return (timestamp_ns - bag.start_ns >= factor * self.max_segment_ns
                or bag.bytes_written >= factor * self.max_segment_bytes)

    # --- disk cap ---
    def disk_usage(self) -> int:
        """Bytes used by our segments: the closed ones on disk plus what the open one holds."""
        return self._closed_bytes + (self._bag.bytes_written if self._bag else 0)

    def _make_room(self, incoming: int) -> bool:
        """Return True if `incoming` more bytes fit under max_total_bytes (after deleting, if allowed)."""
        if self.max_total_bytes is None:
            return True
        while self.disk_usage() + incoming > self.max_total_bytes:
            if self.on_full == "delete_oldest":
                open_path = self._bag.path if self._bag else None
                oldest = [p for p in self._segments_on_disk() if p != open_path]
                if oldest:
                    log.warning("bag segments in %s exceed the disk cap of %d bytes: deleting the oldest "
                                "segment %s", self.root, self.max_total_bytes, oldest[0])
                    self._closed_bytes -= _dir_size(oldest[0])
                    shutil.rmtree(oldest[0])
                    if oldest[0] in self.closed_segments:
                        self.closed_segments.remove(oldest[0])
                    continue
            log.warning("bag segments in %s reached the disk cap of %d bytes: recording STOPPED, later "
                        "messages are dropped (free space or raise the cap and restart the logger)",
                        self.root, self.max_total_bytes)
            self.stopped = True
            self._close_segment()
            return False
        return True

    # --- writing ---
    def write_raw(self, topic: str, msgtype: str, timestamp_ns: int, cdr: bytes, **kwargs) -> bool:
        """Write one CDR message; returns False if it was dropped because recording stopped."""
        if self.stopped:
            self.dropped_messages += 1
            return False
        if self._bag is not None:
            at_split = self.split_topic is None or topic == self.split_topic
            if self._segment_full(timestamp_ns, hard=not at_split):
                self._close_segment()
        if self._bag is None:
            if not self._make_room(len(cdr)):
                self.dropped_messages += 1
                return False
            self._open_segment()
        elif self.max_total_bytes is not None and not self._make_room(len(cdr)):
            self.dropped_messages += 1
            return False
        self._bag.write_raw(topic, msgtype, timestamp_ns, cdr, **kwargs)
        return True

    def write(self, topic: str, msg, timestamp_ns: int) -> bool:
        return self.write_raw(topic, msg.__msgtype__, timestamp_ns, ros_messages.serialize(msg))

    def close(self) -> None:
        self._close_segment()

    def __enter__(self) -> "SegmentedBagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
