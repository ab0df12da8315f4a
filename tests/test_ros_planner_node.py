"""The planner node in this process (no other process, DDS on this machine): which stop reason and
diagnostic level a fault gets, and the backend fallback that keeps every other setting."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from model_helpers import tiny_checkpoint

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ami_robot.actor.safety import StopReason  # noqa: E402
from ami_robot.planning import backends  # noqa: E402
from ami_robot.ros.conversions import latent_to_msg, settings_to_event  # noqa: E402
from ami_robot.ros.node_base import ERROR, OK, WARN  # noqa: E402
from ami_robot.ros.planner_node import PlannerNode  # noqa: E402

pytestmark = pytest.mark.ros
LATENT_DIM = 8


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny"), latent_dim=LATENT_DIM, frameskip=3)


@pytest.fixture
def planner(checkpoint: Path, monkeypatch: pytest.MonkeyPatch):
    """A configured, active planner node whose diagnostics are recorded as (level, message)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = PlannerNode(
        context=context,
        parameter_overrides=[Parameter("checkpoint", value=str(checkpoint)), Parameter("safety.deadline_s", value=5.0)],
    )
    node.diagnosed = []
    monkeypatch.setattr(node, "diagnose", lambda level, message, **values: node.diagnosed.append((level, message)))
    try:
        node.trigger_configure()
        node.trigger_activate()
        assert node.active
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def send_latent(node: PlannerNode, stamp_s: float) -> None:
    sec = int(stamp_s)
    header = Header(stamp=Time(sec=sec, nanosec=int((stamp_s - sec) * 1e9)), frame_id="camera")
    node.on_latent(latent_to_msg(np.zeros(LATENT_DIM, np.float32), header))


def ready_to_plan(node: PlannerNode) -> None:
    """Give the planner a goal, then an image: it answers the image at once."""
    node.actor.set_goal_latent(np.ones(LATENT_DIM, np.float32))
    send_latent(node, node.now_s())


def test_each_image_is_answered_at_once_with_its_reaction_latency(planner: PlannerNode) -> None:
    planner.actor.set_goal_latent(np.ones(LATENT_DIM, np.float32))
    frameskip = planner.actor.model.frameskip
    for _ in range(2 * frameskip):
        send_latent(planner, planner.now_s())
        assert not planner.last.stopped, planner.last.detail
    assert planner.ticks == 2 * frameskip, "one command per image"
    stats = planner.stats()
    assert stats["plans"] == 2, "a new plan once per model step, queued actions in between"
    assert frameskip > 1 and len(planner.reaction_ms["queued"]) == 2 * (frameskip - 1)
    for kind in ("", "_replan", "_queued"):
        assert 0.0 < stats[f"latency{kind}_ms_p50"] <= stats[f"latency{kind}_ms_p99"]
    assert stats["latency_replan_ms_p50"] >= stats["planning_ms_p50"], "a replanning reaction includes its plan"


def test_every_model_step_publishes_its_action_block_for_the_memory(planner: PlannerNode, monkeypatch) -> None:
    planner.set_parameters([Parameter("replan_every", value=2)])  # rebuilds the actor with it
    published = []
    monkeypatch.setattr(planner.block_pub, "publish", published.append)
    planner.actor.set_goal_latent(np.ones(LATENT_DIM, np.float32))
    frameskip = planner.actor.model.frameskip
    for _ in range(4 * frameskip):
        send_latent(planner, planner.now_s())
        assert not planner.last.stopped, planner.last.detail
    assert planner.stats()["plans"] == 2, "a plan every two model steps"
    assert len(published) == 4, "a block for each of the four model steps, planned or not"


def test_planning_ahead_answers_a_model_step_with_the_plan_made_while_the_last_block_ran(
    planner: PlannerNode,
) -> None:
    planner.set_parameters([Parameter("plan_ahead", value=True)])  # rebuilds the actor with it
    assert planner.actor.settings.plan_ahead
    planner.actor.set_goal_latent(np.ones(LATENT_DIM, np.float32))
    send_latent(planner, planner.now_s())
    assert planner.last.reason is StopReason.FIRST_PLAN, "the robot holds while the first plan is made"
    while planner.last.stopped:
        assert planner.last.reason is StopReason.FIRST_PLAN and planner.ticks < 1000
        time.sleep(0.005)
        send_latent(planner, planner.now_s())
    holds = planner.ticks - 1
    frameskip = planner.actor.model.frameskip
    for _ in range(3 * frameskip - 1):
        send_latent(planner, planner.now_s())
        assert not planner.last.stopped, planner.last.detail
    stats = planner.stats()
    assert planner.ticks == holds + 3 * frameskip and stats["plans"] == 3 and stats["stops"] == holds
    assert not planner.reaction_ms["replan"] and len(planner.reaction_ms["prepared"]) == 3
    assert 0.0 < stats["latency_prepared_ms_p50"] <= stats["latency_prepared_ms_p99"]
    assert planner.actor.planning_ahead, "the next model step's plan is under way"
    planner.trigger_deactivate()
    assert not planner.actor.planning_ahead, "deactivating stops the robot and drops the plan made ahead"


def test_the_watchdog_stops_the_robot_until_an_image_comes_and_when_images_stop(planner: PlannerNode) -> None:
    planner.watchdog()
    assert planner.last.reason is StopReason.NO_IMAGE
    ready_to_plan(planner)
    planner.watchdog()
    assert not planner.last.stopped, "a fresh image: the watchdog stays quiet"
    planner.actor.guard.last_image_s = planner.now_s() - 10.0
    planner.watchdog()
    assert planner.last.reason is StopReason.STALE_IMAGE
    np.testing.assert_array_equal(planner.last.action, [0.0, 0.0])


def test_an_unexpected_exception_is_planner_failed_not_non_finite(planner: PlannerNode, monkeypatch) -> None:
    def broken_tick(now_s: float):
        raise RuntimeError("memory corrupted")

    monkeypatch.setattr(planner.actor, "tick", broken_tick)
    ready_to_plan(planner)
    assert planner.last.reason is StopReason.PLANNER_FAILED
    np.testing.assert_array_equal(planner.last.action, [0.0, 0.0])
    assert (ERROR, "stop: planner raised an exception RuntimeError: memory corrupted") in planner.diagnosed
    assert not any("non-finite" in message for _, message in planner.diagnosed)


def test_a_camera_stamp_from_the_future_stops_with_an_error(planner: PlannerNode) -> None:
    ready_to_plan(planner)
    assert not planner.last.stopped, planner.last.detail
    send_latent(planner, planner.now_s() + 3600.0)
    assert planner.last.reason is StopReason.CLOCK_FAULT
    np.testing.assert_array_equal(planner.last.action, [0.0, 0.0])
    errors = [message for level, message in planner.diagnosed if level == ERROR]
    assert errors and "camera image time is in the future" in errors[-1] and "newer than now" in errors[-1]
    planner.report()
    assert planner.diagnosed[-1] == (ERROR, f"stopped: {StopReason.CLOCK_FAULT.value}")


def test_an_unavailable_backend_falls_back_keeping_every_other_setting(
    planner: PlannerNode, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "cuda_unavailable_reason", lambda: "no GPU in this test")
    snapshot = {
        "checkpoint": str(checkpoint),
        "backend": "cuda",
        "method": "mppi",
        "planner.samples": 48,
        "planner.iterations": 3,
        "planner.elites": 6,
        "cost.smoothness_weight": 0.25,
    }
    planner.on_settings(settings_to_event(snapshot, "/configurator", planner.get_clock().now().to_msg()))
    settings = planner.actor.settings
    assert planner.actor.backend == backends.available_backends()[0] != "cuda"
    assert (settings.method, settings.planner.samples, settings.planner.iterations, settings.planner.elites) == (
        "mppi",
        48,
        3,
        6,
    )
    assert settings.cost.smoothness_weight == 0.25
    assert any(
        level == WARN and "backend cuda unavailable" in m and "every other setting kept" in m and "no GPU" in m
        for level, m in planner.diagnosed
    ), planner.diagnosed
    ready_to_plan(planner)
    assert not planner.last.stopped, planner.last.detail
    planner.report()
    level, message = planner.diagnosed[-1]
    assert level == WARN and message.startswith("controlling; backend cuda unavailable"), message

    planner.on_settings(
        settings_to_event({**snapshot, "backend": "torch"}, "/configurator", planner.get_clock().now().to_msg())
    )
    planner.report()
    assert planner.diagnosed[-1] == (OK, "controlling"), "no fallback, no warning"


def test_in_the_brain_process_perception_hands_each_latent_to_the_planner(checkpoint: Path) -> None:
    """`brain` executable: the planner answers an image inside the perception node's callback, with
    no subscription to brain/latent of its own (nothing spins here)."""
    from ami_robot.ros.brain_node import BrainNodes
    from ami_robot.ros.conversions import numpy_to_image

    context = rclpy.Context()
    rclpy.init(context=context)
    overrides = [Parameter("checkpoint", value=str(checkpoint)), Parameter("safety.deadline_s", value=5.0)]
    wiring = BrainNodes(context=context, parameter_overrides=overrides)
    _, make_perception, make_planner, _ = wiring.factories()
    perception, planner = make_perception(), make_planner()
    try:
        for node in (perception, planner):
            node.trigger_configure()
            node.trigger_activate()
        assert all(sub.topic_name != "/brain/latent" for sub in planner.subs)
        planner.actor.set_goal_latent(np.ones(LATENT_DIM, np.float32))
        size = planner.actor.model.image_size
        image = numpy_to_image(np.zeros((size, size, 3), np.uint8), planner.get_clock().now().to_msg())
        perception.on_image(image)
        assert planner.ticks == 1 and not planner.last.stopped, planner.last
        assert len(planner.reaction_ms["replan"]) == 1
    finally:
        planner.destroy_node()
        perception.destroy_node()
        rclpy.shutdown(context=context)
