"""Typed planner configuration (loadable from YAML with ami_robot.config.load_yaml) and the names of
the sampling methods, declared once for settings, ROS parameters and the CLI (backend names are
declared in `ami_robot.planning.backends`)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from ami_robot.config import ConfigError, check_settings, setting
from ami_robot.cost.config import CostConfig
from ami_robot.cost.limits import ActionLimits

MethodName = Literal["cem", "mppi"]
"""A sampling planner: "cem" (cross-entropy method, iCEM with noise_beta/keep_elites_fraction) or "mppi"."""
METHOD_NAMES: tuple[MethodName, ...] = typing.get_args(MethodName)

CudaPrecision = Literal["fp32", "tf32", "bf16"]


@dataclass(frozen=True)
class PlannerConfig:
    """Sampling-planner settings; each field's `help` (see `ami_robot.config.setting`) says what it
    means. Action limits are scalars broadcast over action dimensions, or one value per dimension."""

    horizon: int = setting(5, help="steps H planned ahead (model steps)", low=1)
    samples: int = setting(300, help="action sequences N sampled per iteration", low=1)
    iterations: int = setting(30, help="sampling iterations per plan", low=1)
    elites: int = setting(30, help="best K samples the sampling distribution is refit on (<= samples)", low=1)
    momentum: float = setting(
        0.0, help="mean/std = momentum * old + (1 - momentum) * refit", low=0.0, high=1.0, high_open=True
    )
    init_std: float = setting(1.0, help="sampling std at the start of a plan (action units)", low=0.0)
    min_std: float = setting(0.05, help="floor of the sampling std (action units)", low=0.0)
    temperature: float = setting(1.0, help="MPPI softmax temperature (cost units)", low=0.0, low_open=True)
    noise_beta: float = setting(0.0, help="iCEM colored-noise exponent along the horizon (0: white)", low=0.0)
    keep_elites_fraction: float = setting(
        0.0, help="iCEM share of elites carried into the next iteration", low=0.0, high=1.0
    )
    warm_start: bool = setting(True, help="start each plan from the previous one shifted by one step")
    seed: int = setting(0, help="seed of the planner's Philox noise stream", low=0, high=2**64 - 1)
    action_low: float | tuple[float, ...] = setting(-1.0, help="lowest action (hard limit, action units)")
    action_high: float | tuple[float, ...] = setting(1.0, help="highest action (hard limit, action units)")
    max_rate: float | tuple[float, ...] | None = setting(
        None, help="largest change of an action between steps (None: unlimited)", low=0.0
    )
    cost: CostConfig = setting(default_factory=CostConfig, help="weights of the cost terms")
    cuda_precision: CudaPrecision = setting(
        "fp32", help="matrix products of backend cuda: fp32 (exact), tf32 or bf16 (tensor cores, fp32 accumulation)"
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.elites > self.samples:
            raise ConfigError(f"PlannerConfig: elites ({self.elites}) > samples ({self.samples})")
        low, high = self.action_low, self.action_high
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            raise ConfigError(f"PlannerConfig: action_low {low} > action_high {high}")

    @property
    def keep_elites(self) -> int:
        return min(int(self.keep_elites_fraction * self.elites), self.samples - 1)

    def action_limits(self, action_dim: int) -> ActionLimits:
        return ActionLimits.create(action_dim, self.action_low, self.action_high, self.max_rate)
