"""Typed planner configuration (loadable from YAML with ami_robot.config.load_yaml)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ami_robot.cost.config import CostConfig
from ami_robot.cost.limits import ActionLimits


@dataclass(frozen=True)
class PlannerConfig:
    """Sampling-planner settings.

    horizon: steps H planned ahead. samples: sequences N per iteration. elites: best K refit on.
    momentum: mean/std = momentum * old + (1 - momentum) * refit. init_std / min_std: sampling
    std at the start of a plan and its floor (action units). temperature: MPPI softmax
    temperature (cost units). noise_beta: iCEM colored-noise exponent along the horizon (0 =
    white). keep_elites_fraction: iCEM share of elites carried into the next iteration.
    warm_start: start from the previous plan shifted by one step. action_low/high/max_rate:
    hard limits (scalars broadcast over action dimensions). cuda_precision: matrix products of
    backend 'cuda': "fp32" (exact path), "tf32" or "bf16" (tensor cores, float32 accumulation).
    """

    horizon: int = 5
    samples: int = 300
    iterations: int = 30
    elites: int = 30
    momentum: float = 0.0
    init_std: float = 1.0
    min_std: float = 0.05
    temperature: float = 1.0
    noise_beta: float = 0.0
    keep_elites_fraction: float = 0.0
    warm_start: bool = True
    seed: int = 0
    action_low: float | tuple[float, ...] = -1.0
    action_high: float | tuple[float, ...] = 1.0
    max_rate: float | tuple[float, ...] | None = None
    cost: CostConfig = field(default_factory=CostConfig)
    cuda_precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.cuda_precision not in ("fp32", "tf32", "bf16"):
            raise ValueError(f"PlannerConfig.cuda_precision must be fp32, tf32 or bf16, got {self.cuda_precision!r}")
        for name in ("horizon", "samples", "iterations", "elites"):
            if getattr(self, name) < 1:
                raise ValueError(f"PlannerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.elites > self.samples:
            raise ValueError(f"PlannerConfig: elites ({self.elites}) > samples ({self.samples})")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"PlannerConfig.momentum must be in [0, 1), got {self.momentum}")
        for name in ("init_std", "min_std", "noise_beta"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"PlannerConfig.{name} must be finite and >= 0, got {value}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"PlannerConfig.temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.keep_elites_fraction <= 1.0:
            raise ValueError(f"PlannerConfig.keep_elites_fraction must be in [0, 1], got {self.keep_elites_fraction}")
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"PlannerConfig.seed must be in [0, 2^64), got {self.seed}")
        low, high = self.action_low, self.action_high
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            raise ValueError(f"PlannerConfig: action_low {low} > action_high {high}")

    @property
    def keep_elites(self) -> int:
        return min(int(self.keep_elites_fraction * self.elites), self.samples - 1)

    def action_limits(self, action_dim: int) -> ActionLimits:
        return ActionLimits.create(action_dim, self.action_low, self.action_high, self.max_rate)
