"""The simulated robot bridge: camera at a fixed rate, commands move it, its watchdog stops it,
reset starts an evaluation-protocol episode and publishes the goal image; its status and reset reply
decode to the typed messages; Ctrl-C stops its process cleanly."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

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
from ami_robot.ros.executables import node_command, params_dir  # noqa: E402
from ami_robot.ros.qos import CAMERA, COMMAND, EVENTS, LATCHED  # noqa: E402
from ami_robot.runtime import spawn, stop_process_groups  # noqa: E402
from ami_sim.ros.client import SimRobotClient  # noqa: E402
from ami_sim.ros.robot_node import SimRobotNode  # noqa: E402
from ami_sim.ros.status import ResetReply, RobotMessageError, RobotStatus  # noqa: E402

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
    status: list[RobotStatus] = []
    probe.create_subscription(Image, "camera/image", lambda m: images.append(image_to_numpy(m)), CAMERA)
    probe.create_subscription(Image, "goal/image", lambda m: goals.append(image_to_numpy(m)), LATCHED)
    probe.create_subscription(
        DiagnosticStatus, "robot/status", lambda m: status.append(RobotStatus.from_msg(m)), EVENTS
    )
    command = probe.create_publisher(TwistStamped, "cmd_vel", COMMAND)

    def spin(seconds: float, velocity: tuple[float, float] | None = None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if velocity is not None:
                command.publish(action_to_twist(np.array(velocity), probe.get_clock().now().to_msg()))
            executor.spin_once(timeout_sec=0.01)

    def x() -> float:
        return status[-1].state[0]

    try:
        client = probe.create_client(Trigger, "robot/reset")
        future = client.call_async(Trigger.Request())
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        assert future.result().success and future.result().message.startswith("episode 0")
        reply = ResetReply.from_response(future.result())
        spin(0.3)
        assert goals and goals[-1].shape == (64, 64, 3) and images and images[-1].shape == (64, 64, 3)
        assert status[-1].episode == reply.episode == 0 and not status[-1].done
        assert status[-1].steps == 0, "no step counts before the robot first moves"
        spin(0.3, velocity=(0.0, 0.0))
        assert status[-1].steps == 0, "nor while it is told to stand still"
        assert status[-1].goal_state == pytest.approx(reply.goal_state, abs=1e-6)
        start_x, start_steps, start_late = x(), status[-1].steps, status[-1].late_steps
        spin(0.5, velocity=(1.0, 0.0) if start_x < 0.5 else (-1.0, 0.0))
        moved = abs(x() - start_x)
        assert moved > 0.02, "the robot follows cmd_vel"
        commanded_steps, commanded_late = status[-1].steps - start_steps, status[-1].late_steps - start_late
        assert commanded_steps > 0, "the simulation steps at its rate"
        assert commanded_late < commanded_steps / 2, "a command after every image: steps are on time"
        spin(0.4)  # commands stop: after command_timeout_s the watchdog applies the zero action
        still_x, quiet_steps, quiet_late = x(), status[-1].steps, status[-1].late_steps
        spin(0.4)
        assert x() == pytest.approx(still_x, abs=1e-6), "no command, no motion"
        assert status[-1].late_steps - quiet_late == status[-1].steps - quiet_steps > 0, "no command: every step late"
    finally:
        executor.shutdown()
        probe.destroy_node()
        robot.destroy_node()
        rclpy.shutdown(context=context)


def test_status_and_reset_reply_round_trip_and_reject_what_is_not_theirs() -> None:
    status = RobotStatus("tworoom", 3, 12, False, True, 0.125, (0.1, -0.2), (0.3, 0.4), late_steps=4)
    msg = status.to_msg()
    assert (msg.name, msg.hardware_id, msg.message) == ("sim_robot", "tworoom", "done")
    assert RobotStatus.from_msg(msg) == status
    msg.values = [kv for kv in msg.values if kv.key != "steps"]
    with pytest.raises(RobotMessageError, match="steps"):
        RobotStatus.from_msg(msg)
    reply = ResetReply(7, (0.25, 0.5), (-1.0, 2.0))
    response = reply.to_response(Trigger.Response())
    assert response.success and response.message.startswith("episode 7: ")
    assert ResetReply.from_response(response) == reply
    with pytest.raises(RobotMessageError, match="refused"):
        ResetReply.from_response(Trigger.Response(success=False, message="busy"))
    with pytest.raises(RobotMessageError, match="malformed"):
        ResetReply.from_response(Trigger.Response(success=True, message="episode seven"))


def test_ctrl_c_stops_the_robot_process_cleanly(tmp_path: Path) -> None:
    """Ctrl-C under ros2 launch: the terminal's SIGINT and the one launch forwards arrive together, and
    the second used to land in the teardown (KeyboardInterrupt traceback in destroy_node, exit -2)."""
    log = tmp_path / "sim_robot.log"
    robot = spawn(node_command("ami_sim.ros.robot_node", params_dir() / "sim_robot.yaml", rate_hz=20.0), log)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("robot_watcher", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    client = SimRobotClient(node, spin_once=lambda timeout_s: executor.spin_once(timeout_sec=timeout_s))
    try:
        client.wait_for(lambda: client.status is not None or robot.poll() is not None, 120.0, "no robot status")
        assert robot.poll() is None, log.read_text()[-3000:]
        assert client.reset(30.0).episode == 0
        deadline = time.monotonic() + 20.0
        while robot.poll() is None and time.monotonic() < deadline:
            os.killpg(robot.pid, signal.SIGINT)
            time.sleep(0.005)
        output = log.read_text()
        assert robot.poll() == 0 and "Traceback" not in output, output[-3000:]
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        stop_process_groups([robot], escalation=((signal.SIGKILL, 5.0),))
