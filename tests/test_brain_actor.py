"""The ROS-free brain: image in, safe command out, with a tiny random world model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import tiny_checkpoint

from ami_robot.actor import Actor, BrainCommand
from ami_robot.actor.safety import SafetyConfig, StopReason
from ami_robot.brain import Brain, BrainPolicy
from ami_robot.configurator import BrainSettings, Configurator
from ami_robot.errors import ConfigError, ImageError
from ami_robot.planning import PlannerConfig
from ami_robot.world_model.checkpoint import load_model

SMALL_PLANNER = {"planner.samples": 32, "planner.iterations": 2, "planner.elites": 4, "planner.horizon": 3}


def image(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def make_brain(checkpoint: Path, **safety: float) -> Brain:
    settings = BrainSettings(
        checkpoint=str(checkpoint), backend="torch", safety=SafetyConfig(**{"deadline_s": 5.0, **safety})
    )
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
        self.calls: list[tuple[np.ndarray, np.ndarray | None, str]] = []  # (z0, previous_action, thread name)
        self.advances: list[int] = []

    def plan(self, z0, z_goal, previous_action=None, advance=1) -> ScriptedResult:
        self.calls.append((np.array(z0), previous_action, threading.current_thread().name))
        self.advances.append(advance)
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


def test_replan_every_executes_that_many_model_steps_of_each_plan(tmp_path: Path) -> None:
    model = load_model(tiny_checkpoint(tmp_path, frameskip=3))
    blocks = np.array([[0.1, 0.0, 0.2, 0.0, 0.3, 0.0], [0.4, 0.0, 0.5, 0.0, 0.6, 0.0], [0.9] * 6], np.float32)
    planner = ScriptedPlanner(blocks)
    settings = BrainSettings(checkpoint=str(tmp_path), replan_every=2, safety=SafetyConfig(max_rate=1.0))
    actor = Actor(model, settings, planner=planner)
    actor.set_goal_latent(np.zeros(model.latent_dim))
    observed = [np.full(model.latent_dim, 0.1 * t, np.float32) for t in range(7)]
    commands = []
    for t in range(7):
        actor.observe(observed[t], 0.01 * t)
        commands.append(actor.tick(0.01 * t))
    assert [c.replanned for c in commands] == [True] + [False] * 5 + [True]
    np.testing.assert_allclose([c.action[0] for c in commands[:6]], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], atol=1e-6)
    assert len(planner.calls) == 2 and planner.advances == [2, 2], "the warm start skips the two executed steps"
    np.testing.assert_allclose(planner.calls[1][0][-1], observed[6])
    np.testing.assert_allclose(planner.calls[1][1], blocks[1], err_msg="the rate limit starts from the last block")
    with torch.inference_mode():
        expected = actor.model.predict(torch.from_numpy(observed[0])[None, None], torch.from_numpy(blocks[:1]))[0]
    assert commands[3].surprise == pytest.approx(float(np.mean((observed[3] - expected.numpy()) ** 2)), rel=1e-5)
    assert [c.surprise is None for c in commands[1:3] + commands[4:6]] == [True] * 4
    np.testing.assert_allclose(actor.memory.last_actions(3), blocks[[0, 1, 0]], err_msg="every executed block")
    started = [(t, c.block) for t, c in enumerate(commands) if c.block is not None]
    assert [t for t, _ in started] == [0, 3, 6], "each model step's first tick names its block"
    np.testing.assert_allclose([block for _, block in started], blocks[[0, 1, 0]])


def test_replan_every_cannot_exceed_the_horizon() -> None:
    with pytest.raises(ConfigError, match="replan_every"):
        BrainSettings(replan_every=4, planner=PlannerConfig(horizon=3))


def plan_ahead_actor(
    directory: Path, planner: ScriptedPlanner, executor: ThreadPoolExecutor | None = None, replan_every: int = 1
) -> Actor:
    model = load_model(tiny_checkpoint(directory, frameskip=3))
    settings = BrainSettings(
        checkpoint=str(directory),
        plan_ahead=True,
        replan_every=replan_every,
        safety=SafetyConfig(max_rate=1.0, deadline_s=5.0),
    )
    actor = Actor(model, settings, planner=planner, executor=executor)
    actor.set_goal_latent(np.zeros(model.latent_dim))
    return actor


def test_plan_ahead_plans_the_next_model_step_from_the_predicted_latent(tmp_path: Path) -> None:
    block = np.array([[0.1, 0.0, 0.2, 0.0, 0.3, 0.0], [0.0] * 6], np.float32)
    planner = ScriptedPlanner(block)
    actor = plan_ahead_actor(tmp_path, planner)
    observed = [np.full(actor.model.latent_dim, float(t), np.float32) for t in range(7)]
    commands = []
    for t in range(7):
        actor.observe(observed[t], 0.01 * t)
        commands.append(actor.tick(0.01 * t))
    queued = [(False, False)] * 2
    assert [(c.replanned, c.prepared) for c in commands] == [
        (True, False),
        *queued,
        (True, True),
        *queued,
        (True, True),
    ]
    assert [c.stopped for c in commands] == [False] * 7
    with torch.inference_mode():
        predicted = actor.model.predict(torch.from_numpy(observed[0])[None, None], torch.from_numpy(block[:1]))[0]
    z0, previous, _ = planner.calls[1]  # made right after the first block was commanded
    np.testing.assert_allclose(z0[-1], predicted.numpy(), atol=1e-6)
    np.testing.assert_allclose(previous, block[0])
    assert len(planner.calls) == 4, "one plan per model step, each made one step ahead"
    np.testing.assert_allclose([c.action[0] for c in commands[3:6]], [0.1, 0.2, 0.3], atol=1e-6)


def test_plan_ahead_with_replan_every_starts_from_the_latent_after_the_executed_blocks(tmp_path: Path) -> None:
    blocks = np.array([[0.1] * 6, [0.2] * 6, [0.3] * 6], np.float32)
    planner = ScriptedPlanner(blocks)
    actor = plan_ahead_actor(tmp_path, planner, replan_every=2)
    z0 = np.full(actor.model.latent_dim, 0.5, np.float32)
    actor.observe(z0, 0.0)
    assert actor.tick(0.0).replanned
    with torch.inference_mode():
        rollout = actor.model.rollout(torch.from_numpy(z0)[None], torch.from_numpy(blocks[None, :2]))[0]
    prepared_z0, previous, _ = planner.calls[1]
    np.testing.assert_allclose(prepared_z0[-1], rollout[1].numpy(), atol=1e-6)
    np.testing.assert_allclose(previous, blocks[1])


def test_plan_ahead_runs_on_the_executor_while_images_are_answered_at_once(tmp_path: Path) -> None:
    planner = ScriptedPlanner(np.zeros((2, 6)), sleep_s=0.2)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan-ahead") as executor:
        actor = plan_ahead_actor(tmp_path, planner, executor)

        def answer(t: int) -> tuple[BrainCommand, float]:
            actor.observe(np.zeros(actor.model.latent_dim), 0.01 * t)
            start = time.perf_counter()
            return actor.tick(0.01 * t), time.perf_counter() - start

        holding, took_s = answer(0)
        assert holding.reason is StopReason.FIRST_PLAN and not holding.is_error and took_s < 0.1
        np.testing.assert_array_equal(holding.action, [0.0, 0.0])
        time.sleep(0.3)
        first, _ = answer(1)
        assert first.replanned and first.prepared and not first.stopped
        for t in (2, 3):
            queued, took_s = answer(t)
            assert not queued.replanned and took_s < 0.1, "queued ticks do not wait for the plan made ahead"
        assert answer(4)[0].prepared
        assert [thread.startswith("plan-ahead") for _, _, thread in planner.calls[:2]] == [True] * 2
        start = time.perf_counter()
        actor.set_goal_latent(np.ones(actor.model.latent_dim))  # drops the plan under way without waiting for it
        holding, took_s = answer(5)
        assert holding.reason is StopReason.FIRST_PLAN and time.perf_counter() - start < 0.1
        time.sleep(0.7)  # the dropped plan, the planner's reset, then the new goal's first plan, in that order
        assert planner.resets == 2, "one reset per goal"
        z0, previous_action, _ = planner.calls[-1]  # the new goal's first plan: from the image, no block yet
        np.testing.assert_array_equal(z0, np.zeros((1, actor.model.latent_dim)))
        assert previous_action is None
        assert answer(6)[0].prepared


def test_plan_ahead_failure_stops_the_robot(tmp_path: Path) -> None:
    planner = ScriptedPlanner(np.zeros((2, 6)))
    actor = plan_ahead_actor(tmp_path, planner)
    actor.observe(np.zeros(actor.model.latent_dim), 0.0)
    actor.tick(0.0)
    planner.error = RuntimeError("backend lost")  # too late for the plan made already
    for t in (1, 2, 3):
        actor.observe(np.zeros(actor.model.latent_dim), 0.01 * t)
        assert not actor.tick(0.01 * t).stopped
    actor.observe(np.zeros(actor.model.latent_dim), 0.04)
    actor.tick(0.04)
    actor.observe(np.zeros(actor.model.latent_dim), 0.05)
    assert actor.tick(0.05).reason is StopReason.NONE
    actor.observe(np.zeros(actor.model.latent_dim), 0.06)
    assert actor.tick(0.06).reason is StopReason.PLANNER_FAILED


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

    policy = BrainPolicy(make_brain(checkpoint))
    result = evaluate("tworoom", policy, episodes=1, step_budget=3, image_size=32)
    assert result.episodes == 1 and np.isfinite(result.mean_plan_ms) and policy.overruns == 0


def test_brain_policy_counts_plans_over_the_deadline_and_warns_once(
    checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Offline evaluation keeps the real-time deadline, so a plan that overruns it must not pass unseen."""
    from ami_sim.evaluation import evaluate

    policy = BrainPolicy(make_brain(checkpoint, deadline_s=1e-9))
    with caplog.at_level("WARNING", logger="ami_robot.brain"):
        evaluate("tworoom", policy, episodes=1, step_budget=3, image_size=32)
    assert policy.overruns == 3, "every tick replans after a stop, and every plan overruns"
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "overran safety.deadline_s" in r.message]
    assert len(warnings) == 1, "the first overrun is warned of; the count says how many followed"


def test_a_new_goal_is_planned_for_from_the_next_image(tmp_path: Path) -> None:
    """A goal may come with a reset that moves the robot: the image before it must not start the plan."""
    planner = ScriptedPlanner(np.zeros((2, 6)))
    actor = plan_ahead_actor(tmp_path, planner)
    before, after = (np.full(actor.model.latent_dim, v, np.float32) for v in (1.0, 2.0))
    actor.observe(before, 0.0)
    actor.set_goal_latent(np.ones(actor.model.latent_dim))
    assert actor.tick(0.01).reason is StopReason.NO_IMAGE and not planner.calls
    actor.observe(after, 0.02)
    assert actor.tick(0.02).replanned
    np.testing.assert_array_equal(planner.calls[0][0][-1], after)


def test_planning_ahead_the_first_plan_toward_a_goal_is_no_overrun(tmp_path: Path) -> None:
    """Offline, as on the robot (which holds for it), only the wait for a plan made ahead counts."""
    model = load_model(tiny_checkpoint(tmp_path, frameskip=3))
    for plan_ahead, expected in ((True, StopReason.NONE), (False, StopReason.OVERRUN)):
        settings = BrainSettings(
            checkpoint=str(tmp_path), plan_ahead=plan_ahead, safety=SafetyConfig(max_rate=1.0, deadline_s=0.01)
        )
        actor = Actor(model, settings, planner=ScriptedPlanner(np.zeros((2, 6)), sleep_s=0.05))
        actor.set_goal_latent(np.zeros(model.latent_dim))
        actor.observe(np.zeros(model.latent_dim), 0.0)
        assert actor.tick(0.0).reason is expected
