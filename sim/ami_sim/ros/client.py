"""`SimRobotClient`: the simulated robot seen from another node (the demo, tests): reset it and
follow its status, camera and goal image, typed (`ami_sim.ros.status`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from ami_robot.ros.conversions import image_to_numpy
from ami_robot.ros.qos import CAMERA, EVENTS, LATCHED
from ami_sim.ros.status import ResetReply, RobotMessageError, RobotStatus


class SimRobotClient:
    """Subscribes `robot/status`, `camera/image` and `goal/image` on `node`, and calls `robot/reset`.

    `status`, `camera` (uint8 (H, W, 3)) and `goal` hold the latest of each (None until the first);
    `on_status` and `on_camera` see every one as it arrives. `spin_once(timeout_s)` runs the node's
    callbacks whenever the client waits (default: `rclpy.spin_once` on `node`); an exception it
    raises (a stop request, a child that died) ends the wait.
    """

    def __init__(
        self,
        node: Node,
        on_status: Callable[[RobotStatus], None] | None = None,
        on_camera: Callable[[np.ndarray], None] | None = None,
        spin_once: Callable[[float], None] | None = None,
    ) -> None:
        self.node = node
        self.on_status = on_status
        self.on_camera = on_camera
        self.spin_once = spin_once or (lambda timeout_s: rclpy.spin_once(node, timeout_sec=timeout_s))
        self.status: RobotStatus | None = None
        self.camera: np.ndarray | None = None
        self.goal: np.ndarray | None = None
        self._reset = node.create_client(Trigger, "robot/reset")
        node.create_subscription(DiagnosticStatus, "robot/status", self._on_status, EVENTS)
        node.create_subscription(Image, "camera/image", self._on_camera, CAMERA)
        node.create_subscription(Image, "goal/image", self._on_goal, LATCHED)

    def ready(self) -> bool:
        """Whether the robot's reset service is up."""
        return self._reset.service_is_ready()

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, failure: str) -> None:
        """Spin until `condition()` holds; raises TimeoutError("<failure> within <timeout_s> s") after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{failure} within {timeout_s:.0f} s")
            self.spin_once(0.05)

    def reset(self, timeout_s: float) -> ResetReply:
        """Start the robot's next episode. Raises TimeoutError, or RobotMessageError if it refused."""
        future = self._reset.call_async(Trigger.Request())
        try:
            self.wait_for(future.done, timeout_s, "the simulated robot did not answer the reset")
        finally:
            if not future.done():
                self._reset.remove_pending_request(future)
        return ResetReply.from_response(future.result())

    def finished(self, episode: int) -> bool:
        """Whether the robot reported `episode` done (goal reached or step budget spent)."""
        return self.status is not None and self.status.episode == episode and self.status.done

    def run_episode(self, reset_timeout_s: float, timeout_s: float) -> int:
        """Reset the robot and wait until it reports the new episode done; returns its index."""
        episode = self.reset(reset_timeout_s).episode
        self.wait_for(lambda: self.finished(episode), timeout_s, f"episode {episode} did not finish")
        return episode

    def _on_status(self, msg: DiagnosticStatus) -> None:
        try:
            status = RobotStatus.from_msg(msg)
        except RobotMessageError as exc:
            self.node.get_logger().warning(str(exc), throttle_duration_sec=1.0)
            return
        self.status = status
        if self.on_status is not None:
            self.on_status(status)

    def _on_camera(self, msg: Image) -> None:
        self.camera = image_to_numpy(msg)
        if self.on_camera is not None:
            self.on_camera(self.camera)

    def _on_goal(self, msg: Image) -> None:
        self.goal = image_to_numpy(msg)
