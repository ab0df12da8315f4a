"""The ROS-free brain: image in, safe command out, with a tiny random world model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from model_helpers import tiny_checkpoint

from ami_robot.actor import Actor
from ami_robot.actor.safety import SafetyConfig, StopReason
from ami_robot.brain import Brain, BrainPolicy
from ami_robot.configurator import BrainSettings, Configurator
from ami_robot.errors import ImageError
from ami_robot.world_model.checkpoint import load_model

SMALL_PLANNER = {"planner.samples": 32, "planner.iterations": 2, "planner.elites": 4, "planner.horizon": 3}


def image(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def make_brain(checkpoint: Path, **safety) -> Brain:
    settings = BrainSettings(checkpoint=str(checkpoint), backend="torch", safety=SafetyConfig(deadline_s=5.0, **safety))
    configurator = Configurator(settings)
    configurator.update(SMALL_PLANNER)
    return Brain(configurator)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


def test_brain_drives_inside_bounds_and_stops_without_goal_or_image(checkpoint: Path) -> None:
    brain = make_brain(checkpoint, action_low=(-0.3,), action_high=(0.3,), max_rate=0.1)
    assert brain.act(image(0), 0.0).reason is StopReason.NO_GOAL
    brain.set_goal(image(1, size=48))  # other sizes are resized by the encoder
    previous = np.zeros(2)
    for step in range(6):
        command = brain.act(image(2 + step), 0.1 * step)
        assert not command.stopped, command.detail
        assert command.replanned and command.plan.shape == (3, 2) and np.isfinite(command.cost)
        assert np.all(np.abs(command.action) <= 0.3) and np.all(np.abs(command.action - previous) <= 0.1 + 1e-6)
        assert (command.surprise is None) == (step == 0)
        previous = command.action
    assert brain.act(None, 0.5 + 0.6).reason is StopReason.STALE_IMAGE


@pytest.mark.parametrize(
    ("image_s", "now_s"),
    [(3600.0, 0.0), (0.0, float("nan")), (float("inf"), 0.0), (0.0, float("inf"))],
    ids=["image-from-the-future", "nan-now", "inf-image-time", "inf-now"],
)
def test_time_cannot_defeat_the_stale_image_stop(checkpoint: Path, image_s: float, now_s: float) -> None:
    brain = make_brain(checkpoint)
    brain.set_goal(image(1))
    brain.act(image(2), image_s)
    command = brain.act(None, now_s)
    assert command.reason is StopReason.CLOCK_FAULT and command.is_error, command
    np.testing.assert_array_equal(command.action, [0.0, 0.0])
    assert command.detail, "the stop says which time is wrong"
    fresh = brain.act(image(3), 1.0)
    assert not fresh.stopped, "a new image with a sane time recovers"


def test_malformed_image_raises_a_clear_error(checkpoint: Path) -> None:
    brain = make_brain(checkpoint)
    with pytest.raises(ImageError, match="uint8"):
        brain.act(np.zeros((32, 32, 3), np.float64), 0.0)


@dataclass
class ScriptedResult:
    actions: np.ndarray
    cost: float


class ScriptedPlanner:
    """A planner whose answer and duration the test sets."""

    backend_name = "scripted"

    def __init__(self, actions: np.ndarray, cost: float = 1.0, sleep_s: float = 0.0, error: Exception | None = None):
        self.actions, self.cost, self.sleep_s, self.error = actions, cost, sleep_s, error
        self.resets = 0

    def plan(self, z0, z_goal, previous_action=None) -> ScriptedResult:
        time.sleep(self.sleep_s)
        if self.error is not None:
            raise self.error
        return ScriptedResult(self.actions.copy(), self.cost)

    def reset(self) -> None:
        self.resets += 1


@pytest.mark.parametrize(
    ("planner", "reason"),
    [
        (ScriptedPlanner(np.zeros((3, 2)), sleep_s=0.06), StopReason.OVERRUN),
        (ScriptedPlanner(np.full((3, 2), np.nan)), StopReason.NON_FINITE),
        (ScriptedPlanner(np.zeros((3, 2)), cost=float("inf")), StopReason.NON_FINITE),
        (ScriptedPlanner(np.zeros((3, 2)), error=RuntimeError("backend lost")), StopReason.PLANNER_FAILED),
    ],
)
def test_planner_faults_stop_the_robot_with_an_error(
    checkpoint: Path, planner: ScriptedPlanner, reason: StopReason
) -> None:
    model = load_model(checkpoint)
    settings = BrainSettings(checkpoint=str(checkpoint), safety=SafetyConfig(deadline_s=0.05))
    actor = Actor(model, settings, planner=planner)
    actor.set_goal_latent(np.zeros(model.latent_dim))
    actor.observe(np.zeros(model.latent_dim), now_s=0.0)
    command = actor.tick(now_s=0.01)
    assert command.reason is reason and command.is_error
    np.testing.assert_array_equal(command.action, [0.0, 0.0])


def test_frameskip_blocks_are_sent_one_action_per_tick(tmp_path: Path) -> None:
    model = load_model(tiny_checkpoint(tmp_path, frameskip=3))
    block = np.array([[0.1, 0.0, 0.2, 0.0, 0.3, 0.0], [0.0] * 6])  # normalised = raw (no statistics)
    planner = ScriptedPlanner(block)
    actor = Actor(model, BrainSettings(checkpoint=str(tmp_path), safety=SafetyConfig(max_rate=1.0)), planner=planner)
    actor.set_goal_latent(np.zeros(model.latent_dim))
    actor.observe(np.zeros(model.latent_dim), 0.0)
    commands = [actor.tick(0.01 * t) for t in range(4)]
    assert [c.replanned for c in commands] == [True, False, False, True]
    np.testing.assert_allclose([c.action[0] for c in commands[:3]], [0.1, 0.2, 0.3], atol=1e-6)


def test_settings_and_model_switch_at_run_time(checkpoint: Path, tmp_path: Path) -> None:
    brain = make_brain(checkpoint)
    brain.set_goal(image(1))
    assert brain.act(image(2), 0.0).plan.shape[0] == 3
    brain.configurator.update({"planner.horizon": 5, "cost.smoothness_weight": 0.5})
    command = brain.act(image(3), 0.1)
    assert command.plan.shape[0] == 5 and brain.actor.settings.cost.smoothness_weight == 0.5
    other = tiny_checkpoint(tmp_path / "other", seed=1)
    old_model = brain.model
    brain.configurator.switch_model(other)
    assert not brain.act(image(4), 0.2).stopped
    assert brain.model is not old_model and brain.actor.goal is not None, "the goal is re-encoded by the new model"


def test_brain_policy_runs_the_evaluation_protocol(checkpoint: Path) -> None:
    from ami_sim.evaluation import evaluate

    result = evaluate("tworoom", BrainPolicy(make_brain(checkpoint)), episodes=1, step_budget=3, image_size=32)
    assert result.episodes == 1 and np.isfinite(result.mean_plan_ms)
