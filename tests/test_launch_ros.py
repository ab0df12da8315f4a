"""brain.launch.py and sim.launch.py run for real with ROS 2 launch, when it is installed.

`launch` and `launch_ros` are not on PyPI (PyPI's `launch` is another project), so on a machine
with only the pip-installed stack this module is skipped; the static checks in
test_launch_static.py always run. The package files are installed into a temporary prefix with the
project's own CMake rules, which is put first on AMENT_PREFIX_PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from model_helpers import tiny_checkpoint

pytest.importorskip("launch_ros", reason="ROS 2 launch (launch, launch_ros) is not installed; it is not on PyPI")
if shutil.which("cmake") is None:
    pytest.skip("cmake is needed to install the package files into a temporary prefix", allow_module_level=True)

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.srv import GetParameters
from std_msgs.msg import Float32MultiArray
from std_srvs.srv import Trigger

from ami_robot.ros.qos import COMMAND, EVENTS

pytestmark = [pytest.mark.ros, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
RUN_LAUNCH_FILE = """
import sys
from launch import LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
service = LaunchService()
service.include_launch_description(IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=[a.split(":=", 1) for a in sys.argv[2:]]))
sys.exit(service.run())
"""


@pytest.fixture(scope="module")
def installed_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ros_prefix")
    (root / "CMakeLists.txt").write_text(
        f"cmake_minimum_required(VERSION 3.18)\nproject(install_check NONE)\ninclude({REPO}/cmake/ros2_package.cmake)\n"
    )
    prefix = root / "prefix"
    subprocess.run(
        [
            "cmake",
            "-S",
            str(root),
            "-B",
            str(root / "build"),
            f"-DCMAKE_INSTALL_PREFIX={prefix}",
            f"-DPython_EXECUTABLE={sys.executable}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(["cmake", "--install", str(root / "build")], check=True, capture_output=True, timeout=60)
    os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join([str(prefix), os.environ.get("AMENT_PREFIX_PATH", "")])
    return prefix


@contextlib.contextmanager
def sim_launch(
    tmp_path: Path, *arguments: str, tiny_model: bool = True
) -> Iterator[tuple[rclpy.node.Node, rclpy.executors.Executor, Path]]:
    """sim.launch.py with `arguments` ("name:=value") and a tiny checkpoint (else the launch file's
    default), after the robot reset; yields a probe node in this process, its executor and the launch log."""
    log_path = tmp_path / "launch.log"
    log = log_path.open("w")
    launch = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUN_LAUNCH_FILE,
            str(REPO / "launch" / "sim.launch.py"),
            *([f"checkpoint:={tiny_checkpoint(tmp_path / 'tiny', image_size=64)}"] if tiny_model else []),
            *arguments,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("launch_probe", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        client = node.create_client(Trigger, "robot/reset")
        assert client.wait_for_service(timeout_sec=60.0), log_path.read_text()[-3000:]
        future = client.call_async(Trigger.Request())
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        assert future.result() is not None and future.result().success
        yield node, executor, log_path
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        os.killpg(launch.pid, signal.SIGINT)
        try:
            launch.wait(timeout=30.0)
        except subprocess.TimeoutExpired:
            os.killpg(launch.pid, signal.SIGKILL)
            launch.wait(timeout=10.0)
        log.close()


def spin_until(executor: rclpy.executors.Executor, predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        executor.spin_once(timeout_sec=0.1)
    return predicate()


@pytest.mark.parametrize("command_type", ["twist", "array"])
def test_sim_launch_drives_the_simulated_robot(installed_prefix: Path, tmp_path: Path, command_type: str) -> None:
    """Each command type on its own topic: TwistStamped on cmd_vel, Float32MultiArray on command."""
    from ament_index_python.packages import get_package_share_directory

    assert Path(get_package_share_directory("ami_robot")) == installed_prefix / "share" / "ami_robot"
    commands: dict[str, list[np.ndarray]] = {"twist": [], "array": []}
    with sim_launch(tmp_path, "backend:=torch", f"command_type:={command_type}") as (node, executor, log):
        node.create_subscription(
            TwistStamped,
            "cmd_vel",
            lambda m: commands["twist"].append(np.array([m.twist.linear.x, m.twist.linear.y])),
            COMMAND,
        )
        node.create_subscription(
            Float32MultiArray, "command", lambda m: commands["array"].append(np.array(m.data)), COMMAND
        )
        moving = spin_until(executor, lambda: any(np.any(a != 0) for a in commands[command_type]), 60.0)
        assert moving, log.read_text()[-3000:]
    other = "array" if command_type == "twist" else "twist"
    assert not commands[other], f"nothing on the {other} topic"


def test_an_unavailable_backend_falls_back_with_a_warning(installed_prefix: Path, tmp_path: Path) -> None:
    from ami_robot.planning.backends import available_backends, cuda_unavailable_reason

    if cuda_unavailable_reason() is None:
        pytest.skip("backend cuda is available here")
    planner_status: list[tuple[int, str, dict[str, str]]] = []

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith("/planner"):
                values = {kv.key: kv.value for kv in status.values}
                planner_status.append((int.from_bytes(status.level, "little"), status.message, values))

    with sim_launch(tmp_path, "backend:=cuda") as (node, executor, log):
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, EVENTS)

        def controlling_on_the_fallback() -> bool:
            return any(
                m.startswith("controlling; backend cuda unavailable") and v.get("backend") == available_backends()[0]
                for _, m, v in planner_status
            )

        assert spin_until(executor, controlling_on_the_fallback, 60.0), (planner_status[-5:], log.read_text()[-3000:])
    level, message, _ = next(s for s in planner_status if s[1].startswith("controlling; backend cuda"))
    assert level == 1 and "every other setting kept" in message


def test_sim_launch_drives_the_robot_with_the_model_shipped_for_its_env(installed_prefix: Path, tmp_path: Path) -> None:
    """The PushT model, with its own real-time budget (params/brain_pusht.yaml: it plans ahead)."""
    from ami_robot.checkpoints import shipped_checkpoint

    with sim_launch(tmp_path, "env:=pusht", tiny_model=False) as (node, executor, log):
        client = node.create_client(GetParameters, "planner/get_parameters")
        assert client.wait_for_service(timeout_sec=30.0), log.read_text()[-3000:]
        future = client.call_async(GetParameters.Request(names=["checkpoint", "plan_ahead"]))
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        assert future.result() is not None, log.read_text()[-3000:]
    checkpoint, plan_ahead = future.result().values
    assert (checkpoint.string_value, plan_ahead.bool_value) == (str(shipped_checkpoint("pusht")), True)
