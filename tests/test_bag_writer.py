"""`BagWriter`: serialized messages into a rosbag2 in MCAP that rosbags and the mcap library both
read, counted; a killed recording repaired up to its last flush. No ROS graph needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags (the bags extra) is not installed")
pytest.importorskip("mcap", reason="mcap (the record extra) is not installed")

from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from ami_robot.data.bag_writer import BagWriter, TopicInfo, repair_bag

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
SURPRISE = TopicInfo("/brain/surprise", "std_msgs/msg/Float32")
CAMERA = TopicInfo("/camera/image", "sensor_msgs/msg/Image", reliable=False, depth=1)


def float32(value: float) -> bytes:
    msg = TYPESTORE.types["std_msgs/msg/Float32"](data=value)
    return bytes(TYPESTORE.serialize_cdr(msg, "std_msgs/msg/Float32"))


def image(value: int) -> bytes:
    types = TYPESTORE.types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="c")
    pixels = np.full(4 * 4 * 3, value, dtype=np.uint8)
    msg = types["sensor_msgs/msg/Image"](
        header=header, height=4, width=4, encoding="rgb8", is_bigendian=0, step=12, data=pixels
    )
    return bytes(TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def rosbags_counts(bag: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    with Reader(bag) as reader:
        for connection, _, data in reader.messages():
            TYPESTORE.deserialize_cdr(data, connection.msgtype)
            counts[connection.topic] += 1
    return counts


def mcap_counts(bag: Path) -> Counter[str]:
    from mcap.reader import make_reader

    with (bag / f"{bag.name}.mcap").open("rb") as stream:
        reader = make_reader(stream)
        schemas = {s.id: s.encoding for s in reader.get_summary().schemas.values()}
        assert set(schemas.values()) == {"ros2msg"}, "standard ROS 2 schemas, which Foxglove decodes"
        return Counter(channel.topic for _, channel, _ in reader.iter_messages())


@pytest.mark.parametrize("writer_thread", [True, False], ids=["writer-thread", "caller-writes"])
def test_both_readers_see_every_message_written(tmp_path: Path, writer_thread: bool) -> None:
    bag = tmp_path / "run"
    with BagWriter(bag, writer_thread=writer_thread) as writer:
        for i in range(50):
            writer.put(SURPRISE, 1_000 + i, float32(i))
        for i in range(7):
            writer.put(CAMERA, 2_000 + i, image(i))
    assert writer.stats.written == {"/brain/surprise": 50, "/camera/image": 7}
    assert rosbags_counts(bag) == writer.stats.written
    assert mcap_counts(bag) == writer.stats.written
    metadata = (bag / "metadata.yaml").read_text()
    assert "storage_identifier: mcap" in metadata and "best_effort" in metadata


def test_a_stalled_disk_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    writer = BagWriter(tmp_path / "run", queue_size=1)
    disk_back = threading.Event()
    write = writer._write

    def stalled_write(*args: object) -> None:
        disk_back.wait()
        write(*args)

    writer._write = stalled_write
    start = time.perf_counter()
    accepted = sum(writer.put(SURPRISE, i, float32(i)) for i in range(2000))
    put_s = time.perf_counter() - start
    disk_back.set()
    stats = writer.close()
    assert put_s < 1.0, "put never waits for the disk"
    assert accepted <= 2 and stats.written["/brain/surprise"] == accepted
    assert stats.dropped["/brain/surprise"] == 2000 - accepted


KILLED_RECORDER = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, {tests!r})
    from test_bag_writer import SURPRISE, float32
    from ami_robot.data.bag_writer import BagWriter
    writer = BagWriter({bag!r}, flush_interval_s=0.2, writer_thread={writer_thread})
    for i in range(300):
        writer.put(SURPRISE, 1000 + i, float32(i))
    for _ in range(5):  # several flushes
        time.sleep(0.25)
        writer.flush_if_due()
    for i in range(300, 310):
        writer.put(SURPRISE, 1000 + i, float32(i))
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("writer_thread", [True, False], ids=["writer-thread", "caller-writes"])
def test_a_killed_recording_is_repaired_up_to_its_last_flush(tmp_path: Path, writer_thread: bool) -> None:
    bag = tmp_path / "killed"
    script = KILLED_RECORDER.format(tests=str(Path(__file__).parent), bag=str(bag), writer_thread=writer_thread)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert not (bag / "metadata.yaml").exists(), "a killed recorder cannot finish the bag"
    stats = repair_bag(bag)
    assert 300 <= stats.written["/brain/surprise"] <= 310, "every message flushed before the kill is kept"
    assert rosbags_counts(bag) == stats.written == mcap_counts(bag)
    assert (bag / "killed.mcap.cut").is_file()
    values = []
    with Reader(bag) as reader:
        for connection, _, data in reader.messages():
            values.append(TYPESTORE.deserialize_cdr(data, connection.msgtype).data)
    assert values == list(range(len(values))), "in order, nothing lost before the cut"
    assert os.listdir(tmp_path) == ["killed"]
