"""ROS 2 recordings to training data: a rosbag2 (MCAP or sqlite3) becomes an episode dataset.

Frames come from an image topic (sensor_msgs/msg/Image: rgb8, bgr8, rgba8, bgra8, mono8; or
sensor_msgs/msg/CompressedImage), actions from a command topic (geometry_msgs/msg/TwistStamped
or Twist: the chosen `twist_fields`; std_msgs/msg/Float32MultiArray or Float64MultiArray: all
of `data`). actions[t] is the command that moved the robot from frame t to frame t+1, found by
`action_alignment`:

    hold     the last command at or before frame t: a controller that runs on its own clock
             (a joystick, a planner on a timer), whose command is in effect when a frame is taken
    answer   the last command before frame t+1: a controller that answers each image (the brain,
             `ami_sim.ros.teleop_node`), whose answer to frame t comes after it; "hold" would
             give it the previous frame's answer, one frame late

Frames before the first command are dropped; a command older than `command_timeout_s` (at the
time it is looked up) counts as zero (the robot's base stops); a gap between frames longer than
`max_frame_gap_s` starts a new episode.

A real robot records no true low-dimensional state, so episodes from bags have states of width
0 (shape (T+1, 0)); training skips the state probe for them.
Times are message header stamps when the message has a header, else the bag's receive times.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ami_robot.data.episodes import Episode, episode_name, write_episode, write_index
from ami_robot.perception import resize_uint8

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
TWIST_TYPES = ("geometry_msgs/msg/TwistStamped", "geometry_msgs/msg/Twist")
ARRAY_TYPES = ("std_msgs/msg/Float32MultiArray", "std_msgs/msg/Float64MultiArray")


ActionAlignment = Literal["hold", "answer"]
ACTION_ALIGNMENTS: tuple[ActionAlignment, ...] = ("hold", "answer")


class BagImportError(ValueError):
    """A bag lacks a requested topic, has an unsupported message type or encoding, or has no usable frames."""


@dataclass(frozen=True)
class BagImportConfig:
    image_topic: str
    action_topic: str
    twist_fields: tuple[str, ...] = ("linear.x", "angular.z")
    image_size: int = 64
    center_crop: bool = True
    command_timeout_s: float = 0.5
    max_frame_gap_s: float = 1.0
    min_episode_frames: int = 2
    action_alignment: ActionAlignment = "hold"

    def __post_init__(self) -> None:
        if self.action_alignment not in ACTION_ALIGNMENTS:
            raise BagImportError(
                f"action_alignment must be one of {', '.join(ACTION_ALIGNMENTS)}, got {self.action_alignment!r}"
            )


def _stamp_ns(message: Any, receive_ns: int) -> int:
    header = getattr(message, "header", None)
    if header is None:
        return receive_ns
    stamp = header.stamp
    ns = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
    return ns if ns > 0 else receive_ns


def decode_image(message: Any, msgtype: str) -> np.ndarray:
    """An Image or CompressedImage message -> uint8 RGB (H, W, 3)."""
    import cv2

    if msgtype == "sensor_msgs/msg/CompressedImage":
        bgr = cv2.imdecode(np.asarray(message.data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BagImportError(f"cannot decode CompressedImage of format {message.format!r}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
    encoding = message.encoding.lower()
    if encoding not in channels:
        raise BagImportError(f"unsupported image encoding {message.encoding!r}; supported: {sorted(channels)}")
    c = channels[encoding]
    rows = np.asarray(message.data, np.uint8).reshape(message.height, message.step)
    pixels = rows[:, : message.width * c].reshape(message.height, message.width, c)
    if encoding == "mono8":
        return np.repeat(pixels, 3, axis=2)
    if encoding.startswith("bgr"):
        return np.ascontiguousarray(pixels[..., 2::-1])
    return np.ascontiguousarray(pixels[..., :3])


def _center_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top : top + side, left : left + side]


def decode_action(message: Any, msgtype: str, twist_fields: tuple[str, ...]) -> np.ndarray:
    """A command message -> float32 action vector."""
    if msgtype in TWIST_TYPES:
        twist = message.twist if msgtype.endswith("Stamped") else message
        values = []
        for name in twist_fields:
            part, _, axis = name.partition(".")
            if part not in ("linear", "angular") or axis not in ("x", "y", "z"):
                raise BagImportError(f"twist field {name!r} is not one of linear.x/y/z, angular.x/y/z")
            values.append(getattr(getattr(twist, part), axis))
        return np.asarray(values, np.float32)
    return np.asarray(message.data, np.float32).ravel()


def read_bag(bag: str | Path, config: BagImportConfig) -> list[Episode]:
    """Episodes (frames resized to image_size, zero-order-hold actions, empty states) from a rosbag2."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    bag = Path(bag)
    if not bag.exists():
        raise FileNotFoundError(f"bag {bag} does not exist")
    frames: list[tuple[int, np.ndarray]] = []
    commands: list[tuple[int, np.ndarray]] = []
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        for topic, allowed in ((config.image_topic, IMAGE_TYPES), (config.action_topic, TWIST_TYPES + ARRAY_TYPES)):
            if topic not in by_topic:
                raise BagImportError(f"{bag}: no topic {topic!r}; topics are {sorted(by_topic)}")
            if by_topic[topic].msgtype not in allowed:
                raise BagImportError(
                    f"{bag}: topic {topic!r} has type {by_topic[topic].msgtype}, expected one of {allowed}"
                )
        wanted = [c for c in reader.connections if c.topic in (config.image_topic, config.action_topic)]
        for connection, receive_ns, raw in reader.messages(connections=wanted):
            message = reader.deserialize(raw, connection.msgtype)
            stamp = _stamp_ns(message, receive_ns)
            if connection.topic == config.image_topic:
                image = decode_image(message, connection.msgtype)
                image = _center_square(image) if config.center_crop else image
                frames.append((stamp, resize_uint8(image[None], config.image_size)[0]))
            else:
                commands.append((stamp, decode_action(message, connection.msgtype, config.twist_fields)))
    if not commands:
        raise BagImportError(f"{bag}: no messages on {config.action_topic!r}")
    if not frames:
        raise BagImportError(f"{bag}: no messages on {config.image_topic!r}")
    return _episodes_from_streams(frames, commands, config)


def _episodes_from_streams(
    frames: list[tuple[int, np.ndarray]], commands: list[tuple[int, np.ndarray]], config: BagImportConfig
) -> list[Episode]:
    frames.sort(key=lambda item: item[0])
    commands.sort(key=lambda item: item[0])
    frame_ns = np.array([t for t, _ in frames], np.int64)
    command_ns = np.array([t for t, _ in commands], np.int64)
    action_dims = {len(a) for _, a in commands}
    if len(action_dims) != 1:
        raise BagImportError(f"commands on {config.action_topic!r} have varying lengths {sorted(action_dims)}")
    command_values = np.stack([a for _, a in commands])
    lookup_ns = frame_ns.copy()  # when frame t's action is looked up: "hold", at frame t
    if config.action_alignment == "answer":  # just before frame t+1 (the last frame's action is never used)
        lookup_ns[:-1] = frame_ns[1:] - 1
    latest = np.searchsorted(command_ns, lookup_ns, side="right") - 1
    actions = command_values[np.clip(latest, 0, None)].copy()
    age_s = (lookup_ns - command_ns[np.clip(latest, 0, None)]) / 1e9
    actions[age_s > config.command_timeout_s] = 0.0
    usable = latest >= 0
    new_episode = np.r_[True, np.diff(frame_ns) / 1e9 > config.max_frame_gap_s]
    episodes, start = [], None
    for i in range(len(frames) + 1):
        boundary = i == len(frames) or not usable[i] or new_episode[i]
        if boundary and start is not None:
            if i - start >= config.min_episode_frames:
                observations = np.stack([frames[j][1] for j in range(start, i)])
                episodes.append(
                    Episode(
                        observations=observations,
                        actions=actions[start : i - 1],
                        states=np.zeros((i - start, 0), np.float32),
                        attrs={"env": "rosbag", "policy": "recorded", "start_time_ns": int(frame_ns[start])},
                    )
                )
            start = None
        if i < len(frames) and usable[i] and start is None:
            start = i
    if not episodes:
        raise BagImportError(f"no episode of at least {config.min_episode_frames} frames with commands")
    return episodes


def import_bag(bag: str | Path, out_dir: str | Path, config: BagImportConfig) -> list[Path]:
    """Convert a rosbag2 into an episode dataset directory; returns the episode files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.glob("episode_*.h5")):
        raise FileExistsError(f"{out_dir} already holds episodes; import a bag into an empty directory")
    paths = [write_episode(out_dir / episode_name(i), e) for i, e in enumerate(read_bag(bag, config))]
    write_index(
        out_dir, env="rosbag", source=str(bag), image_topic=config.image_topic, action_topic=config.action_topic
    )
    return paths


def topic_message_counts(bag: str | Path) -> dict[str, int]:
    """Messages per topic in a finished bag (from its metadata)."""
    from rosbags.rosbag2 import Reader

    with Reader(Path(bag)) as reader:
        return {connection.topic: connection.msgcount for connection in reader.connections}
