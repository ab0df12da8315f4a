"""Perception node: camera image -> latent.

Subscribes `camera/image` (sensor_msgs/Image, sensor-data QoS, latest only); publishes
`brain/latent` (1 x D 32FC1 image with the camera header) as soon as each image is encoded, after
handing it to the in-process listeners, so that the command from it never waits for the DDS
delivery to other processes (a recorder, say). Malformed images are dropped with a WARN diagnostic;
/diagnostics reports images, rejections and the encode time (image in to latent, p50 and p99).
configure loads the encoder, activate starts encoding, deactivate stops it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from rcl_interfaces.msg import ParameterEvent
from sensor_msgs.msg import Image

from ami_robot.errors import ImageError
from ami_robot.perception.latent_encoder import LatentEncoder
from ami_robot.ros import params as P
from ami_robot.ros.conversions import event_to_settings, image_to_numpy, latent_to_msg
from ami_robot.ros.node_base import FAILURE, OK, SUCCESS, WARN, BrainNode, percentiles
from ami_robot.ros.qos import CAMERA, LATCHED, LATEST
from ami_robot.ros.runtime import run_nodes
from ami_robot.world_model.checkpoint import load_model

STATS_WINDOW = 10000
"""Latest images the encode-time percentiles cover."""


class PerceptionNode(BrainNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("perception", P.PERCEPTION, **kwargs)
        self.encoder: LatentEncoder | None = None
        self.received = self.rejected = 0
        self.latent_listeners: list[Callable[[Image], None]] = []
        """Called with each latent message before it is published: the planner, when it shares this
        process (`ami_robot.ros.brain_node`), takes it there without a trip through DDS."""
        self.encode_ms: deque[float] = deque(maxlen=STATS_WINDOW)

    def on_configure(self, state):
        try:
            self.encoder = LatentEncoder(load_model(self.values()["checkpoint"]))
        except Exception as exc:
            self.get_logger().error(f"cannot load the model: {exc}")
            return FAILURE
        self.latent_pub = self.create_publisher(Image, "brain/latent", LATEST)
        self.image_sub = self.create_subscription(Image, "camera/image", self.on_image, CAMERA)
        self.settings_sub = self.create_subscription(ParameterEvent, "brain/settings", self.on_settings, LATCHED)
        self.status_timer = self.create_timer(1.0, self.report)
        return SUCCESS

    def on_image(self, msg: Image) -> None:
        if not self.active or self.encoder is None:
            return
        self.received += 1
        start = time.perf_counter()
        try:
            z = self.encoder(image_to_numpy(msg))
        except ImageError as exc:
            self.rejected += 1
            self.diagnose(WARN, f"camera image rejected: {exc}", rejected=self.rejected)
            return
        self.encode_ms.append((time.perf_counter() - start) * 1e3)
        latent = latent_to_msg(z, msg.header)
        for listener in self.latent_listeners:
            listener(latent)
        self.latent_pub.publish(latent)

    def on_settings(self, msg: ParameterEvent) -> None:
        checkpoint = self.follow_checkpoint(event_to_settings(msg))
        if checkpoint:
            try:
                self.encoder = LatentEncoder(load_model(checkpoint))
                self.get_logger().info(f"switched to model {checkpoint}")
            except Exception as exc:
                self.diagnose(WARN, f"model switch to {checkpoint} failed, keeping the old model: {exc}")

    def report(self) -> None:
        self.diagnose(
            OK if self.active else WARN,
            "encoding" if self.active else "inactive",
            images=self.received,
            rejected=self.rejected,
            **percentiles("encode_ms", self.encode_ms),
        )

    def on_cleanup(self, state):
        for entity in (self.image_sub, self.settings_sub):
            self.destroy_subscription(entity)
        self.destroy_publisher(self.latent_pub)
        self.destroy_timer(self.status_timer)
        self.encoder = None
        return SUCCESS


def main(argv: list[str] | None = None) -> int:
    return run_nodes([PerceptionNode], argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
