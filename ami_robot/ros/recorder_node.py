"""Recorder node: the brain's topics into a rosbag2 in MCAP as they flow (`ami-robot record`).

Subscribes the topics it is given (`topics`, comma-separated; empty: `BRAIN_TOPICS`, the camera,
goal image, commands, plan and its markers, latents, surprise, settings, diagnostics and the
simulated robot's state) and writes their CDR bytes, never deserialized, with the time DDS received
them, into the bag with `ami_robot.data.bag_writer.BagWriter`. The brain's topics are
subscribed at start, with their publishers' reliability and durability; any other topic once it is
discovered, with its publisher's QoS.

Recording must not slow the control loop that shares the machine. The subscriptions belong to a
node that no executor spins, so an arriving message wakes no Python code: DDS keeps it in the
subscription's history (`history_depth` deep), and every `take_interval_s` a timer takes what has
come on every topic and writes it, in one batch, in the timer's own thread: the recorder never
keeps two CPUs busy at once. Measured with `ami-robot demo --record` on two vCPUs (README, "ROS 2"),
this adds 0.28 ms (3.5%) to the median reaction of the brain's queued ticks; an executor callback per
message added 1.6 ms, and the same batches handed to a writer thread 0.4-1.1 ms. A topic whose
history fills between two takes loses its oldest messages: the recorder warns once per topic, and
names the remedy.

Ctrl-C and SIGTERM finish the bag (`ami_robot.ros.runtime.serve` destroys the node, which closes
it) and log the messages written per topic; `duration_s` > 0 stops the recording by itself.
A killed recorder leaves what it had taken by its last flush (at most `take_interval_s` +
`flush_interval_s` are lost) for `ami-robot record --repair PATH`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import ParameterEvent
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Float32MultiArray
from visualization_msgs.msg import MarkerArray

from ami_robot.data.bag_writer import BagWriter, RecordingStats, TopicInfo
from ami_robot.errors import ConfigError
from ami_robot.ros import params as P
from ami_robot.ros import qos
from ami_robot.ros.executables import recorder_taps_name
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

RECORDER = [
    P.ParameterSpec("path", "", "bag directory to create (must not exist); required"),
    P.ParameterSpec("topics", "", "comma-separated topics to record (empty: the brain's topics)"),
    P.ParameterSpec("duration_s", 0.0, "stop recording after this many seconds (0: until stopped)", 0.0, 1e9),
    P.ParameterSpec(
        "take_interval_s", 0.5, "seconds between takes of what has arrived on the recorded topics", 0.001, 60.0
    ),
    P.ParameterSpec(
        "history_depth",
        500,
        "messages each topic keeps between two takes (more in one take interval loses the oldest)",
        1,
        100000,
    ),
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
        self.writer = BagWriter(path, flush_interval_s=self.values["flush_interval_s"], writer_thread=False)
        self.stats: RecordingStats | None = None
        self.taps = Node(
            recorder_taps_name(self.get_name()),
            context=self.context,
            use_global_arguments=False,
            enable_rosout=False,
            start_parameter_services=False,
        )
        self.recorded: list[RecordedTopic] = []
        self.overrun: set[str] = set()
        requested = [t.strip() for t in self.values["topics"].split(",") if t.strip()] or list(BRAIN_TOPICS)
        self.waiting: set[str] = set()
        for topic in requested:
            if topic in BRAIN_TOPICS:
                message_type, offered = BRAIN_TOPICS[topic]
                self._subscribe(topic, message_type, offered)
            else:
                self.waiting.add(self.resolve_topic_name(topic))
        if self.waiting:
            self.discovery_timer = self.create_timer(0.5, self.discover)
        self.take_timer = self.create_timer(self.values["take_interval_s"], self.take)
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
        subscription = self.taps.create_subscription(
            message_type, name, _never_called, qos.matching(offered, self.values["history_depth"]), raw=True
        )
        self.recorded.append(RecordedTopic(info, subscription))

    def take(self) -> None:
        """Write every message that has arrived since the last take, with its receive time; flush when due."""
        depth = self.values["history_depth"]
        for topic in self.recorded:
            taken = 0
            handle = topic.subscription.handle
            with handle:
                while (message := handle.take_message(topic.subscription.msg_type, True)) is not None:
                    data, info = message
                    self.writer.put(topic.info, info["received_timestamp"] or self.get_clock().now().nanoseconds, data)
                    taken += 1
            if taken >= depth and topic.info.name not in self.overrun:
                self.overrun.add(topic.info.name)
                self.get_logger().warning(
                    f"{topic.info.name}: {taken} messages in one take, its whole history: older ones may have been "
                    "lost; raise history_depth or lower take_interval_s"
                )
        self.writer.flush_if_due()

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
        """Take what is left, finish the bag (once: rclpy's shutdown destroys the node too)."""
        if self.stats is None:
            self.take()
            self.taps.destroy_node()
            self.stats = self.writer.close()
            self.get_logger().info(f"wrote {self.writer.path}:\n{self.stats.summary() or '(no messages)'}")
        super().destroy_node()


@dataclass(frozen=True)
class RecordedTopic:
    """A recorded topic and the subscription (of the unspun taps node) its messages wait in."""

    info: TopicInfo
    subscription: Subscription


def _never_called(_: bytes) -> None:
    """The taps node is never spun: its messages are taken by `RecorderNode.take`."""


def main(argv: list[str] | None = None) -> int:
    return serve([RecorderNode], argv)


if __name__ == "__main__":
    raise SystemExit(main())
