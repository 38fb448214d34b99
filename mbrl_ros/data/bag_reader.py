"""Read the raw messages of a rosbag2 recording, keeping whatever is readable.

A recorder that crashed leaves a bag directory without `metadata.yaml` and with a
storage file cut in the middle. `read_messages` still reads such bags: it falls back
from the rosbag2 directory reader to the storage files themselves, and for an MCAP
file whose end is missing it scans records from the start up to the cut. Every
fallback is reported through `warn` with the bag, topic and time, never silently.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from rosbags.rosbag2 import Reader

STORAGE_SUFFIXES = (".mcap", ".db3")
MCAP_MAGIC = b"\x89MCAP0\r\n"


@dataclass(frozen=True)
class RawMessage:
    topic: str
    msgtype: str
    log_ns: int  # the recorder's receive time
    data: bytes  # CDR


def fmt_time(t_ns: Optional[int]) -> str:
    return "t=?" if t_ns is None else f"t={t_ns / 1e9:.3f}s"


def is_bag(path: Path) -> bool:
    """A rosbag2 directory (with or without metadata.yaml) or a bare storage file."""
    path = Path(path)
    if path.is_file():
        return path.suffix in STORAGE_SUFFIXES
    return path.is_dir() and ((path / "metadata.yaml").exists() or bool(storage_files(path)))


def storage_files(bag_dir: Path) -> list[Path]:
    return sorted(p for p in Path(bag_dir).iterdir() if p.is_file() and p.suffix in STORAGE_SUFFIXES)


def find_bags(paths: Iterable[Path]) -> list[Path]:
    """Expand each path: a bag stays a bag; a folder is searched (recursively) for bags, in name order."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"bag path {path} does not exist")
        if is_bag(path):
            found.append(path)
        elif path.is_dir():
            found.extend(find_bags(sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))))
    return found


def read_messages(bag: Path, topics: set[str], warn: Callable[[str], None]) -> list[RawMessage]:
    """All readable messages on `topics`, sorted by log time (see `iter_messages`)."""
    return sorted(iter_messages(bag, topics, warn), key=lambda m: m.log_ns)


def iter_messages(bag: Path, topics: set[str], warn: Callable[[str], None]) -> Iterator[RawMessage]:
    """Yield the readable messages on `topics` one by one (memory stays flat for big bags).

    Never raises for a damaged bag: what cannot be read is reported via `warn`. Order is
    the storage's (time order for intact bags); consumers sort by the time they use.
    """
    bag = Path(bag)
    resume_after: Optional[int] = None  # log time of the last message yielded by the directory reader
    seen_at_resume: set[tuple[str, bytes]] = set()
    if bag.is_dir() and (bag / "metadata.yaml").exists():
        count = 0
        try:
            with Reader(bag) as reader:
                for m in _messages_of(reader, topics):
                    if m.log_ns != resume_after:
                        seen_at_resume.clear()
                    resume_after = m.log_ns
                    seen_at_resume.add((m.topic, m.data))
                    count += 1
                    yield m
            return
        except Exception as exc:  # rosbags raises ReaderError, KeyError, struct errors ...
            warn(f"bag {bag}: the rosbag2 reader failed ({exc}); reading the storage files directly"
                 + (f" from {fmt_time(resume_after)} on (after {count} messages)" if count else ""))
    elif bag.is_dir():
        warn(f"bag {bag}: no metadata.yaml (the recorder did not close the bag, e.g. it crashed); "
             "reading the storage files directly")
    files = [bag] if bag.is_file() else storage_files(bag)
    if not files:
        warn(f"bag {bag}: no storage file (*.mcap, *.db3) found")
    for path in files:
        for m in _read_storage_file(bag, path, topics, warn):
            # after a failure mid-way, skip what the directory reader already delivered
            if resume_after is not None and (m.log_ns < resume_after or (
                    m.log_ns == resume_after and (m.topic, m.data) in seen_at_resume)):
                continue
            yield m


def _messages_of(reader, topics: set[str]) -> Iterator[RawMessage]:
    connections = [c for c in reader.connections if c.topic in topics]
    if not connections:
        return
    for conn, t_ns, data in reader.messages(connections=connections):
        yield RawMessage(conn.topic, conn.msgtype, int(t_ns), bytes(data))


def _read_storage_file(bag: Path, path: Path, topics: set[str], warn: Callable[[str], None]) -> Iterator[RawMessage]:
    count, last = 0, None
    try:
        with Reader(path) as reader:
            for m in _messages_of(reader, topics):
                count, last = count + 1, m
                yield m
        return
    except Exception as exc:
        if path.suffix != ".mcap":
            warn(f"bag {bag}: storage file {path.name} is damaged ({exc}); kept {count} messages"
                 + (f" up to {fmt_time(last.log_ns)} on {last.topic}" if last else ""))
            return
    # rosbags cannot read the MCAP (typically: its end is missing): scan it record by record,
    # skipping what the reader delivered before failing (it reads in time order)
    problem: list[str] = []
    delivered_up_to = last.log_ns if last else None
    for m in scan_mcap(path, topics, problem):
        if delivered_up_to is not None and m.log_ns <= delivered_up_to:
            continue
        count, last = count + 1, m
        yield m
    if problem:
        up_to = f" up to {fmt_time(last.log_ns)} on {last.topic}" if last else ""
        warn(f"bag {bag}: MCAP file {path.name} is truncated or damaged ({'; '.join(problem)}); "
             f"kept the {count} readable messages{up_to}")


# --- tolerant MCAP scanner ---------------------------------------------------------------

def _decompress(data: bytes, compression: str, size: int) -> bytes:
    if compression == "":
        return data
    if compression == "zstd":
        try:
            from compression import zstd  # Python >= 3.14
        except ImportError:
            from backports import zstd  # installed with rosbags
        return zstd.decompress(data)
    if compression == "lz4":
        import lz4.frame  # installed with rosbags

        return lz4.frame.decompress(data)
    raise ValueError(f"unsupported chunk compression '{compression}'")


class _Truncated(Exception):
    pass


def _take(buf: memoryview, pos: int, n: int) -> tuple[memoryview, int]:
    if pos + n > len(buf):
        raise _Truncated(f"record at byte {pos} needs {n} bytes, only {len(buf) - pos} left")
    return buf[pos:pos + n], pos + n


def _string(rec: memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", rec, pos)
    return bytes(rec[pos + 4:pos + 4 + n]).decode(), pos + 4 + n


def scan_mcap(path: Path, topics: set[str], problem: Optional[list] = None) -> Iterator[RawMessage]:
    """Yield messages record by record from the start of an MCAP file, up to the first damage.

    Does not need the summary section, so it reads files whose end was never written.
    A description of the damage, if any, is appended to `problem`.
    """
    problem = [] if problem is None else problem
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            problem.append("empty file")
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield from _scan(memoryview(mapped), topics, problem)


def _scan(buf: memoryview, topics: set[str], problem: list) -> Iterator[RawMessage]:
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}  # id -> (topic, msgtype)
    out: list[RawMessage] = []
    if bytes(buf[:8]) != MCAP_MAGIC:
        problem.append("not an MCAP file (bad magic)")
        return

    def records(data: memoryview, pos: int, top_level: bool):
        while pos < len(data):
            header, pos = _take(data, pos, 9)
            op, length = header[0], struct.unpack_from("<Q", header, 1)[0]
            if top_level and op == 0x02:  # footer: the file is complete
                return
            body, pos = _take(data, pos, length)
            yield op, body

    # Messages whose channel record was lost in a damaged chunk wait here: an intact summary
    # section at the end of the file repeats every channel record.
    pending: dict[int, list[tuple[int, bytes]]] = {}

    def handle(op: int, rec: memoryview):
        if op == 0x03:  # schema
            (sid,) = struct.unpack_from("<H", rec, 0)
            name, _ = _string(rec, 2)
            schemas[sid] = name
        elif op == 0x04:  # channel
            cid, sid = struct.unpack_from("<HH", rec, 0)
            topic, _ = _string(rec, 4)
            channels[cid] = (topic, schemas.get(sid, ""))
            for log_time, data in pending.pop(cid, []):
                if topic in topics:
                    out.append(RawMessage(topic, channels[cid][1], log_time, data))
        elif op == 0x05:  # message
            cid, _seq, log_time, _pub = struct.unpack_from("<HIQQ", rec, 0)
            if cid not in channels:
                pending.setdefault(cid, []).append((int(log_time), bytes(rec[22:])))
                return
            topic, msgtype = channels[cid]
            if topic in topics:
                out.append(RawMessage(topic, msgtype, int(log_time), bytes(rec[22:])))

    try:
        for op, rec in records(buf, 8, top_level=True):
            if op == 0x06:  # chunk: start, end, uncompressed size, crc, compression, records
                try:
                    _start, _end, size, _crc = struct.unpack_from("<QQQI", rec, 0)
                    compression, pos = _string(rec, 28)
                    (csize,) = struct.unpack_from("<Q", rec, pos)
                    inner = memoryview(_decompress(bytes(rec[pos + 8:pos + 8 + csize]), compression, size))
                    for inner_op, inner_rec in records(inner, 0, top_level=False):
                        handle(inner_op, inner_rec)
                except Exception as exc:  # a damaged chunk: its length is intact, go on with the next
                    problem.append(f"damaged chunk ({type(exc).__name__}: {exc}), its messages after "
                                   f"{fmt_time(out[-1].log_ns) if out else 'its start'} skipped")
            else:
                handle(op, rec)
            yield from out
            out.clear()
    except (_Truncated, struct.error, ValueError, UnicodeDecodeError) as exc:
        problem.append(str(exc))
    yield from out
    lost = sum(len(v) for v in pending.values())
    if lost:
        problem.append(f"{lost} messages skipped: their channel definition was in the damaged part")
