"""Teleoperation stand-in: drives the simulated robot as a person with a joystick would, so that a
recording (`ami-robot record`) holds demonstrations for `ami-robot train --bag`.

It watches the scene as the person would: `robot/status` (the robot's true state and its goal,
`ami_sim.ros.status.RobotStatus`) and `camera/image`. On every camera image it publishes one
geometry_msgs/TwistStamped on `cmd_vel`: the environment's scripted expert with the noise model of
the published data collection (`ami_sim.registry.make_expert`: Gaussian action noise of std `noise`,
the previous command again with probability `repeat_probability`; by default 2.0 and 0.05, the noise
of the TwoRoom recipe's collection, ami_robot/recipes/tworoom_cpu.yaml). The command's header carries the
stamp of the image it answers: the robot applies it on its next step, so a recording's zero-order
hold (`ami_robot.data.bags`: a frame takes the last command stamped at or before it) pairs each frame
with the command that moved the robot on from it.

When the robot reports its episode done (goal reached or step budget spent, and before the first
episode) the person lets go of the stick (zero command) and calls `robot/reset` for the next
start/goal pair, so a long recording covers the arena.
"""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from ami_robot.ros import params as P
from ami_robot.ros.conversions import action_to_twist
from ami_robot.ros.qos import CAMERA, COMMAND, EVENTS
from ami_robot.ros.runtime import serve
from ami_sim.policies import ExpertPolicy
from ami_sim.registry import make_expert
from ami_sim.ros.status import RobotMessageError, RobotStatus

TELEOP = [
    P.ParameterSpec("noise", 2.0, "std of the Gaussian noise added to the expert's action (action units)", 0.0, 10.0),
    P.ParameterSpec("repeat_probability", 0.05, "probability of sending the previous command again", 0.0, 1.0),
    P.ParameterSpec("seed", 0, "seed of the noise", 0, 2**31 - 1),
    P.ParameterSpec("frame_id", "base_link", "frame_id of the commands"),
]


class TeleopNode(Node):
    """The scripted expert with noise on `cmd_vel`, one command per camera image; resets finished episodes."""

    def __init__(self, **kwargs) -> None:
        super().__init__("teleop", **kwargs)
        self.values = P.declare_parameters(self, TELEOP)
        self.status: RobotStatus | None = None
        self.expert: ExpertPolicy | None = None
        self.episode = -1
        self.pending_reset: Future | None = None
        self.command_pub = self.create_publisher(TwistStamped, "cmd_vel", COMMAND)
        self.reset_client = self.create_client(Trigger, "robot/reset")
        self.create_subscription(DiagnosticStatus, "robot/status", self.on_status, EVENTS)
        self.create_subscription(Image, "camera/image", self.on_camera, CAMERA)

    def on_status(self, msg: DiagnosticStatus) -> None:
        try:
            self.status = RobotStatus.from_msg(msg)
        except RobotMessageError as exc:
            self.get_logger().warning(str(exc), throttle_duration_sec=1.0)
            return
        if self.expert is None:
            self.expert = make_expert(
                self.status.env,
                noise=self.values["noise"],
                seed=self.values["seed"],
                repeat_probability=self.values["repeat_probability"],
            )
        if self.status.episode != self.episode and not self.status.done:
            self.episode = self.status.episode
            self.expert.reset({})
        if self.status.done and self.pending_reset is None and self.reset_client.service_is_ready():
            self.pending_reset = self.reset_client.call_async(Trigger.Request())
            self.pending_reset.add_done_callback(self.on_reset_reply)

    def on_reset_reply(self, future: Future) -> None:
        self.pending_reset = None
        reply = future.result()
        if reply is None or not reply.success:
            self.get_logger().warning(f"the robot refused the reset: {reply and reply.message}")

    def on_camera(self, msg: Image) -> None:
        """Answer the image with a command stamped as the image (module docstring)."""
        if self.status is None or self.expert is None:
            return
        status = self.status
        if status.done or self.pending_reset is not None:
            action = np.zeros(len(self.expert.action_space.low), dtype=np.float32)
        else:
            info = {"state": np.asarray(status.state), "goal_state": np.asarray(status.goal_state)}
            action = self.expert.act(np.empty((0, 0, 3), np.uint8), info)
        self.command_pub.publish(action_to_twist(action, msg.header.stamp, self.values["frame_id"]))


def main(argv: list[str] | None = None) -> int:
    """Run the teleoperation stand-in until Ctrl-C or SIGTERM (`ami_robot.ros.runtime.serve`)."""
    return serve([TeleopNode], argv)


if __name__ == "__main__":
    raise SystemExit(main())
