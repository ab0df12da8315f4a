"""Starting the package's ROS 2 executables as plain processes (the demo, tests): their parameter
files and command lines. Nothing here imports rclpy."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

BRAIN_NODES = ("configurator", "perception", "planner", "memory")
"""The brain's nodes; each runs alone as `ami_robot.ros.<name>_node`, all together as `ami_robot.ros.brain_node`."""

FOXGLOVE_HOST = "127.0.0.1"
"""The only address the Foxglove live view (`ami_robot.ros.foxglove_node`) binds: nothing leaves this machine."""

FOXGLOVE_PORT = 8765
"""Default port of the Foxglove live view (Foxglove's usual one)."""


def params_dir() -> Path:
    """launch/params of the checkout this code runs from (an editable install), else
    share/ami_robot/params of the installed ROS 2 package."""
    checkout = Path(__file__).resolve().parents[2] / "launch" / "params"
    if checkout.is_dir():
        return checkout
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("ami_robot")) / "params"


def brain_params_file(shipped_env: str | None = None) -> Path:
    """The brain's parameter YAML: `brain_<shipped_env>.yaml`, the real-time budget of the model shipped
    for that env, where the brain drives with it and one exists; else `brain.yaml`."""
    directory = params_dir()
    own = directory / f"brain_{shipped_env}.yaml"
    return own if shipped_env is not None and own.is_file() else directory / "brain.yaml"


def node_command(
    module: str, params_file: Path, *ros_args: str, node_args: Sequence[str] = (), **parameters: object
) -> list[str]:
    """`python -m <module> <node_args> --ros-args --params-file <params_file> -p <name>:=<value>... <ros_args>`."""
    overrides = [arg for name, value in parameters.items() for arg in ("-p", f"{name}:={value}")]
    ros = ["--ros-args", "--params-file", str(params_file), *overrides, *ros_args]
    return [sys.executable, "-m", module, *node_args, *ros]


def recorder_command(bag: Path) -> list[str]:
    """The recorder node's command line: the brain's topics into the new bag directory `bag`."""
    return [sys.executable, "-m", "ami_robot.ros.recorder_node", "--ros-args", "-p", f"path:={bag.resolve()}"]


def recorder_taps_name(recorder: str) -> str:
    """The node that holds the subscriptions of the recorder node named `recorder` (what it records waits there)."""
    return f"{recorder}_taps"


def foxglove_command(port: int) -> list[str]:
    """The Foxglove node's command line: the brain's topics live on ws://127.0.0.1:`port` (0: any free port)."""
    return [sys.executable, "-m", "ami_robot.ros.foxglove_node", "--ros-args", "-p", f"port:={port}"]


def foxglove_url(port: int) -> str:
    """Where Foxglove finds the live view served on `port` (Open connection -> Foxglove WebSocket)."""
    return f"ws://{FOXGLOVE_HOST}:{port}"
