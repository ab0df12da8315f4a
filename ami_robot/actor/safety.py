"""Safety by construction between the planner and the robot, with no ROS.

`CommandGuard` turns a plan into the command that goes to the robot and is the only way a command
is made. A command is either

* the first planned action, projected into the configured bounds and rate limits by
  `ami_robot.cost.ActionLimits` (relative to the last command sent), or
* the stop action (zero velocity by default), sent at once and without rate limiting, whenever
  there is no fresh camera image (none yet, or older than `image_timeout_s`), no goal, the plan
  took longer than `deadline_s`, or the plan holds a non-finite value.

An image only counts as fresh when its age is known: a non-finite time, or an image newer than
now by more than `clock_tolerance_s` (a clock that went backwards, a camera clock ahead of the
brain's), is a clock fault and stops with an error.

`validate_image` checks a camera frame before it reaches the encoder.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from ami_robot.config import ConfigError, check_settings, setting
from ami_robot.cost import ActionLimits


class StopReason(str, enum.Enum):
    """Why the guard sent the stop action instead of the plan (NONE: it did not)."""

    NONE = "none"
    NO_IMAGE = "no camera image yet"
    STALE_IMAGE = "camera image too old"
    CLOCK_FAULT = "camera image time is in the future or not finite"
    NO_GOAL = "no goal set"
    OVERRUN = "planning overran its deadline"
    NON_FINITE = "plan has a non-finite value"
    PLANNER_FAILED = "planner raised an exception"
    INACTIVE = "control inactive"
    FIRST_PLAN = "holding while the first plan toward the goal is made"

    @property
    def is_error(self) -> bool:
        """Errors are faults of the brain itself; the other stops are expected states."""
        return self in (
            StopReason.CLOCK_FAULT,
            StopReason.OVERRUN,
            StopReason.NON_FINITE,
            StopReason.PLANNER_FAILED,
        )


@dataclass(frozen=True)
class SafetyConfig:
    """Command bounds (A,) in action units (length-1 bounds broadcast), `max_rate` the largest change
    per control step, a stale-image timeout, a planning deadline and a clock tolerance in seconds.
    Every value is finite."""

    action_low: tuple[float, ...] = setting(
        (-1.0,), help="lowest command per action dimension (one value: all dimensions)"
    )
    action_high: tuple[float, ...] = setting(
        (1.0,), help="highest command per action dimension (one value: all dimensions)"
    )
    max_rate: float = setting(
        0.5, help="largest change of any command value between two control ticks", low=0.0, low_open=True
    )
    image_timeout_s: float = setting(
        0.5, help="stop when the newest camera image is older than this (s)", low=0.0, low_open=True, high=3600.0
    )
    deadline_s: float = setting(
        0.1, help="stop with an error when planning takes longer than this (s)", low=0.0, low_open=True, high=60.0
    )
    clock_tolerance_s: float = setting(
        0.005,
        help="largest amount by which a camera image may seem newer than now (s) before it is a clock fault",
        low=0.0,
        high=1.0,
    )
    stop_action: tuple[float, ...] = setting((0.0,), help="the command sent to stop (one value: all dimensions)")

    def __post_init__(self) -> None:
        check_settings(self)
        low, high = np.asarray(self.action_low, float), np.asarray(self.action_high, float)
        if low.shape != high.shape and 1 not in (low.size, high.size):
            raise ConfigError(f"action_low and action_high differ in length: {self.action_low}, {self.action_high}")
        if np.any(low >= high):
            raise ConfigError(f"need finite action_low < action_high, got {self.action_low}, {self.action_high}")

    def bounds(self, action_dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(low, high), each float32 (action_dim,)."""
        return _broadcast(self.action_low, action_dim, "action_low"), _broadcast(
            self.action_high, action_dim, "action_high"
        )

    def stop(self, action_dim: int) -> np.ndarray:
        """The stop action (action_dim,); checked to lie inside the bounds."""
        stop = _broadcast(self.stop_action, action_dim, "stop_action")
        low, high = self.bounds(action_dim)
        if np.any(stop < low) or np.any(stop > high):
            raise ValueError(f"stop_action {stop.tolist()} is outside the bounds [{low.tolist()}, {high.tolist()}]")
        return stop


def _broadcast(values: tuple[float, ...], dim: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32).reshape(-1)
    if array.size == 1:
        return np.full(dim, array[0], dtype=np.float32)
    if array.size != dim:
        raise ValueError(f"{name} has {array.size} values, the model's action has {dim}")
    return array


@dataclass(frozen=True)
class SafeCommand:
    """The command to send: `action` (A,) float32; `reason` is NONE unless it is a stop."""

    action: np.ndarray
    reason: StopReason = StopReason.NONE
    detail: str = ""

    @property
    def stopped(self) -> bool:
        return self.reason is not StopReason.NONE


class CommandGuard:
    """Makes every command: bounds and rate limits on plans, the stop action on any fault."""

    def __init__(self, config: SafetyConfig, action_dim: int) -> None:
        self.config = config
        self.action_dim = action_dim
        low, high = config.bounds(action_dim)
        self.limits = ActionLimits.create(action_dim, low, high, config.max_rate)
        self.stop_action = config.stop(action_dim)
        self.last_command = self.stop_action.copy()
        self.last_image_s: float | None = None

    def image_received(self, stamp_s: float) -> None:
        """Record the arrival time (s, the guard's clock) of a valid camera image."""
        self.last_image_s = stamp_s

    def image_fault(self, now_s: float) -> tuple[StopReason, str]:
        """(reason, detail) when planning must not run at `now_s` (NO_IMAGE, STALE_IMAGE or
        CLOCK_FAULT), else (NONE, "")."""
        if not math.isfinite(now_s):
            return StopReason.CLOCK_FAULT, f"the time now is {now_s}"
        if self.last_image_s is None:
            return StopReason.NO_IMAGE, ""
        if not math.isfinite(self.last_image_s):
            return StopReason.CLOCK_FAULT, f"the camera image time is {self.last_image_s}"
        age_s = now_s - self.last_image_s
        if age_s < -self.config.clock_tolerance_s:
            return StopReason.CLOCK_FAULT, (
                f"the camera image is {-age_s:.3f} s newer than now (tolerance {self.config.clock_tolerance_s} s): "
                "a clock went backwards or the camera clock is ahead"
            )
        if age_s > self.config.image_timeout_s:
            return StopReason.STALE_IMAGE, f"{age_s:.3f} s old"
        return StopReason.NONE, ""

    def command(self, planned_actions: np.ndarray, planning_time_s: float, cost: float = 0.0) -> SafeCommand:
        """The command for a plan (H, A) that took `planning_time_s`: its first action made safe, or a stop."""
        planned_actions = np.asarray(planned_actions, dtype=np.float32)
        if planned_actions.ndim != 2 or planned_actions.shape[1] != self.action_dim:
            raise ValueError(f"plan must be (H, {self.action_dim}), got {planned_actions.shape}")
        if not np.all(np.isfinite(planned_actions)) or not math.isfinite(cost):
            return self.stop(StopReason.NON_FINITE, f"cost {cost}")
        if not planning_time_s <= self.config.deadline_s:
            return self.stop(
                StopReason.OVERRUN, f"{planning_time_s * 1e3:.1f} ms > {self.config.deadline_s * 1e3:.1f} ms"
            )
        safe = np.asarray(self.limits.project(planned_actions[:1], self.last_command), dtype=np.float32)[0]
        self.last_command = safe
        return SafeCommand(action=safe.copy())

    def stop(self, reason: StopReason, detail: str = "") -> SafeCommand:
        """The stop action, sent now; later plans are rate limited from it."""
        self.last_command = self.stop_action.copy()
        return SafeCommand(action=self.stop_action.copy(), reason=reason, detail=detail)
