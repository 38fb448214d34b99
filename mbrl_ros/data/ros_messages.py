"""ROS 2 messages without ROS: build, serialise and decode the messages of our topic layout.

Uses a `rosbags` typestore (the newest ROS 2 distribution rosbags knows; the message
definitions we use are identical across Jazzy, Kilted and later), so the data layer
never needs rclpy.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from rosbags.typesys import Stores, get_typestore

IMAGE = "sensor_msgs/msg/Image"
JOINT_STATE = "sensor_msgs/msg/JointState"
COMMANDS = "std_msgs/msg/Float64MultiArray"
FLOAT64 = "std_msgs/msg/Float64"
INT64 = "std_msgs/msg/Int64"
BOOL = "std_msgs/msg/Bool"

IMAGE_ENCODINGS = ("rgb8", "bgr8", "mono8")


@lru_cache(maxsize=1)
def typestore():
    """The typestore of the newest ROS 2 distribution this rosbags version ships."""
    ros2 = [s for s in Stores if s.name.startswith("ROS2_")]
    return get_typestore(ros2[-1])


def ros2_store_name() -> str:
    return [s for s in Stores if s.name.startswith("ROS2_")][-1].value


def serialize(msg) -> bytes:
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


def deserialize(data: bytes, msgtype: str):
    return typestore().deserialize_cdr(data, msgtype)


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _header(t_ns: int, frame_id: str = ""):
    ts = typestore()
    Time = ts.types["builtin_interfaces/msg/Time"]
    Header = ts.types["std_msgs/msg/Header"]
    return Header(stamp=Time(sec=int(t_ns // 1_000_000_000), nanosec=int(t_ns % 1_000_000_000)),
                  frame_id=frame_id)


def make_image(image: np.ndarray, t_ns: int, encoding: str = "rgb8", frame_id: str = "camera"):
    """An Image message from uint8[H,W,3] RGB (rgb8/bgr8) or uint8[H,W] (mono8)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if encoding == "bgr8":
        image = np.ascontiguousarray(image[..., ::-1])
    channels = 1 if image.ndim == 2 else image.shape[2]
    Image = typestore().types[IMAGE]
    return Image(header=_header(t_ns, frame_id), height=image.shape[0], width=image.shape[1],
                 encoding=encoding, is_bigendian=0, step=image.shape[1] * channels,
                 data=image.reshape(-1))


def make_joint_state(names, position, velocity, t_ns: int):
    JointState = typestore().types[JOINT_STATE]
    return JointState(header=_header(t_ns), name=list(names),
                      position=np.asarray(position, np.float64),
                      velocity=np.asarray(velocity, np.float64),
                      effort=np.zeros(0, np.float64))


def make_commands(values):
    ts = typestore()
    Layout = ts.types["std_msgs/msg/MultiArrayLayout"]
    return ts.types[COMMANDS](layout=Layout(dim=[], data_offset=0),
                              data=np.asarray(values, np.float64))


def make_float64(value: float):
    return typestore().types[FLOAT64](data=float(value))


def make_int64(value: int):
    return typestore().types[INT64](data=int(value))


def make_bool(value: bool):
    return typestore().types[BOOL](data=bool(value))


def decode_image(msg, size: tuple[int, int] | None) -> np.ndarray:
    """Image message -> uint8[H,W,3] RGB, resized to `size` (H, W) if it differs.

    Raises ValueError for encodings other than rgb8/bgr8/mono8 or a short data buffer.
    Rows may be padded (`step` > width * channels); the padding is dropped.
    """
    encoding = msg.encoding.lower()
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"unsupported image encoding '{msg.encoding}' (supported: {', '.join(IMAGE_ENCODINGS)})")
    channels = 1 if encoding == "mono8" else 3
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, np.uint8)
    if step < w * channels or data.size < h * step:
        raise ValueError(f"image data too short: {data.size} bytes for {h}x{w} {encoding} with step {step}")
    rows = data[: h * step].reshape(h, step)[:, : w * channels]
    image = rows.reshape(h, w, channels)
    if encoding == "bgr8":
        image = image[..., ::-1]
    elif encoding == "mono8":
        image = np.repeat(image, 3, axis=2)
    if size is not None and (h, w) != tuple(size):
        image = resize_image(image, size)
    return np.ascontiguousarray(image)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8[H,W,3] to (h, w): area averaging when shrinking (no aliasing), bilinear when growing."""
    from PIL import Image as PILImage

    h, w = size
    shrinking = h < image.shape[0] or w < image.shape[1]
    method = PILImage.Resampling.BOX if shrinking else PILImage.Resampling.BILINEAR
    return np.asarray(PILImage.fromarray(image).resize((w, h), method), np.uint8)
