"""The plan as a MarkerArray (path, elite spread, cost and surprise), and the planner's spread in
raw action units; RViz and Foxglove configs shipped with the package name the real topics."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("visualization_msgs", reason="the ROS 2 message packages are not installed")
from builtin_interfaces.msg import Time
from visualization_msgs.msg import Marker

from ami_robot.actor import Actor
from ami_robot.actor.mpc import build_planner
from ami_robot.configurator import BrainSettings
from ami_robot.perception import EncoderConfig
from ami_robot.planning import PlannerConfig
from ami_robot.ros.conversions import plan_to_path
from ami_robot.ros.recorder_node import BRAIN_TOPICS
from ami_robot.ros.visualization import plan_markers, position_spread
from ami_robot.world_model import PredictorConfig, WorldModel, WorldModelConfig

REPO = Path(__file__).resolve().parents[1]
PLAN = np.array([[1.0, 0.0], [1.0, 0.5], [0.0, 1.0]])
STD = np.array([[0.3, 0.1], [0.4, 0.0], [0.0, 0.2]])


def test_markers_draw_the_path_its_spread_and_the_numbers() -> None:
    markers = plan_markers(PLAN, STD, 0.1, Time(sec=3), "odom", cost=1.25, surprise=0.0425).markers
    assert markers[0].action == Marker.DELETEALL, "the previous plan is cleared"
    path = next(m for m in markers if m.ns == "plan")
    expected = [(p.pose.position.x, p.pose.position.y) for p in plan_to_path(PLAN, 0.1, Time(sec=3)).poses]
    assert np.allclose([(p.x, p.y) for p in path.points], expected), "the same positions as brain/plan"
    spread = [m for m in markers if m.ns == "spread"]
    assert len(spread) == len(PLAN)
    sigma = position_spread(STD, 0.1)
    assert sigma[1] == pytest.approx([0.1 * np.hypot(0.3, 0.4), 0.1 * 0.1]), "independent steps add in variance"
    assert np.allclose([(m.scale.x, m.scale.y) for m in spread[:2]], 2 * sigma[:2])
    (text,) = [m for m in markers if m.type == Marker.TEXT_VIEW_FACING]
    assert text.text == "cost 1.25  surprise 0.0425"
    assert all(m.header.frame_id == "odom" for m in markers)
    assert all(m.scale.x > 0 and m.scale.y > 0 for m in spread), "RViz refuses zero scales"


def test_markers_without_a_spread_or_a_surprise() -> None:
    markers = plan_markers(PLAN, None, 0.1, Time(), cost=float("nan")).markers
    assert not [m for m in markers if m.ns == "spread"]
    assert markers[-1].text == "cost n/a"


def test_the_actor_reports_the_planners_spread_in_raw_action_units() -> None:
    torch.manual_seed(0)
    config = WorldModelConfig(
        latent_dim=4,
        env_action_dim=2,
        frameskip=2,
        image_size=32,
        encoder=EncoderConfig(cnn_channels=(4,), feature_dim=8, projector_hidden_dim=8),
        predictor=PredictorConfig(hidden_dim=8, depth=1),
        action_std=(2.0, 0.5),
        action_mean=(0.3, -0.1),
    )
    model = WorldModel(config).eval()
    settings = dataclasses.replace(
        BrainSettings(backend="torch"), planner=PlannerConfig(horizon=3, samples=16, iterations=2, elites=4)
    )
    planner = build_planner(model, settings)
    results = []

    class Spy:
        def plan(self, *args, **kwargs):
            results.append(planner.plan(*args, **kwargs))
            return results[-1]

    actor = Actor(model, settings, planner=Spy())
    actor.set_goal_latent(np.ones(4, np.float32))
    actor.observe(np.zeros(4, np.float32), 0.0)
    command = actor.tick(0.0)
    assert command.replanned and command.plan_std is not None
    assert command.plan_std.shape == command.plan.shape == (6, 2)
    normalised = np.asarray(results[-1].std).reshape(6, 2)
    assert command.plan_std == pytest.approx(normalised * [2.0, 0.5], rel=1e-5), "scaled by action_std, no offset"


def shipped_topics(text: str) -> set[str]:
    return set(re.findall(r"/(?:brain/[\w/]+|camera/image|goal/image|cmd_vel|diagnostics)", text))


@pytest.mark.parametrize("config", ["launch/rviz/ami_robot.rviz", "launch/foxglove/ami_robot.json"])
def test_viewer_configs_name_only_real_topics(config: str) -> None:
    text = (REPO / config).read_text()
    if config.endswith(".json"):
        json.loads(text)
    real = {"/" + name.lstrip("/") for name in BRAIN_TOPICS}
    named = shipped_topics(text)
    assert {"/brain/plan", "/brain/plan/markers", "/camera/image"} <= named
    assert named <= real, named - real


def test_viewer_configs_are_installed_into_the_share_directory() -> None:
    cmake = (REPO / "cmake" / "ros2_package.cmake").read_text()
    assert "/rviz" in cmake and "/foxglove" in cmake
