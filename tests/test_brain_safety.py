"""The command guard: bounds and rate limits by construction, stop on stale image, overrun,
non-finite plans; camera frames validated before the encoder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ami_robot.actor.safety import CommandGuard, SafetyConfig, StopReason
from ami_robot.errors import ImageError
from ami_robot.perception import validate_image

CONFIG = SafetyConfig(
    action_low=(-1.0, -0.5), action_high=(1.0, 0.5), max_rate=0.2, image_timeout_s=0.3, deadline_s=0.05
)


def guard_with_image(config: SafetyConfig = CONFIG) -> CommandGuard:
    guard = CommandGuard(config, action_dim=2)
    guard.image_received(0.0)
    return guard


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=2), min_size=1, max_size=30),
    st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_commands_stay_inside_bounds_and_rate_limits(plans: list[list[float]], stops: list[bool]) -> None:
    guard = guard_with_image()
    low, high = CONFIG.bounds(2)
    previous = guard.stop_action
    for first_action, stop in zip(plans, stops):
        command = (
            guard.stop(StopReason.STALE_IMAGE) if stop else guard.command(np.array([first_action, first_action]), 0.0)
        )
        assert np.all(command.action >= low) and np.all(command.action <= high)
        if command.stopped:
            np.testing.assert_array_equal(command.action, guard.stop_action)
        else:
            assert np.all(np.abs(command.action - previous) <= CONFIG.max_rate + 1e-6)
        previous = command.action


def test_a_stale_or_missing_image_stops() -> None:
    guard = CommandGuard(CONFIG, action_dim=2)
    assert guard.image_fault(0.0)[0] is StopReason.NO_IMAGE
    guard.image_received(1.0)
    assert guard.image_fault(1.2)[0] is StopReason.NONE
    assert guard.image_fault(1.31)[0] is StopReason.STALE_IMAGE
    assert not StopReason.STALE_IMAGE.is_error


@pytest.mark.parametrize(
    ("image_s", "now_s", "cause"),
    [
        (3600.0, 0.0, "newer than now"),
        (1.0, 1.0 - CONFIG.clock_tolerance_s - 1e-3, "newer than now"),
        (float("nan"), 1.0, "camera image time is nan"),
        (float("inf"), 1.0, "camera image time is inf"),
        (1.0, float("nan"), "time now is nan"),
        (1.0, float("inf"), "time now is inf"),
        (1.0, float("-inf"), "time now is -inf"),
    ],
)
def test_a_clock_fault_stops_with_an_error_naming_the_cause(image_s: float, now_s: float, cause: str) -> None:
    guard = CommandGuard(CONFIG, action_dim=2)
    guard.image_received(image_s)
    reason, detail = guard.image_fault(now_s)
    assert reason is StopReason.CLOCK_FAULT and reason.is_error
    assert cause in detail


def test_an_image_stamped_within_the_clock_tolerance_is_fresh() -> None:
    guard = CommandGuard(CONFIG, action_dim=2)
    guard.image_received(1.0)
    assert guard.image_fault(1.0 - CONFIG.clock_tolerance_s / 2) == (StopReason.NONE, "")


@pytest.mark.parametrize(
    ("plan", "seconds", "cost", "reason"),
    [
        (np.full((3, 2), np.nan), 0.0, 1.0, StopReason.NON_FINITE),
        (np.array([[np.inf, 0.0]]), 0.0, 1.0, StopReason.NON_FINITE),
        (np.zeros((3, 2)), 0.0, float("nan"), StopReason.NON_FINITE),
        (np.full((3, 2), 0.1), 0.051, 1.0, StopReason.OVERRUN),
    ],
)
def test_faulty_plans_stop_with_an_error(plan: np.ndarray, seconds: float, cost: float, reason: StopReason) -> None:
    guard = guard_with_image()
    guard.command(np.full((1, 2), 0.2), 0.0)
    command = guard.command(plan, seconds, cost)
    assert command.reason is reason and reason.is_error and command.stopped
    np.testing.assert_array_equal(command.action, [0.0, 0.0])
    follow_up = guard.command(np.ones((1, 2)), 0.0)
    np.testing.assert_allclose(follow_up.action, [0.2, 0.2], err_msg="rate limited again from the stop")


def test_safety_config_is_validated() -> None:
    with pytest.raises(ValueError, match="action_low < action_high"):
        SafetyConfig(action_low=(1.0,), action_high=(-1.0,))
    with pytest.raises(ValueError, match="max_rate"):
        SafetyConfig(max_rate=0.0)
    with pytest.raises(ValueError, match="outside the bounds"):
        SafetyConfig(action_low=(0.5,), action_high=(1.0,)).stop(2)
    with pytest.raises(ValueError, match="has 3 values"):
        SafetyConfig(action_low=(0.0, 0.0, 0.0)).bounds(2)
    with pytest.raises(ValueError, match="clock_tolerance_s"):
        SafetyConfig(clock_tolerance_s=-0.001)
    with pytest.raises(ValueError, match="clock_tolerance_s"):
        SafetyConfig(clock_tolerance_s=float("nan"))


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((8, 8, 4), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((0, 8, 3), np.uint8), "empty"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_malformed_images_are_rejected(image, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        validate_image(image)


def test_a_valid_image_passes_contiguous() -> None:
    image = np.zeros((8, 16, 3), np.uint8)[:, ::2]
    out = validate_image(image)
    assert out.flags.c_contiguous and out.shape == (8, 8, 3)
