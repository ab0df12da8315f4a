"""`BrainSettings`: every run-time setting of the brain in one typed, validated dataclass.

Its YAML (`load_brain_settings`, e.g. `ami_robot/checkpoints/tworoom/brain.yaml`) is the one
brain settings format, read by offline evaluation and by the ROS 2 nodes alike. Settings also
travel flat, as dotted names ("planner.horizon", "cost.goal_weight", ...) with plain values;
these are the ROS 2 parameter names (see `ami_robot.ros.params`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ami_robot.actor.safety import SafetyConfig
from ami_robot.checkpoints import CHECKPOINTS
from ami_robot.config import ConfigError, check_settings, from_dict, load_yaml, setting, to_dict
from ami_robot.cost import CostConfig
from ami_robot.planning.backends import BackendChoice
from ami_robot.planning.config import MethodName, PlannerConfig

DEFAULT_CHECKPOINT = CHECKPOINTS / "tworoom"
SETTINGS_FILE_NAME = "brain.yaml"
"""A checkpoint directory's own settings file: the settings the model was evaluated with."""

NOT_SETTINGS = ("planner.cost.", "planner.action_low", "planner.action_high", "planner.max_rate")
"""PlannerConfig fields the brain sets itself: the cost comes from `cost.*`, and the planner's
search bounds from the model's action bounds (command bounds are `safety.*`)."""


@dataclass(frozen=True)
class BrainSettings:
    """Everything the brain is run with; each field's `help` says what it means. `planner.cost` is
    replaced by `cost` and the planner's search bounds come from the model (see `planner_config`)."""

    checkpoint: str = setting(
        str(DEFAULT_CHECKPOINT),
        help="world-model checkpoint directory (model.safetensors + config.json); changing it switches the model",
    )
    backend: BackendChoice = setting("auto", help="backend that runs the planner (auto: the fastest available here)")
    method: MethodName = setting("cem", help="sampling method: cem (iCEM with the planner.* options) or mppi")
    control_rate_hz: float = setting(
        10.0,
        help="camera and control rate the brain expects (Hz): the time step of a plan and the period of the "
        "watchdog that stops the robot when images stop; each image is answered as it comes",
        low=0.1,
        high=1000.0,
    )
    plan_ahead: bool = setting(
        False,
        help="plan the next model step from the latent predicted after the current block while its actions "
        "go out, so the image that starts a model step is answered at once (one model step of feedback delay)",
    )
    replan_every: int = setting(
        1,
        help="model steps of each plan executed before planning again (1: replan at every model step; "
        "stable-worldmodel's published protocols execute 5, the whole plan); at most planner.horizon",
        low=1,
        high=1000,
    )
    memory_capacity: int = setting(
        32, help="latents, actions and surprises kept in short-term memory", low=1, high=100_000
    )
    planner: PlannerConfig = setting(default_factory=PlannerConfig, help="sampling planner settings")
    cost: CostConfig = setting(default_factory=CostConfig, help="weights of the cost terms")
    safety: SafetyConfig = setting(default_factory=SafetyConfig, help="command bounds, rate limit, timeouts")

    def __post_init__(self) -> None:
        check_settings(self)
        if self.replan_every > self.planner.horizon:
            raise ConfigError(
                f"replan_every ({self.replan_every}) executes more model steps than a plan holds "
                f"(planner.horizon {self.planner.horizon})"
            )

    def planner_config(
        self, action_low: Iterable[float] | None = None, action_high: Iterable[float] | None = None
    ) -> PlannerConfig:
        """The planner's config with this cost and, when given, search bounds (A,) in planner units."""
        if action_low is None or action_high is None:
            return dataclasses.replace(self.planner, cost=self.cost)
        return dataclasses.replace(
            self.planner,
            cost=self.cost,
            action_low=tuple(map(float, action_low)),
            action_high=tuple(map(float, action_high)),
        )


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


def brain_settings_path(settings_file: str | Path | None, checkpoint: str | Path) -> Path | None:
    """The settings file to read: `settings_file` when given (checked to exist), else the checkpoint's
    own brain.yaml when it has one, else None (the built-in defaults)."""
    if settings_file:
        path = Path(settings_file)
        if not path.is_file():
            raise ConfigError(f"settings file {path} does not exist")
        return path
    path = Path(checkpoint) / SETTINGS_FILE_NAME
    return path if path.is_file() else None


def load_brain_settings(settings_file: str | Path | None, checkpoint: str | Path) -> BrainSettings:
    """The settings in `brain_settings_path(settings_file, checkpoint)` (BrainSettings YAML) or the
    built-in defaults, with `checkpoint` as the active model (a file's own `checkpoint` key is
    overridden). Raises ConfigError naming the file."""
    path = brain_settings_path(settings_file, checkpoint)
    settings = load_yaml(BrainSettings, path) if path is not None else BrainSettings()
    return dataclasses.replace(settings, checkpoint=str(checkpoint))
