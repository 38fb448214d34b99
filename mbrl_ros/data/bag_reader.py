"""Read the raw messages of a rosbag2 recording, keeping whatever is readable.

A recorder that crashed leaves a bag directory without `metadata.yaml` and with a
storage file cut in the middle. `read_messages` still reads such bags: it falls back
from the rosbag2 directory reader to the storage files themselves, and for an MCAP
file whose end is missing it scans records from the start up to the cut. Every
fallback is reported through `warn` with the bag, topic and time, never silently.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

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
    """All readable messages on `topics`, sorted by log time.

    Never raises for a damaged bag: what cannot be read is reported via `warn`.
    """
    bag = Path(bag)
    messages: list[RawMessage] = []
    if bag.is_dir() and (bag / "metadata.yaml").exists():
        try:
            with Reader(bag) as reader:
                _read_with(reader, bag, topics, messages)
            return _sorted(messages)
        except Exception as exc:  # rosbags raises ReaderError, KeyError, struct errors ...
            warn(f"bag {bag}: the rosbag2 reader failed ({exc}); reading the storage files directly"
                 + (f" (after {len(messages)} messages, last at {fmt_time(messages[-1].log_ns)})" if messages else ""))
            messages = []
    elif bag.is_dir():
        warn(f"bag {bag}: no metadata.yaml (the recorder did not close the bag, e.g. it crashed); "
             "reading the storage files directly")
    files = [bag] if bag.is_file() else storage_files(bag)
    if not files:
        warn(f"bag {bag}: no storage file (*.mcap, *.db3) found")
    for path in files:
        _read_storage_file(bag, path, topics, messages, warn)
    return _sorted(messages)


def _sorted(messages: list[RawMessage]) -> list[RawMessage]:
    return sorted(messages, key=lambda m: m.log_ns)


def _read_with(reader, bag: Path, topics: set[str], out: list[RawMessage]) -> None:
    connections = [c for c in reader.connections if c.topic in topics]
    if not connections:
        return
    for conn, t_ns, data in reader.messages(connections=connections):
        out.append(RawMessage(conn.topic, conn.msgtype, int(t_ns), bytes(data)))


def _read_storage_file(bag: Path, path: Path, topics: set[str], out: list[RawMessage],
                       warn: Callable[[str], None]) -> None:
    kept = len(out)
    try:
        with Reader(path) as reader:
            _read_with(reader, bag, topics, out)
        return
    except Exception as exc:
        if path.suffix != ".mcap":
            got = out[kept:]
            warn(f"bag {bag}: storage file {path.name} is damaged ({exc}); kept {len(got)} messages"
                 + (f" up to {fmt_time(got[-1].log_ns)} on {got[-1].topic}" if got else ""))
            return
        del out[kept:]  # re-read everything from the start with the tolerant scanner
    salvaged, problem = scan_mcap(path, topics)
    out.extend(salvaged)
    if problem:
        last = f" up to {fmt_time(salvaged[-1].log_ns)} on {salvaged[-1].topic}" if salvaged else ""
        warn(f"bag {bag}: MCAP file {path.name} is truncated or damaged ({problem}); "
             f"kept the {len(salvaged)} readable messages{last}")


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


def scan_mcap(path: Path, topics: set[str]) -> tuple[list[RawMessage], str]:
    """Read messages record by record from the start of an MCAP file, up to the first damage.

    Returns (messages, problem) where `problem` is "" if the file was read to its footer.
    Does not need the summary section, so it reads files whose end was never written.
    """
    buf = memoryview(Path(path).read_bytes())
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}  # id -> (topic, msgtype)
    out: list[RawMessage] = []
    if bytes(buf[:8]) != MCAP_MAGIC:
        return out, "not an MCAP file (bad magic)"

    def records(data: memoryview, pos: int, top_level: bool):
        while pos < len(data):
            header, pos = _take(data, pos, 9)
            op, length = header[0], struct.unpack_from("<Q", header, 1)[0]
            if top_level and op == 0x02:  # footer: the file is complete
                return
            body, pos = _take(data, pos, length)
            yield op, body

    def handle(op: int, rec: memoryview):
        if op == 0x03:  # schema
            (sid,) = struct.unpack_from("<H", rec, 0)
            name, _ = _string(rec, 2)
            schemas[sid] = name
        elif op == 0x04:  # channel
            cid, sid = struct.unpack_from("<HH", rec, 0)
            topic, _ = _string(rec, 4)
            channels[cid] = (topic, schemas.get(sid, ""))
        elif op == 0x05:  # message
            cid, _seq, log_time, _pub = struct.unpack_from("<HIQQ", rec, 0)
            topic, msgtype = channels.get(cid, ("", ""))
            if topic in topics:
                out.append(RawMessage(topic, msgtype, int(log_time), bytes(rec[22:])))

    try:
        for op, rec in records(buf, 8, top_level=True):
            if op == 0x06:  # chunk: start, end, uncompressed size, crc, compression, records
                _start, _end, size, _crc = struct.unpack_from("<QQQI", rec, 0)
                compression, pos = _string(rec, 28)
                (csize,) = struct.unpack_from("<Q", rec, pos)
                inner = memoryview(_decompress(bytes(rec[pos + 8:pos + 8 + csize]), compression, size))
                for inner_op, inner_rec in records(inner, 0, top_level=False):
                    handle(inner_op, inner_rec)
            else:
                handle(op, rec)
    except (_Truncated, struct.error, ValueError, UnicodeDecodeError) as exc:
        return out, str(exc)
    except Exception as exc:  # a decompressor failing on a cut chunk
        return out, f"{type(exc).__name__}: {exc}"
    return out, ""
