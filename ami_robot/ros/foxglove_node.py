"""Foxglove node: a live view of the brain in the Foxglove app (`ami-robot demo --foxglove`).

Subscribes the brain's topics (`ami_robot.ros.recorder_node.BRAIN_TOPICS`, or the subset in
`topics`) without deserializing them (`raw=True`) and forwards each CDR payload unchanged, stamped
with its receive time, to a channel of a foxglove-sdk WebSocket server: message encoding "cdr",
schema encoding "ros2msg", schema name the ROS type ("sensor_msgs/msg/Image") and schema data its
message definition (ROS 2 Kilted's, from rosbags' type store, the same the recorder writes into
its bags). So the app decodes everything natively: camera and goal images, the plan (Path and
MarkerArray), commands, latents, surprise, settings and diagnostics.

Every channel is created when the node starts, so a client that connects at any later time is
sent the full list (the protocol's "advertise") and picks what it subscribes; messages go only
to clients subscribed to their channel. The server binds 127.0.0.1 only (`HOST`, not a
parameter): nothing leaves this machine. Open it in Foxglove with Open connection -> Foxglove
WebSocket -> ws://127.0.0.1:PORT (`port`, 0: any free port; the log names the one bound).

Ctrl-C and SIGTERM stop it through `ami_robot.ros.runtime.serve`, which destroys the node: the
subscriptions go, the channels are closed and the server stops.
"""

from __future__ import annotations

from typing import Any

import foxglove
from rclpy.node import Node

from ami_robot.errors import ConfigError
from ami_robot.ros import params as P
from ami_robot.ros import qos
from ami_robot.ros.executables import FOXGLOVE_HOST, FOXGLOVE_PORT, foxglove_url
from ami_robot.ros.recorder_node import BRAIN_TOPICS, type_name
from ami_robot.ros.runtime import serve

HOST = FOXGLOVE_HOST
"""The only address the server binds (not a parameter): a live view never leaves this machine."""

SUBSCRIPTION_DEPTH = 5
"""History of each viewing subscription: a viewer that falls behind sees newer messages, not a backlog."""

FOXGLOVE = [
    P.ParameterSpec(
        "port", FOXGLOVE_PORT, "TCP port of the WebSocket server on 127.0.0.1 (0: any free port)", 0, 65535
    ),
    P.ParameterSpec("topics", "", "comma-separated brain topics to show (empty: all of BRAIN_TOPICS)"),
]


def ros2msg_schema(message_type: str, typestore: Any = None) -> foxglove.Schema:
    """The Foxglove schema of a ROS 2 type ("sensor_msgs/msg/Image"): its Kilted message definition
    with those of the types it uses, in the "ros2msg" encoding of rosbag2's MCAP files."""
    if typestore is None:
        from rosbags.typesys import Stores, get_typestore

        typestore = get_typestore(Stores.ROS2_KILTED)
    text, _ = typestore.generate_msgdef(message_type, ros_version=2)
    return foxglove.Schema(name=message_type, encoding="ros2msg", data=text.encode())


class FoxgloveNode(Node):
    """Serves the brain's topics to Foxglove on ws://127.0.0.1:`port` (the bound one once started)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("foxglove", **kwargs)
        self.values = P.declare_parameters(self, FOXGLOVE)
        topics = [t.strip() for t in self.values["topics"].split(",") if t.strip()] or list(BRAIN_TOPICS)
        unknown = [t for t in topics if t not in BRAIN_TOPICS]
        if unknown:
            raise ConfigError(f"foxglove: topics {unknown} are not brain topics; choose from {list(BRAIN_TOPICS)}")
        from rosbags.typesys import Stores, get_typestore

        typestore = get_typestore(Stores.ROS2_KILTED)
        self.foxglove_context = foxglove.Context()  # this node's channels and server only
        self.channels: dict[str, foxglove.Channel] = {}
        for topic in topics:
            message_type, _ = BRAIN_TOPICS[topic]
            name = self.resolve_topic_name(topic)
            self.channels[name] = foxglove.Channel(
                name,
                message_encoding="cdr",
                schema=ros2msg_schema(type_name(message_type), typestore),
                context=self.foxglove_context,
            )
        try:
            self.server = foxglove.start_server(
                name="ami_robot", host=HOST, port=self.values["port"], context=self.foxglove_context
            )
        except RuntimeError as exc:  # the port is taken
            self._close_channels()
            raise ConfigError(f"foxglove: cannot serve on {HOST}:{self.values['port']}: {exc}") from exc
        self.port = self.server.port
        clock = self.get_clock()
        self.subscriptions_by_topic: dict[str, Any] = {}
        for topic in topics:
            message_type, offered = BRAIN_TOPICS[topic]
            name = self.resolve_topic_name(topic)
            channel = self.channels[name]
            self.subscriptions_by_topic[name] = self.create_subscription(
                message_type,
                name,
                lambda data, channel=channel: channel.log(data, log_time=clock.now().nanoseconds),
                qos.matching(offered, SUBSCRIPTION_DEPTH),
                raw=True,
            )
        self.get_logger().info(
            f"Foxglove live view of {len(topics)} topics on {foxglove_url(self.port)} "
            "(Foxglove: Open connection -> Foxglove WebSocket)"
        )

    def _close_channels(self) -> None:
        for channel in self.channels.values():
            channel.close()
        self.channels.clear()

    def destroy_node(self) -> None:
        for subscription in getattr(self, "subscriptions_by_topic", {}).values():
            self.destroy_subscription(subscription)
        if getattr(self, "server", None) is not None:
            self.server.stop()
            self.server = None
        self._close_channels()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return serve([FoxgloveNode], argv)


if __name__ == "__main__":
    raise SystemExit(main())
