"""The simulated robot: any ami_sim environment on ROS 2 topics, as a hardware driver would be.

Publishes at `rate_hz`: `camera/image` (sensor_msgs/Image rgb8, sensor-data QoS), `robot/state`
(std_msgs/Float32MultiArray, the true low-dimensional state) and `robot/status`
(diagnostic_msgs/DiagnosticStatus: episode, steps, success, done, goal distance, late steps; encoded
by `ami_sim.ros.status.RobotStatus`). A step is late when no command came after the previous camera
image: the robot then acts on the older command. Takes
`cmd_vel` (geometry_msgs/TwistStamped: linear.x, linear.y, angular.z -> action[0..2]) or
`command` (std_msgs/Float32MultiArray) per `command_type`; a command older than
`command_timeout_s` is replaced by the zero action (the robot's own watchdog).

`robot/reset` (std_srvs/Trigger) starts the next episode: the start/goal pair comes from the
evaluation protocol (`ami_sim.evaluation.start_goal_pairs`), and the goal image is published on
`goal/image` (transient local); the reply is a `ami_sim.ros.status.ResetReply`. An episode ends on
success or after the step budget; the robot then holds still and keeps publishing its camera. The
episode's first camera image comes at the tick after the reset, so that the brain has its new goal
before it. With `start_on_motion` (the default) the steps count from the first nonzero command that
came after that image: until then the robot holds without stepping the simulation, as offline
evaluation makes the brain's first plan before its first step (and a command that answers an image of
the episode before is not taken for motion).
`ami_sim.ros.client.SimRobotClient` is the other end.
"""

from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray
from std_srvs.srv import Trigger

from ami_robot.ros import params as P
from ami_robot.ros.conversions import ConversionError, array_to_msg, msg_to_array, numpy_to_image, twist_to_action
from ami_robot.ros.qos import CAMERA, COMMAND, EVENTS, LATCHED, LATEST
from ami_robot.ros.runtime import serve
from ami_sim.evaluation import start_goal_pairs
from ami_sim.registry import make_env, spec
from ami_sim.ros.params import SIM_ROBOT, episode_protocol
from ami_sim.ros.status import ResetReply, RobotStatus


class SimRobotNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("sim_robot", **kwargs)
        self.values = P.declare_parameters(self, SIM_ROBOT)
        name = self.values["env"]
        self.protocol = episode_protocol(name, self.values["goal_offset"], self.values["step_budget"])
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
        self.moving = False
        self.command = np.zeros(self.action_dim, dtype=np.float32)
        self.command_s = -np.inf
        self.image_s = -np.inf
        self.episode_image_s = np.inf
        """When the current episode's first camera image went out (monotonic s; inf: not yet)."""
        self.late_steps = 0

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
        self.steps, self.done, self.success, self.late_steps = 0, False, bool(self.info["success"]), 0
        self.moving = not self.values["start_on_motion"]
        self.command, self.command_s = np.zeros(self.action_dim, dtype=np.float32), -np.inf
        self.goal_pub.publish(numpy_to_image(self.info["goal_observation"], self.get_clock().now().to_msg(), "goal"))
        self.episode_image_s = np.inf
        self.publish(camera=False)
        return ResetReply(self.episode, _vector(start), _vector(goal)).to_response(response)

    def step(self) -> None:
        if not self.done:
            fresh = time.monotonic() - self.command_s <= self.values["command_timeout_s"]
            action = self.command if fresh else np.zeros(self.action_dim, dtype=np.float32)
            self.moving = self.moving or (self.command_s > self.episode_image_s and bool(np.any(action != 0)))
            if not self.moving:
                self.publish()
                return
            self.late_steps += self.command_s < self.image_s
            self.observation, _, _, _, self.info = self.env.step(action)
            self.steps += 1
            self.success = bool(self.info["success"])
            self.done = self.success or self.steps >= self.step_budget
        self.publish()

    def publish(self, camera: bool = True) -> None:
        stamp = self.get_clock().now().to_msg()
        if camera:
            self.image_pub.publish(numpy_to_image(self.observation, stamp, "camera"))
            self.image_s = time.monotonic()
            self.episode_image_s = min(self.episode_image_s, self.image_s)
        state = np.asarray(self.info["state"], dtype=np.float32)
        self.state_pub.publish(array_to_msg(state))
        status = RobotStatus(
            env=self.values["env"],
            episode=self.episode,
            steps=self.steps,
            success=self.success,
            done=self.done,
            distance=float(self.raw.goal_distance(self.info["state"], self.info["goal_state"])),
            state=_vector(state),
            goal_state=_vector(self.info["goal_state"]),
            late_steps=self.late_steps,
        )
        self.status_pub.publish(status.to_msg())

    def destroy_node(self) -> None:
        self.env.close()
        super().destroy_node()


def _vector(values: np.ndarray) -> tuple[float, ...]:
    """A state as it goes on the wire: floats to 1e-6, which keeps `ros2 topic echo` readable."""
    return tuple(round(float(x), 6) for x in np.asarray(values, dtype=np.float64).reshape(-1))


def main(argv: list[str] | None = None) -> int:
    """Run the robot until Ctrl-C or SIGTERM (`ami_robot.ros.runtime.serve`)."""
    return serve([SimRobotNode], argv)


if __name__ == "__main__":
    raise SystemExit(main())
