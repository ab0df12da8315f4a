"""`ami-robot record` over DDS (localhost only): every message a publisher sent is in the bag, on
both readers, with its standard type; a stop request finishes the bag; --duration stops by itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
pytest.importorskip("mcap", reason="mcap (the record extra) is not installed")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rosbags.rosbag2 import Reader  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402

from ami_robot.ros.conversions import action_to_twist, numpy_to_image  # noqa: E402
from ami_robot.ros.qos import CAMERA, COMMAND, EVENTS, LATCHED  # noqa: E402
from ami_robot.ros.recorder_node import BRAIN_TOPICS  # noqa: E402
from ami_robot.runtime import stop_process_groups  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
PUBLISHED = {"/camera/image": 40, "/cmd_vel": 60, "/brain/surprise": 25, "/diagnostics": 5, "/goal/image": 1}


def record(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ami_robot.cli", "record", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
        start_new_session=True,
    )


def read_counts(bag: Path) -> tuple[Counter[str], Counter[str], dict[str, str]]:
    """Messages per topic by rosbags' reader (each deserialized) and by the mcap reader; topic types."""
    from mcap.reader import make_reader

    by_rosbags: Counter[str] = Counter()
    with Reader(bag) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for connection, _, data in reader.messages():
            TYPESTORE.deserialize_cdr(data, connection.msgtype)
            by_rosbags[connection.topic] += 1
    with (bag / f"{bag.name}.mcap").open("rb") as stream:
        by_mcap = Counter(channel.topic for _, channel, _ in make_reader(stream).iter_messages())
    return by_rosbags, by_mcap, types


@pytest.fixture
def node():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("publisher", context=context)
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def thread_niceness(pid: int, tid: str) -> int:
    """The niceness of thread `tid` of process `pid` (field 19 of /proc/PID/task/TID/stat)."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[16])


def wait_for_subscribers(publishers: list, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while any(p.get_subscription_count() == 0 for p in publishers):
        assert time.monotonic() < deadline, "the recorder did not subscribe"
        time.sleep(0.1)
    time.sleep(1.0)  # a writer sees the reader before the reader has matched it: a first sample could be lost


def test_every_published_message_is_recorded_with_its_standard_type(node: Node, tmp_path: Path) -> None:
    bag = tmp_path / "session"
    recorder = record("--out", str(bag), "--json", str(tmp_path / "counts.json"))
    try:
        camera = node.create_publisher(Image, "camera/image", CAMERA)
        goal = node.create_publisher(Image, "goal/image", LATCHED)
        command = node.create_publisher(TwistStamped, "cmd_vel", COMMAND)
        surprise = node.create_publisher(Float32, "brain/surprise", EVENTS)
        diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", EVENTS)
        wait_for_subscribers([camera, goal, command, surprise, diagnostics], timeout_s=60)
        if Path(f"/proc/{recorder.pid}/task").is_dir():  # Linux: every thread yields the CPU to the control loop
            niceness = [thread_niceness(recorder.pid, tid) for tid in os.listdir(f"/proc/{recorder.pid}/task")]
            assert len(niceness) > 3 and min(niceness) >= 10, niceness
        stamp = node.get_clock().now().to_msg()
        pixels = np.zeros((32, 32, 3), np.uint8)
        goal.publish(numpy_to_image(pixels, stamp))
        for i in range(60):
            command.publish(action_to_twist(np.array([0.01 * i, 0.0]), stamp))
            if i < PUBLISHED["/camera/image"]:
                camera.publish(numpy_to_image(pixels + i, stamp))
            if i < PUBLISHED["/brain/surprise"]:
                surprise.publish(Float32(data=float(i)))
            if i < PUBLISHED["/diagnostics"]:
                diagnostics.publish(DiagnosticArray(status=[DiagnosticStatus(name="test", message=str(i))]))
            time.sleep(0.02)
        time.sleep(1.0)
    finally:
        stop_process_groups([recorder], escalation=((signal.SIGINT, 30.0), (signal.SIGKILL, 5.0)))
    output = recorder.stdout.read()
    assert recorder.returncode == 0, output
    by_rosbags, by_mcap, types = read_counts(bag)
    assert by_rosbags == by_mcap == PUBLISHED, output
    assert json.loads((tmp_path / "counts.json").read_text())["messages"] == PUBLISHED
    assert types["/cmd_vel"] == "geometry_msgs/msg/TwistStamped" and types["/camera/image"] == "sensor_msgs/msg/Image"
    assert "/cmd_vel: 60" in output


def test_duration_ends_the_recording_with_a_complete_bag(tmp_path: Path) -> None:
    bag = tmp_path / "short"
    recorder = record("--out", str(bag), "--duration", "2")
    try:
        output, _ = recorder.communicate(timeout=90)
    finally:
        if recorder.poll() is None:
            os.killpg(recorder.pid, signal.SIGKILL)
    assert recorder.returncode == 0, output
    assert (bag / "metadata.yaml").is_file()
    assert read_counts(bag)[0] == Counter()


def test_an_existing_bag_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    recorder = record("--out", str(tmp_path / "taken"), "--duration", "1")
    output, _ = recorder.communicate(timeout=90)
    assert recorder.returncode == 2 and "exists already" in output


def test_the_default_topics_cover_the_brain() -> None:
    assert {"camera/image", "goal/image", "cmd_vel", "brain/plan", "brain/plan/markers", "brain/latent"} <= set(
        BRAIN_TOPICS
    )
    assert {"brain/surprise", "/diagnostics"} <= set(BRAIN_TOPICS)


def test_a_topic_outside_the_brain_is_recorded_once_it_appears(node: Node, tmp_path: Path) -> None:
    bag = tmp_path / "extra"
    recorder = record("--out", str(bag), "--topics", "/lidar/range,cmd_vel")
    try:
        time.sleep(3.0)  # the recorder is up before the topic exists
        publisher = node.create_publisher(Float32, "/lidar/range", EVENTS)
        wait_for_subscribers([publisher], timeout_s=60)
        for i in range(20):
            publisher.publish(Float32(data=float(i)))
            time.sleep(0.02)
        time.sleep(1.0)
    finally:
        stop_process_groups([recorder], escalation=((signal.SIGINT, 30.0), (signal.SIGKILL, 5.0)))
    assert recorder.returncode == 0, recorder.stdout.read()
    by_rosbags, by_mcap, types = read_counts(bag)
    assert by_rosbags == by_mcap == {"/lidar/range": 20}
    assert types["/lidar/range"] == "std_msgs/msg/Float32"


def test_record_asks_for_the_robots_domain(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ROS_DOMAIN_ID", "AMI_ROBOT_DOMAIN_ID")}
    result = subprocess.run(
        [sys.executable, "-m", "ami_robot.cli", "record", "--out", str(tmp_path / "bag")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2 and "ROS_DOMAIN_ID" in result.stderr
    assert not (tmp_path / "bag").exists()


def test_messages_beyond_the_history_between_two_takes_are_reported_lost(node: Node, tmp_path: Path) -> None:
    """The subscriptions keep `history_depth` messages between takes: a faster burst keeps the newest
    and the recorder says so, naming the remedy."""
    bag = tmp_path / "burst"
    recorder = record("--out", str(bag), "--topics", "cmd_vel", "--take-interval", "30", "--history-depth", "5")
    try:
        command = node.create_publisher(TwistStamped, "cmd_vel", COMMAND)
        wait_for_subscribers([command], timeout_s=60)
        stamp = node.get_clock().now().to_msg()
        for i in range(30):
            command.publish(action_to_twist(np.array([0.01 * i, 0.0]), stamp))
        time.sleep(1.0)
    finally:
        stop_process_groups([recorder], escalation=((signal.SIGINT, 30.0), (signal.SIGKILL, 5.0)))
    output = recorder.stdout.read()
    assert recorder.returncode == 0, output
    assert read_counts(bag)[0] == {"/cmd_vel": 5}, output
    assert "/cmd_vel: 5 messages in one take" in output and "raise history_depth" in output
    with Reader(bag) as reader:
        speeds = [TYPESTORE.deserialize_cdr(data, c.msgtype).twist.linear.x for c, _, data in reader.messages()]
    np.testing.assert_allclose(speeds, 0.01 * np.arange(25, 30), atol=1e-6)
