"""brain.launch.py and sim.launch.py run for real with ROS 2 launch, when it is installed.

`launch` and `launch_ros` are not on PyPI (PyPI's `launch` is another project), so on a machine
with only the pip-installed stack this module is skipped; the static checks in
test_launch_static.py always run. The package files are installed into a temporary prefix with the
project's own CMake rules, which is put first on AMENT_PREFIX_PATH.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("launch_ros", reason="ROS 2 launch (launch, launch_ros) is not installed; it is not on PyPI")
if shutil.which("cmake") is None:
    pytest.skip("cmake is needed to install the package files into a temporary prefix", allow_module_level=True)

import rclpy
from geometry_msgs.msg import TwistStamped
from std_srvs.srv import Trigger

from ami_robot.perception import EncoderConfig
from ami_robot.ros.qos import COMMAND
from ami_robot.world_model import PredictorConfig, WorldModel, WorldModelConfig, save_checkpoint

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


def test_sim_launch_drives_the_simulated_robot(installed_prefix: Path, tmp_path: Path) -> None:
    from ament_index_python.packages import get_package_share_directory

    assert Path(get_package_share_directory("ami_robot")) == installed_prefix / "share" / "ami_robot"
    config = WorldModelConfig(
        latent_dim=8,
        env_action_dim=2,
        image_size=64,
        encoder=EncoderConfig(cnn_channels=(4, 8), feature_dim=16, projector_hidden_dim=16),
        predictor=PredictorConfig(hidden_dim=16, depth=1),
        action_low=(-1.0, -1.0),
        action_high=(1.0, 1.0),
    )
    save_checkpoint(tmp_path / "tiny", WorldModel(config))

    log = (tmp_path / "launch.log").open("w")
    launch = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUN_LAUNCH_FILE,
            str(REPO / "launch" / "sim.launch.py"),
            f"checkpoint:={tmp_path / 'tiny'}",
            "backend:=torch",
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
    commands: list[np.ndarray] = []
    node.create_subscription(
        TwistStamped, "cmd_vel", lambda m: commands.append(np.array([m.twist.linear.x, m.twist.linear.y])), COMMAND
    )
    try:
        client = node.create_client(Trigger, "robot/reset")
        assert client.wait_for_service(timeout_sec=60.0), (tmp_path / "launch.log").read_text()[-3000:]
        future = client.call_async(Trigger.Request())
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        assert future.result() is not None and future.result().success
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and not any(np.any(a != 0) for a in commands):
            executor.spin_once(timeout_sec=0.1)
        assert any(np.any(a != 0) for a in commands), (tmp_path / "launch.log").read_text()[-3000:]
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
