"""ROS 2 bag import: a bag written with rosbags' writer reads back into matching episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags")

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ami_robot.data.bags import BagImportConfig, BagImportError, import_bag, read_bag
from ami_robot.data.episodes import read_episode, read_index

STORE = get_typestore(Stores.ROS2_KILTED)
FRAME_NS = 100_000_000  # 10 Hz camera
START_NS = 1_700_000_000_000_000_000


def _header(ns: int):
    Header, Time = STORE.types["std_msgs/msg/Header"], STORE.types["builtin_interfaces/msg/Time"]
    return Header(stamp=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), frame_id="camera")


def _frame(i: int, size: int = 16) -> np.ndarray:
    """A distinct RGB test pattern per frame index."""
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[..., 0] = (i * 20) % 256
    rgb[..., 1] = np.arange(size, dtype=np.uint8)[None, :] * 8
    rgb[..., 2] = np.arange(size, dtype=np.uint8)[:, None] * 8
    return rgb


def _write_bag(path: Path, storage: StoragePlugin, n_frames: int, encoding: str = "bgr8") -> np.ndarray:
    """Frames at 10 Hz and a TwistStamped command 20 ms before each frame; returns the commands (n, 2)."""
    Image, TwistStamped = STORE.types["sensor_msgs/msg/Image"], STORE.types["geometry_msgs/msg/TwistStamped"]
    Twist, Vector3 = STORE.types["geometry_msgs/msg/Twist"], STORE.types["geometry_msgs/msg/Vector3"]
    commands = np.stack([np.array([0.1 * i, -0.05 * i], np.float32) for i in range(n_frames)])
    with Writer(path, version=9, storage_plugin=storage) as writer:
        image_conn = writer.add_connection("/camera/image_raw", Image.__msgtype__, typestore=STORE)
        cmd_conn = writer.add_connection("/cmd_vel", TwistStamped.__msgtype__, typestore=STORE)
        for i in range(n_frames):
            t_cmd = START_NS + i * FRAME_NS - 20_000_000
            twist = Twist(
                linear=Vector3(x=float(commands[i, 0]), y=0.0, z=0.0),
                angular=Vector3(x=0.0, y=0.0, z=float(commands[i, 1])),
            )
            writer.write(
                cmd_conn,
                t_cmd,
                STORE.serialize_cdr(TwistStamped(header=_header(t_cmd), twist=twist), TwistStamped.__msgtype__),
            )
            t = START_NS + i * FRAME_NS
            rgb = _frame(i)
            data = rgb[..., ::-1] if encoding == "bgr8" else rgb
            msg = Image(
                header=_header(t),
                height=16,
                width=16,
                encoding=encoding,
                is_bigendian=0,
                step=16 * 3,
                data=np.ascontiguousarray(data).reshape(-1),
            )
            writer.write(image_conn, t, STORE.serialize_cdr(msg, Image.__msgtype__))
    return commands


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3], ids=["mcap", "sqlite3"])
def test_bag_round_trip(tmp_path: Path, storage: StoragePlugin) -> None:
    commands = _write_bag(tmp_path / "bag", storage, n_frames=12)
    config = BagImportConfig(image_topic="/camera/image_raw", action_topic="/cmd_vel", image_size=16)
    files = import_bag(tmp_path / "bag", tmp_path / "data", config)
    assert len(files) == 1
    episode = read_episode(files[0])
    assert episode.observations.shape == (12, 16, 16, 3)
    for i in range(12):
        np.testing.assert_array_equal(episode.observations[i], _frame(i))
    np.testing.assert_allclose(episode.actions, commands[:11], atol=1e-6)
    assert episode.states.shape == (12, 0)
    assert read_index(tmp_path / "data")["action_topic"] == "/cmd_vel"


def test_gap_splits_episodes_and_stale_command_is_zero(tmp_path: Path) -> None:
    config = BagImportConfig(
        image_topic="/img", action_topic="/cmd", image_size=8, command_timeout_s=0.25, max_frame_gap_s=1.0
    )
    from ami_robot.data.bags import _episodes_from_streams

    times = [0, 100, 200, 300, 2000, 2100, 2200]
    frames = [(t * 1_000_000, _frame(i, 8)) for i, t in enumerate(times)]
    commands = [(0, np.array([1.0], np.float32)), (2050 * 1_000_000, np.array([2.0], np.float32))]
    episodes = _episodes_from_streams(frames, commands, config)
    assert [len(e.observations) for e in episodes] == [4, 3]
    np.testing.assert_allclose(episodes[0].actions[:, 0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(episodes[1].actions[:, 0], [0.0, 2.0])  # the 2.0 command arrives after frame 2000 ms


def test_answer_alignment_gives_each_frame_the_command_that_answered_it() -> None:
    """A controller that answers each image 30 ms after it: "hold" pairs frame t with the answer to
    frame t-1, "answer" with its own."""
    from ami_robot.data.bags import _episodes_from_streams

    frames = [(t * 100_000_000, _frame(t, 8)) for t in range(5)]
    commands = [(t * 100_000_000 + 30_000_000, np.array([float(t)], np.float32)) for t in range(5)]
    base = dict(image_topic="/img", action_topic="/cmd", image_size=8)
    (answered,) = _episodes_from_streams(frames, commands, BagImportConfig(**base, action_alignment="answer"))
    np.testing.assert_allclose(answered.actions[:, 0], [0.0, 1.0, 2.0, 3.0])
    (held,) = _episodes_from_streams(frames, commands, BagImportConfig(**base))
    np.testing.assert_allclose(held.actions[:, 0], [0.0, 1.0, 2.0])  # frame 0 has no command yet: dropped
    with pytest.raises(BagImportError, match="action_alignment"):
        BagImportConfig(**base, action_alignment="late")


def test_missing_topic_is_named(tmp_path: Path) -> None:
    _write_bag(tmp_path / "bag", StoragePlugin.MCAP, n_frames=3)
    with pytest.raises(BagImportError, match="/nope"):
        read_bag(tmp_path / "bag", BagImportConfig(image_topic="/nope", action_topic="/cmd_vel"))
