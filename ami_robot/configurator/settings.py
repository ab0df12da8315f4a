"""`BrainSettings`: every run-time setting of the brain in one typed, validated dataclass.

Settings also travel flat, as dotted names ("planner.horizon", "cost.goal_weight", ...) with
plain values; these are the ROS 2 parameter names (see `ami_robot.ros.params`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ami_robot.actor.safety import SafetyConfig
from ami_robot.config import ConfigError, from_dict, to_dict
from ami_robot.cost import CostConfig
from ami_robot.planning.config import PlannerConfig

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "tworoom"

NOT_SETTINGS = ("planner.cost.", "planner.action_low", "planner.action_high", "planner.max_rate")
"""PlannerConfig fields the brain sets itself: the cost comes from `cost.*`, and the planner's
search bounds from the model's action bounds (command bounds are `safety.*`)."""


@dataclass(frozen=True)
class BrainSettings:
    """checkpoint: directory of the active world model; backend: planner backend;
    method: "cem" or "mppi"; control_rate_hz: planner ticks per second; memory_capacity: latents kept;
    planner: sampling settings (its `cost` is replaced by `cost`, see `planner_config`)."""

    checkpoint: str = str(DEFAULT_CHECKPOINT)
    backend: Literal["auto", "cpu", "torch", "cuda"] = "auto"
    method: Literal["cem", "mppi"] = "cem"
    control_rate_hz: float = 10.0
    memory_capacity: int = 32
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    def __post_init__(self) -> None:
        if not 0.1 <= self.control_rate_hz <= 1000.0:
            raise ValueError(f"control_rate_hz must be in [0.1, 1000], got {self.control_rate_hz}")
        if self.memory_capacity < 1:
            raise ValueError(f"memory_capacity must be >= 1, got {self.memory_capacity}")

    def planner_config(self, action_low=None, action_high=None) -> PlannerConfig:
        """The planner's config with this cost and, when given, search bounds (A,) in planner units."""
        bounds = (
            {}
            if action_low is None
            else {"action_low": tuple(map(float, action_low)), "action_high": tuple(map(float, action_high))}
        )
        return dataclasses.replace(self.planner, cost=self.cost, **bounds)


def flatten_settings(settings: Any, prefix: str = "") -> dict[str, Any]:
    """Dataclass -> {"dotted.name": plain value}; tuples become lists."""
    flat: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        name = f"{prefix}{f.name}"
        if name.startswith(NOT_SETTINGS) or (name + ".").startswith(NOT_SETTINGS):
            continue
        if dataclasses.is_dataclass(value):
            flat.update(flatten_settings(value, f"{name}."))
        else:
            flat[name] = to_dict_value(value)
    return flat


def to_dict_value(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [to_dict_value(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def settings_from_flat(flat: dict[str, Any], base: BrainSettings | None = None) -> BrainSettings:
    """Apply dotted `flat` values over `base` (default settings) and validate; raises ConfigError."""
    nested = to_dict(base or BrainSettings())
    for name, value in flat.items():
        if name.startswith(NOT_SETTINGS) or (name + ".").startswith(NOT_SETTINGS):
            raise ConfigError(f"{name!r} is not a setting: it is derived ({', '.join(NOT_SETTINGS)})")
        node = nested
        *parents, leaf = name.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise ConfigError(f"unknown setting {name!r}")
            node = node[key]
        if leaf not in node or isinstance(node[leaf], dict):
            raise ConfigError(f"unknown setting {name!r}")
        node[leaf] = value
    try:
        return from_dict(BrainSettings, nested)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from exc
