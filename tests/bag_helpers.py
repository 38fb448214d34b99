"""Writing rosbag2 test fixtures with rosbags' own Writer (independent of mbrl_ros's BagWriter)."""
from __future__ import annotations

from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer

from mbrl_ros.data import ros_messages as rm


def write_bag_with_rosbags(path: Path, messages, storage: str = "mcap") -> Path:
    """messages: (topic, typestore message, log time ns) in any order; storage: mcap | sqlite3."""
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    ts = rm.typestore()
    writer = Writer(path, version=9, storage_plugin=plugin)
    writer.open()
    conns = {}
    for topic, msg, t in sorted(messages, key=lambda m: m[2]):
        if topic not in conns:
            conns[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=ts)
        writer.write(conns[topic], t, ts.serialize_cdr(msg, msg.__msgtype__))
    writer.close()
    return path
