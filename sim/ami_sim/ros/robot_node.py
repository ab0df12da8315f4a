"""The simulated robot: any ami_sim environment on ROS 2 topics, as a hardware driver would be.

Publishes at `rate_hz`: `camera/image` (sensor_msgs/Image rgb8, sensor-data QoS), `robot/state`
(std_msgs/Float32MultiArray, the true low-dimensional state) and `robot/status`
(diagnostic_msgs/DiagnosticStatus: episode, steps, success, done, goal distance). Takes
`cmd_vel` (geometry_msgs/TwistStamped: linear.x, linear.y, angular.z -> action[0..2]) or
`command` (std_msgs/Float32MultiArray) per `command_type`; a command older than
`command_timeout_s` is replaced by the zero action (the robot's own watchdog).

`robot/reset` (std_srvs/Trigger) starts the next episode: the start/goal pair comes from the
evaluation protocol (`ami_sim.evaluation.start_goal_pairs`), and the goal image is published on
`goal/image` (transient local). An episode ends on success or after the step budget; the robot then
holds still and keeps publishing its camera.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray
from std_srvs.srv import Trigger

from ami_robot.ros import params as P
from ami_robot.ros.conversions import ConversionError, array_to_msg, msg_to_array, numpy_to_image, twist_to_action
from ami_robot.ros.qos import CAMERA, COMMAND, EVENTS, LATCHED, LATEST
from ami_sim.evaluation import PROTOCOLS, start_goal_pairs
from ami_sim.registry import make_env, spec
from ami_sim.ros.params import SIM_ROBOT


class SimRobotNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("sim_robot", **kwargs)
        self.values = P.declare_parameters(self, SIM_ROBOT)
        name = self.values["env"]
        protocol = PROTOCOLS[name]
        self.protocol = dataclasses.replace(
            protocol,
            goal_offset_steps=self.values["goal_offset"] or protocol.goal_offset_steps,
            step_budget=self.values["step_budget"] or protocol.step_budget,
        )
        self.step_budget = self.protocol.step_budget
        self.env = make_env(
            name,
            image_size=self.values["image_size"],
            max_episode_steps=max(self.step_budget, spec(name).max_episode_steps) + 1,
        )
        self.raw = self.env.unwrapped
        self.action_dim = int(np.prod(self.env.action_space.shape))
        self.observation, self.info = self.env.reset(seed=self.values["seed"])
        self.pairs: list[tuple[np.ndarray, np.ndarray]] | None = None
        self.episode = -1
        self.steps = 0
        self.done = True
        self.success = False
        self.command = np.zeros(self.action_dim, dtype=np.float32)
        self.command_s = -np.inf

        self.image_pub = self.create_publisher(Image, "camera/image", CAMERA)
        self.state_pub = self.create_publisher(Float32MultiArray, "robot/state", LATEST)
        self.status_pub = self.create_publisher(DiagnosticStatus, "robot/status", EVENTS)
        self.goal_pub = self.create_publisher(Image, "goal/image", LATCHED)
        if self.values["command_type"] == "twist":
            self.create_subscription(TwistStamped, "cmd_vel", self.on_twist, COMMAND)
        else:
            self.create_subscription(Float32MultiArray, "command", self.on_array, COMMAND)
        self.create_service(Trigger, "robot/reset", self.on_reset)
        self.create_timer(1.0 / self.values["rate_hz"], self.step)

    def on_twist(self, msg: TwistStamped) -> None:
        self._set_command(twist_to_action(msg, self.action_dim))

    def on_array(self, msg: Float32MultiArray) -> None:
        try:
            self._set_command(msg_to_array(msg, self.action_dim).reshape(-1))
        except ConversionError as exc:
            self.get_logger().warning(f"command rejected: {exc}", throttle_duration_sec=1.0)

    def _set_command(self, action: np.ndarray) -> None:
        low, high = self.env.action_space.low, self.env.action_space.high
        self.command = np.clip(action, low, high).astype(np.float32)
        self.command_s = time.monotonic()

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.pairs is None:
            self.pairs = start_goal_pairs(
                self.values["env"], self.values["episodes"], self.protocol, self.values["seed"], self.env
            )
        self.episode += 1
        start, goal = self.pairs[self.episode % len(self.pairs)]
        self.observation, self.info = self.env.reset(
            seed=self.values["seed"] + self.episode, options={"start_state": start, "goal_state": goal}
        )
        self.steps, self.done, self.success = 0, False, bool(self.info["success"])
        self.command, self.command_s = np.zeros(self.action_dim, dtype=np.float32), -np.inf
        self.goal_pub.publish(numpy_to_image(self.info["goal_observation"], self.get_clock().now().to_msg(), "goal"))
        self.publish()
        response.success = True
        response.message = (
            f"episode {self.episode}: start {np.round(start, 3).tolist()} goal {np.round(goal, 3).tolist()}"
        )
        return response

    def step(self) -> None:
        if not self.done:
            fresh = time.monotonic() - self.command_s <= self.values["command_timeout_s"]
            action = self.command if fresh else np.zeros(self.action_dim, dtype=np.float32)
            self.observation, _, _, _, self.info = self.env.step(action)
            self.steps += 1
            self.success = bool(self.info["success"])
            self.done = self.success or self.steps >= self.step_budget
        self.publish()

    def publish(self) -> None:
        stamp = self.get_clock().now().to_msg()
        self.image_pub.publish(numpy_to_image(self.observation, stamp, "camera"))
        state = np.asarray(self.info["state"], dtype=np.float32)
        self.state_pub.publish(array_to_msg(state))
        distance = self.raw.goal_distance(self.info["state"], self.info["goal_state"])
        status = DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name="sim_robot",
            hardware_id=self.values["env"],
            message="success" if self.success else ("done" if self.done else "running"),
        )
        status.values = [
            KeyValue(key=k, value=str(v))
            for k, v in (
                ("episode", self.episode),
                ("steps", self.steps),
                ("success", self.success),
                ("done", self.done),
                ("distance", f"{distance:.5f}"),
                ("state", ",".join(f"{x:.5f}" for x in state)),
                ("goal_state", ",".join(f"{x:.5f}" for x in np.asarray(self.info["goal_state"], dtype=np.float32))),
            )
        ]
        self.status_pub.publish(status)


def main(argv: list[str] | None = None) -> int:
    rclpy.init(args=sys.argv if argv is None else argv)
    node = None
    try:
        node = SimRobotNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.env.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
