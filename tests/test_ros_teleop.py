"""The teleoperation stand-in: resets the simulated robot, answers every camera image with a command
stamped as that image, and drives the robot to its goals."""

from __future__ import annotations

import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ami_robot.ros.qos import CAMERA, COMMAND  # noqa: E402
from ami_sim.ros.robot_node import SimRobotNode  # noqa: E402
from ami_sim.ros.teleop_node import TeleopNode  # noqa: E402

pytestmark = pytest.mark.ros


def test_teleop_resets_the_robot_and_answers_each_image_with_a_command_stamped_as_it() -> None:
    context = rclpy.Context()
    rclpy.init(context=context)
    robot = SimRobotNode(
        context=context,
        parameter_overrides=[
            Parameter("rate_hz", value=50.0),
            Parameter("episodes", value=4),
            Parameter("goal_offset", value=10),
            Parameter("step_budget", value=30),
        ],
    )
    teleop = TeleopNode(context=context, parameter_overrides=[Parameter("noise", value=0.1)])
    watcher = rclpy.create_node("watcher", context=context)
    image_stamps: set[tuple[int, int]] = set()
    commands: list[TwistStamped] = []
    watcher.create_subscription(
        Image, "camera/image", lambda m: image_stamps.add((m.header.stamp.sec, m.header.stamp.nanosec)), CAMERA
    )
    watcher.create_subscription(TwistStamped, "cmd_vel", commands.append, COMMAND)
    executor = SingleThreadedExecutor(context=context)
    for node in (robot, teleop, watcher):
        executor.add_node(node)
    try:
        deadline = time.monotonic() + 30.0
        while (robot.episode < 2 or len(commands) <= 10) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert robot.episode >= 2, "the teleop resets the robot when an episode ends"
        assert len(commands) > 10
        moving = [c for c in commands if abs(c.twist.linear.x) + abs(c.twist.linear.y) > 0]
        assert moving, "the teleop drives"
        assert all((c.header.stamp.sec, c.header.stamp.nanosec) in image_stamps for c in commands)
    finally:
        executor.shutdown()
        for node in (robot, teleop, watcher):
            node.destroy_node()
        rclpy.shutdown(context=context)
