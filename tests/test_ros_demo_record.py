"""`ami-robot demo --record BAG`: the demo's run in a ROS 2 bag that rosbags and the mcap library
read alike, with the counts the demo reports, and every message of the brain's topics in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from model_helpers import tiny_checkpoint

pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
pytest.importorskip("mcap", reason="mcap (the record extra) is not installed")


pytestmark = [pytest.mark.ros, pytest.mark.slow]
BRAIN_FLOW = {
    "/camera/image",
    "/goal/image",
    "/cmd_vel",
    "/brain/latent",
    "/brain/goal_latent",
    "/brain/settings",
    "/brain/plan",
    "/brain/plan/markers",
    "/brain/action_block",
    "/brain/surprise",
    "/diagnostics",
    "/robot/status",
}


def test_demo_records_its_run_into_a_bag_both_readers_open(tmp_path: Path) -> None:
    from mcap.reader import make_reader
    from rosbags.rosbag2 import Reader

    bag = tmp_path / "run1"
    args = ["--checkpoint", str(tiny_checkpoint(tmp_path / "ckpt", image_size=64)), "--episodes", "2", "--budget", "12"]
    args += ["--backend", "torch", "--out", str(tmp_path / "demo"), "--record", str(bag)]
    result = subprocess.run(
        [sys.executable, "-m", "ami_robot.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    reported = json.loads((tmp_path / "demo" / "demo.json").read_text())["recording"]["messages"]
    with Reader(bag) as reader:
        by_rosbags = Counter(connection.topic for connection, _, _ in reader.messages())
    with (bag / "run1.mcap").open("rb") as stream:
        by_mcap = Counter(channel.topic for _, channel, _ in make_reader(stream).iter_messages())
    assert by_rosbags == by_mcap == Counter(reported)
    assert BRAIN_FLOW <= set(by_rosbags), BRAIN_FLOW - set(by_rosbags)
    assert by_rosbags["/goal/image"] >= 2, "one goal image per episode"
    plans = by_rosbags["/brain/plan"]
    assert plans == by_rosbags["/brain/plan/markers"] == by_rosbags["/brain/action_block"], "each replan: all 3"
    assert "recorded" in result.stdout
