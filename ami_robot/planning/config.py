"""Typed planner configuration (loadable from YAML with ami_robot.config.load_yaml) and the names of
the sampling methods, declared once for settings, ROS parameters and the CLI (backend names are
declared in `ami_robot.planning.backends`)."""

from __future__ import annotations

import dataclasses
import numbers
import typing
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ami_robot.config import ConfigError, check_settings, declared_settings, setting
from ami_robot.cost.config import CostConfig
from ami_robot.cost.limits import ActionLimits

MethodName = Literal["cem", "mppi"]
"""A sampling planner: "cem" (cross-entropy method, iCEM with noise_beta/keep_elites_fraction) or "mppi"."""
METHOD_NAMES: tuple[MethodName, ...] = typing.get_args(MethodName)

CudaPrecision = Literal["fp32", "tf32", "bf16"]

INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class PlannerConfig:
    """Sampling-planner settings; each field's `help` (see `ami_robot.config.setting`) says what it
    means. Action limits are scalars broadcast over action dimensions, or one value per dimension."""

    horizon: int = setting(5, help="steps H planned ahead (model steps)", low=1, high=INT32_MAX)
    samples: int = setting(300, help="action sequences N sampled per iteration", low=1, high=INT32_MAX)
    iterations: int = setting(30, help="sampling iterations per plan", low=1, high=INT32_MAX)
    elites: int = setting(
        30, help="CEM: best K samples the sampling distribution is refit on (<= samples)", low=1, high=INT32_MAX
    )
    momentum: float = setting(
        0.0, help="mean/std = momentum * old + (1 - momentum) * refit", low=0.0, high=1.0, high_open=True
    )
    init_std: float = setting(
        1.0, help="sampling std at the start of a plan; MPPI's exploration std (action units)", low=0.0
    )
    min_std: float = setting(0.05, help="floor of the sampling std (action units)", low=0.0)
    temperature: float = setting(
        0.05,
        help="MPPI temperature, dimensionless: sample n weighs exp(-(cost_n - min cost) / (temperature * std of "
        "the iteration's costs))",
        low=0.0,
        low_open=True,
    )
    control_cost_weight: float = setting(
        0.0,
        help="MPPI control-cost term, dimensionless: adds weight * u^T Sigma^-1 eps_n to sample n's normalised "
        "cost (u: the mean, eps_n: sample n - u, Sigma: diag(std^2); 1: Williams et al.'s gamma = lambda)",
        low=0.0,
    )
    std_decay: float = setting(
        0.8,
        help="MPPI: iteration i samples with std init_std * std_decay^i, floored at min_std (1: fixed)",
        low=0.0,
        high=1.0,
        low_open=True,
    )
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
        check_integers(self)
        check_settings(self)
        check_float32(self)
        check_float32(self.cost)
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


def check_integers(config: Any) -> None:
    """Raise ConfigError unless every `int` field of dataclass `config` holds an integer (a bool is
    not one); numpy integers become Python ints."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        if hints[field.name] is not int:
            continue
        value = getattr(config, field.name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"{type(config).__name__}.{field.name} must be an integer, got {value!r}")
        object.__setattr__(config, field.name, int(value))


def check_float32(config: Any) -> None:
    """Raise ConfigError unless every real-valued setting of dataclass `config` still meets its
    declaration once rounded to float32, the precision every backend plans in (1e39 overflows to
    inf, a positive 1e-50 underflows to 0)."""
    cls = type(config)
    hints = typing.get_type_hints(cls)
    for name, declared in declared_settings(cls).items():
        value = getattr(config, name)
        values = value if isinstance(value, tuple) else (value,)
        if hints[name] in (int, bool) or not all(_is_real(v) for v in values):
            continue
        with np.errstate(over="ignore", under="ignore"):
            rounded = tuple(float(np.float32(v)) for v in values)
        shown = rounded if isinstance(value, tuple) else rounded[0]
        try:
            declared.check(shown, f"{cls.__name__}.{name}")
        except ConfigError as exc:
            raise ConfigError(f"{exc} (in float32, the planners' precision, {value!r} is {shown!r})") from None


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
