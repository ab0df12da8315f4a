"""The Foxglove live view (`ami_robot.ros.foxglove_node`) over DDS and a WebSocket, both on this
machine only: a client that connects after the node started is told every brain topic's channel
(CDR, ros2msg schema), subscribes two, and receives exactly the bytes the publisher sent; the
server listens on 127.0.0.1 and nowhere else."""

from __future__ import annotations

import json
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
pytest.importorskip("foxglove", reason="foxglove-sdk (the viz extra) is not installed")
pytest.importorskip("rosbags", reason="rosbags (the viz extra) is not installed")
websockets_client = pytest.importorskip("websockets.sync.client", reason="websockets (the test extra) is not installed")
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ami_robot.errors import ConfigError  # noqa: E402
from ami_robot.ros.conversions import action_to_twist, numpy_to_image  # noqa: E402
from ami_robot.ros.foxglove_node import HOST, FoxgloveNode  # noqa: E402
from ami_robot.ros.qos import CAMERA, COMMAND  # noqa: E402
from ami_robot.ros.recorder_node import BRAIN_TOPICS, type_name  # noqa: E402

pytestmark = pytest.mark.ros
SUBPROTOCOL = "foxglove.sdk.v1"
"""What foxglove-sdk 0.30's server speaks (the successor of foxglove.websocket.v1; same messages)."""
MESSAGE_DATA = 0x01
TIMEOUT_S = 20.0


class Graph:
    """A Foxglove node and a publisher node spinning in one thread of their own rclpy context."""

    def __init__(self, context, viewer: FoxgloveNode) -> None:
        self.viewer = viewer
        self.publisher = rclpy.create_node("fake_brain", context=context)
        pixels = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
        stamp = self.publisher.get_clock().now().to_msg()
        self.image = numpy_to_image(pixels, stamp)
        self.twist = action_to_twist(np.array([0.25, -0.5]), stamp)
        camera = self.publisher.create_publisher(Image, "camera/image", CAMERA)
        command = self.publisher.create_publisher(TwistStamped, "cmd_vel", COMMAND)
        self.publisher.create_timer(0.05, lambda: (camera.publish(self.image), command.publish(self.twist)))
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(viewer)
        self.executor.add_node(self.publisher)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while not self.stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.executor.shutdown(timeout_sec=2)
        self.publisher.destroy_node()
        self.viewer.destroy_node()


@pytest.fixture
def context() -> Iterator[object]:
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


@pytest.fixture
def graph(context) -> Iterator[Graph]:
    viewer = FoxgloveNode(context=context, parameter_overrides=[Parameter("port", value=0)])
    graph = Graph(context, viewer)
    yield graph
    graph.close()


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on TCP `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, _, state = line.split()[1:4]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # TCP_LISTEN
                found.add(address)
    return found


def receive(connection, deadline: float) -> str | bytes:
    return connection.recv(timeout=max(0.1, deadline - time.monotonic()))


def test_a_client_receives_the_advertised_channels_and_the_published_bytes(graph: Graph) -> None:
    port = graph.viewer.port
    assert port > 0
    if Path("/proc/net/tcp").exists():
        assert listening_addresses(port) == {"0100007F"}, "the live view must listen on 127.0.0.1 only"
    time.sleep(0.5)  # the client connects after the node advertised its channels
    url = f"ws://{HOST}:{port}"
    deadline = time.monotonic() + TIMEOUT_S
    with websockets_client.connect(url, subprotocols=[SUBPROTOCOL], open_timeout=TIMEOUT_S, max_size=None) as ws:
        channels: dict[str, dict] = {}
        info = None
        while len(channels) < len(BRAIN_TOPICS):
            message = json.loads(receive(ws, deadline))
            if message["op"] == "serverInfo":
                info = message
            elif message["op"] == "advertise":
                channels.update({c["topic"]: c for c in message["channels"]})
        assert info is not None and info["name"] == "ami_robot"
        expected = {graph.viewer.resolve_topic_name(t): type_name(m) for t, (m, _) in BRAIN_TOPICS.items()}
        assert {topic: c["schemaName"] for topic, c in channels.items()} == expected
        assert {(c["encoding"], c["schemaEncoding"]) for c in channels.values()} == {("cdr", "ros2msg")}
        assert channels["/camera/image"]["schema"].startswith("std_msgs/Header header")
        assert "MSG: builtin_interfaces/Time" in channels["/cmd_vel"]["schema"]

        wanted = {1: ("/camera/image", Image, graph.image), 2: ("/cmd_vel", TwistStamped, graph.twist)}
        subscriptions = [{"id": i, "channelId": channels[topic]["id"]} for i, (topic, _, _) in wanted.items()]
        ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))
        received: dict[int, object] = {}
        while len(received) < len(wanted):
            frame = receive(ws, deadline)
            if not isinstance(frame, bytes):
                continue  # a later advertise or status
            opcode, subscription, log_time = struct.unpack_from("<BIQ", frame)
            assert opcode == MESSAGE_DATA and subscription in wanted
            assert abs(log_time - time.time_ns()) < 60e9, "stamped with the receive time"
            _, message_type, _ = wanted[subscription]
            received[subscription] = deserialize_message(frame[13:], message_type)
    for subscription, (topic, _, published) in wanted.items():
        assert received[subscription] == published, topic


def test_a_bad_port_or_topic_stops_the_node_with_one_line(context) -> None:
    with pytest.raises(ConfigError, match="port"):
        FoxgloveNode(context=context, parameter_overrides=[Parameter("port", value=70000)])
    with pytest.raises(ConfigError, match="not brain topics"):
        FoxgloveNode(context=context, parameter_overrides=[Parameter("topics", value="/lidar/range")])


def test_a_taken_port_is_refused(graph: Graph, context) -> None:
    with pytest.raises(ConfigError, match="cannot serve"):
        FoxgloveNode(context=context, parameter_overrides=[Parameter("port", value=graph.viewer.port)])
