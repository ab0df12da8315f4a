"""Recorder node: the brain's topics into a rosbag2 in MCAP as they flow (`ami-robot record`).

Subscribes the topics it is given (`topics`, comma-separated; empty: `BRAIN_TOPICS`, the camera,
goal image, commands, plan and its markers, latents, surprise, settings, diagnostics and the
simulated robot's state) without deserializing them (`raw=True`), and hands the CDR bytes with
their receive time to `ami_robot.data.bag_writer.BagWriter`, whose thread writes the bag: a
callback only appends to a bounded queue, so recording never waits for the disk. The brain's
topics are subscribed at start, with their publishers' reliability and durability and a deeper
history; any other topic is subscribed once it is discovered, with its publisher's QoS.

Ctrl-C and SIGTERM finish the bag (`ami_robot.ros.runtime.serve` destroys the node, which closes
it) and log the messages written per topic; `duration_s` > 0 stops the recording by itself.
A killed recorder leaves everything up to its last flush (`flush_interval_s`) for
`ami-robot record --repair PATH`.
"""

from __future__ import annotations

import importlib
from pathlib import Path as FilePath
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import ParameterEvent
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Float32MultiArray
from visualization_msgs.msg import MarkerArray

from ami_robot.data.bag_writer import BagWriter, RecordingStats, TopicInfo
from ami_robot.errors import ConfigError
from ami_robot.ros import params as P
from ami_robot.ros import qos
from ami_robot.ros.qos import CAMERA, COMMAND, EVENTS, LATCHED, LATEST
from ami_robot.ros.runtime import serve
from ami_robot.runtime import yield_cpu

BRAIN_TOPICS: dict[str, tuple[type, QoSProfile]] = {
    "camera/image": (Image, CAMERA),
    "goal/image": (Image, LATCHED),
    "cmd_vel": (TwistStamped, COMMAND),
    "command": (Float32MultiArray, COMMAND),
    "brain/latent": (Image, LATEST),
    "brain/goal_latent": (Image, LATCHED),
    "brain/settings": (ParameterEvent, LATCHED),
    "brain/plan": (Path, EVENTS),
    "brain/plan/markers": (MarkerArray, EVENTS),
    "brain/action_block": (Float32MultiArray, EVENTS),
    "brain/surprise": (Float32, EVENTS),
    "/diagnostics": (DiagnosticArray, EVENTS),
    "robot/status": (DiagnosticStatus, EVENTS),
    "robot/state": (Float32MultiArray, LATEST),
}
"""What `ami-robot record` records by default: topic (relative to the recorder's namespace) ->
message type and the QoS its publisher offers (`ami_robot.ros.qos`)."""

SUBSCRIPTION_DEPTH = 100
"""History of every recording subscription: a burst waits here for the executor, not dropped."""

RECORDER = [
    P.ParameterSpec("path", "", "bag directory to create (must not exist); required"),
    P.ParameterSpec("topics", "", "comma-separated topics to record (empty: the brain's topics)"),
    P.ParameterSpec("duration_s", 0.0, "stop recording after this many seconds (0: until stopped)", 0.0, 1e9),
    P.ParameterSpec("queue_size", 10000, "messages waiting for the disk before new ones are dropped", 1, 10**7),
    P.ParameterSpec("flush_interval_s", 1.0, "seconds between flushes to disk (what a kill can lose)", 0.01, 3600.0),
    P.ParameterSpec(
        "niceness",
        10,
        "scheduling niceness added to every thread of the recorder, so that on a busy CPU it yields to the "
        "control loop (0: none)",
        0,
        19,
    ),
]


def type_name(message_class: type) -> str:
    """sensor_msgs.msg.Image -> "sensor_msgs/msg/Image"."""
    return f"{message_class.__module__.split('.')[0]}/msg/{message_class.__name__}"


def message_class(name: str) -> type:
    """A type name ("sensor_msgs/msg/Image") -> its class (the package must be installed)."""
    package, kind, message = name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), message)


class RecorderNode(Node):
    """Records topics into the bag at parameter `path`; `stats` holds the counts once destroyed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("recorder", **kwargs)
        self.values = P.declare_parameters(self, RECORDER)
        yield_cpu(self.values["niceness"], whole_process=True)
        if not self.values["path"]:
            raise ConfigError("recorder: parameter path (the bag directory to create) is required")
        path = FilePath(self.values["path"]).expanduser().resolve()
        if path.exists():
            raise ConfigError(f"recorder: {path} exists already; a recording never overwrites one")
        self.writer = BagWriter(path, self.values["queue_size"], self.values["flush_interval_s"])
        self.stats: RecordingStats | None = None
        requested = [t.strip() for t in self.values["topics"].split(",") if t.strip()] or list(BRAIN_TOPICS)
        self.waiting: set[str] = set()
        self.subscriptions_by_topic: dict[str, Any] = {}
        for topic in requested:
            if topic in BRAIN_TOPICS:
                message_type, offered = BRAIN_TOPICS[topic]
                self._subscribe(topic, message_type, offered)
            else:
                self.waiting.add(self.resolve_topic_name(topic))
        if self.waiting:
            self.discovery_timer = self.create_timer(0.5, self.discover)
        if self.values["duration_s"] > 0:
            self.create_timer(self.values["duration_s"], lambda: self.context.try_shutdown())
        self.get_logger().info(f"recording {len(requested)} topics into {path}")

    def _subscribe(self, topic: str, message_type: type, offered: QoSProfile) -> None:
        name = self.resolve_topic_name(topic)
        info = TopicInfo(
            name,
            type_name(message_type),
            reliable=offered.reliability == ReliabilityPolicy.RELIABLE,
            transient_local=offered.durability == DurabilityPolicy.TRANSIENT_LOCAL,
            depth=offered.depth,
        )
        clock = self.get_clock()
        self.subscriptions_by_topic[name] = self.create_subscription(
            message_type,
            name,
            lambda data: self.writer.put(info, clock.now().nanoseconds, data),
            qos.matching(offered, SUBSCRIPTION_DEPTH),
            raw=True,
        )

    def discover(self) -> None:
        """Subscribe the requested topics that have appeared since the last look."""
        for name, types in self.get_topic_names_and_types():
            if name in self.waiting and types:
                publishers = self.get_publishers_info_by_topic(name)
                offered = publishers[0].qos_profile if publishers else EVENTS
                self._subscribe(name, message_class(types[0]), offered)
                self.waiting.discard(name)
        if not self.waiting:
            self.destroy_timer(self.discovery_timer)

    def destroy_node(self) -> None:
        for subscription in self.subscriptions_by_topic.values():
            self.destroy_subscription(subscription)
        self.stats = self.writer.close()
        self.get_logger().info(f"wrote {self.writer.path}:\n{self.stats.summary() or '(no messages)'}")
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return serve([RecorderNode], argv)


if __name__ == "__main__":
    raise SystemExit(main())
