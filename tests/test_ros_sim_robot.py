"""The simulated robot bridge: camera at a fixed rate, commands move it, its watchdog stops it,
reset starts an evaluation-protocol episode and publishes the goal image."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ami_robot.ros.conversions import action_to_twist, image_to_numpy  # noqa: E402
from ami_robot.ros.qos import CAMERA, COMMAND, EVENTS, LATCHED  # noqa: E402
from ami_sim.ros.robot_node import SimRobotNode  # noqa: E402

pytestmark = pytest.mark.ros


def test_sim_robot_moves_on_commands_and_stops_without_them() -> None:
    context = rclpy.Context()
    rclpy.init(context=context)
    robot = SimRobotNode(
        context=context,
        parameter_overrides=[
            Parameter("rate_hz", value=50.0),
            Parameter("command_timeout_s", value=0.2),
            Parameter("step_budget", value=1000),
            Parameter("episodes", value=1),
        ],
    )
    probe = rclpy.create_node("robot_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(robot)
    executor.add_node(probe)
    images: list[np.ndarray] = []
    goals: list[np.ndarray] = []
    status: list[dict[str, str]] = []
    probe.create_subscription(Image, "camera/image", lambda m: images.append(image_to_numpy(m)), CAMERA)
    probe.create_subscription(Image, "goal/image", lambda m: goals.append(image_to_numpy(m)), LATCHED)
    probe.create_subscription(
        DiagnosticStatus, "robot/status", lambda m: status.append({kv.key: kv.value for kv in m.values}), EVENTS
    )
    command = probe.create_publisher(TwistStamped, "cmd_vel", COMMAND)

    def spin(seconds: float, velocity: tuple[float, float] | None = None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if velocity is not None:
                command.publish(action_to_twist(np.array(velocity), probe.get_clock().now().to_msg()))
            executor.spin_once(timeout_sec=0.01)

    def x() -> float:
        return float(status[-1]["state"].split(",")[0])

    try:
        client = probe.create_client(Trigger, "robot/reset")
        future = client.call_async(Trigger.Request())
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        assert future.result().success and future.result().message.startswith("episode 0")
        spin(0.3)
        assert goals and goals[-1].shape == (64, 64, 3) and images and images[-1].shape == (64, 64, 3)
        assert status[-1]["episode"] == "0" and status[-1]["done"] == "False"
        start_x, start_steps = x(), int(status[-1]["steps"])
        spin(0.5, velocity=(1.0, 0.0) if start_x < 0.5 else (-1.0, 0.0))
        moved = abs(x() - start_x)
        assert moved > 0.02, "the robot follows cmd_vel"
        assert int(status[-1]["steps"]) > start_steps, "the simulation steps at its rate"
        spin(0.4)  # commands stop: after command_timeout_s the watchdog applies the zero action
        still_x = x()
        spin(0.4)
        assert x() == pytest.approx(still_x, abs=1e-6), "no command, no motion"
    finally:
        executor.shutdown()
        probe.destroy_node()
        robot.env.close()
        robot.destroy_node()
        rclpy.shutdown(context=context)
