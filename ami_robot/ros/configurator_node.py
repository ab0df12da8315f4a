"""Configurator node: the goal, the cost weights, the planner settings and the active model.

Parameters `planner.*`, `cost.*`, `method`, `backend` and `checkpoint` are validated when set
(`ros2 param set /configurator planner.horizon 8`) and every accepted change is published as a
snapshot on `brain/settings` (rcl_interfaces/ParameterEvent, transient local) for the other
nodes; a new `checkpoint` switches the model of the whole brain. The goal comes from
`goal/image` (sensor_msgs/Image, transient local) or from a stored image (`goal_image_path`);
it is encoded and published as `brain/goal_latent` (1 x D 32FC1, transient local).
"""

from __future__ import annotations

from rcl_interfaces.msg import ParameterEvent
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ami_robot.configurator import Configurator
from ami_robot.errors import ImageError
from ami_robot.perception.latent_encoder import LatentEncoder
from ami_robot.ros import params as P
from ami_robot.ros.conversions import image_to_numpy, latent_to_msg, settings_to_event
from ami_robot.ros.node_base import FAILURE, OK, SUCCESS, WARN, BrainNode
from ami_robot.ros.qos import LATCHED
from ami_robot.ros.runtime import run_nodes
from ami_robot.world_model.checkpoint import load_model

PUBLISHED = tuple(s.name for s in P.CONFIGURATOR if s.name in P.SETTINGS_NAMES)


class ConfiguratorNode(BrainNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("configurator", P.CONFIGURATOR, **kwargs)
        self.configurator = Configurator(P.validate(self.values()))
        self.encoder: LatentEncoder | None = None
        self.goal_header = Header(frame_id="goal")
        self.add_post_set_parameters_callback(self.on_parameters_set)

    def on_configure(self, state):
        try:
            self.encoder = LatentEncoder(load_model(self.configurator.settings.checkpoint))
            if self.values()["goal_image_path"]:
                self.configurator.load_goal(self.values()["goal_image_path"])
        except Exception as exc:
            self.get_logger().error(f"cannot configure: {exc}")
            return FAILURE
        self.settings_pub = self.create_publisher(ParameterEvent, "brain/settings", LATCHED)
        self.goal_pub = self.create_publisher(Image, "brain/goal_latent", LATCHED)
        self.goal_sub = self.create_subscription(Image, "goal/image", self.on_goal_image, LATCHED)
        return SUCCESS

    def on_activate(self, state):
        result = super().on_activate(state)
        self.publish_settings()
        self.publish_goal()
        return result

    def on_cleanup(self, state):
        self.destroy_subscription(self.goal_sub)
        self.destroy_publisher(self.settings_pub)
        self.destroy_publisher(self.goal_pub)
        self.encoder = None
        return SUCCESS

    def on_parameters_set(self, parameters) -> None:
        """Runs after a change passed validation: apply it and tell the other nodes."""
        old_checkpoint = self.configurator.settings.checkpoint
        self.configurator.replace(P.validate(self.values()))
        names = {p.name for p in parameters}
        if "goal_image_path" in names and self.values()["goal_image_path"]:
            try:
                self.configurator.load_goal(self.values()["goal_image_path"])
            except (OSError, ValueError) as exc:
                self.diagnose(WARN, f"stored goal not loaded: {exc}")
        if self.encoder is not None and self.configurator.settings.checkpoint != old_checkpoint:
            try:
                self.encoder = LatentEncoder(load_model(self.configurator.settings.checkpoint))
            except Exception as exc:
                self.diagnose(WARN, f"model switch failed: {exc}")
                return
        if self.active:
            self.publish_settings()
            self.publish_goal()

    def on_goal_image(self, msg: Image) -> None:
        try:
            self.configurator.set_goal_image(image_to_numpy(msg))
        except ImageError as exc:
            self.diagnose(WARN, f"goal image rejected: {exc}")
            return
        self.goal_header = msg.header
        if self.active:
            self.publish_goal()

    def publish_settings(self) -> None:
        flat = {k: v for k, v in self.configurator.flat().items() if k in PUBLISHED}
        self.settings_pub.publish(
            settings_to_event(flat, self.get_fully_qualified_name(), self.get_clock().now().to_msg())
        )

    def publish_goal(self) -> None:
        goal = self.configurator.goal_image
        if goal is None or self.encoder is None:
            return
        self.goal_pub.publish(latent_to_msg(self.encoder(goal), self.goal_header))
        self.diagnose(OK, "goal set", goal_version=self.configurator.goal_version)


def main(argv: list[str] | None = None) -> int:
    return run_nodes([ConfiguratorNode], argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
