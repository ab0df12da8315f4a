"""The parameters of every node, declared in one place (the launch-file check reads this table).

Each `ParameterSpec` gives a name, its default, a description and, where it has one, a range or
a set of choices; `declare_parameters` declares them on a node with a `ParameterDescriptor`.
The brain settings (`planner.*`, `cost.*`, `safety.*`, ...) are derived from the `BrainSettings`
dataclass and its field declarations (`ami_robot.config.setting`), so names, types, defaults,
descriptions, ranges and choices cannot drift from the code that uses them.

A node with settings starts from a BrainSettings YAML file (`settings_file`, by default the
checkpoint's own brain.yaml), the same file offline evaluation reads; its ROS parameters (a
params file, `-p name:=value`) override it. Start-up values get the same checks as
`ros2 param set` (`check`): a value that fails stops the node with one line that says why.

Nothing here imports rclpy at module level, so the table can be read without ROS.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ami_robot.config import ConfigError, Setting, iter_settings, read_yaml
from ami_robot.configurator.settings import (
    BrainSettings,
    brain_settings_path,
    flatten_settings,
    load_brain_settings,
    settings_from_flat,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter. min_value/max_value: closed range of a number (or of each number
    in a list); `constraint` adds what the range cannot say (an open bound, a cross-field rule)."""

    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False
    constraint: str = ""


SETTINGS_FILE = ParameterSpec(
    "settings_file",
    "",
    "BrainSettings YAML the settings start from (empty: CHECKPOINT/brain.yaml when present, else the "
    "built-in defaults); read at start-up, the parameters override it",
)


def _spec_from_setting(name: str, default: Any, declared: Setting) -> ParameterSpec:
    open_bound = (declared.low is not None and declared.low_open) or (declared.high is not None and declared.high_open)
    return ParameterSpec(
        name,
        default,
        declared.help,
        min_value=declared.low,
        max_value=declared.high,
        choices=tuple(declared.choices),
        constraint=f"must be {declared.range_text()}" if open_bound else "",
    )


def _settings_specs(prefixes: tuple[str, ...]) -> list[ParameterSpec]:
    """Specs for the BrainSettings fields whose dotted names start with one of `prefixes`; fields
    with no value a ROS parameter can hold (None, an empty list) are left out."""
    declared = dict(iter_settings(BrainSettings))
    return [
        _spec_from_setting(name, default, declared[name])
        for name, default in flatten_settings(BrainSettings()).items()
        if name.startswith(prefixes) and default is not None and default != []
    ]


CHECKPOINT = _settings_specs(("checkpoint",))

PERCEPTION = [*CHECKPOINT]

PLANNER = [
    *_settings_specs(("checkpoint", "control_rate_hz", "plan_ahead", "replan_every", "memory_capacity", "safety.")),
    SETTINGS_FILE,
    ParameterSpec(
        "command_type",
        "twist",
        "twist: geometry_msgs/TwistStamped (mobile base); array: std_msgs/Float32MultiArray",
        choices=("twist", "array"),
    ),
    ParameterSpec("frame_id", "base_link", "frame of the command and of the planned path"),
]

CONFIGURATOR = [
    *_settings_specs(("checkpoint", "backend", "method", "planner.", "cost.")),
    SETTINGS_FILE,
    ParameterSpec(
        "goal_image_path", "", "a stored goal image (PNG or .npy); empty: wait for one on the goal image topic"
    ),
]

MEMORY = [*_settings_specs(("checkpoint", "memory_capacity")), SETTINGS_FILE]

NODE_PARAMETERS: dict[str, list[ParameterSpec]] = {
    "perception": PERCEPTION,
    "planner": PLANNER,
    "configurator": CONFIGURATOR,
    "memory": MEMORY,
}
"""Declared parameters of each brain node, by node name."""

SETTINGS_NAMES = frozenset(flatten_settings(BrainSettings()))
SETTINGS_PARAMETERS = frozenset(s.name for specs in NODE_PARAMETERS.values() for s in specs) & SETTINGS_NAMES
"""The settings a ROS parameter carries (all but those whose value can be None)."""


def spec_names(specs: list[ParameterSpec]) -> set[str]:
    return {s.name for s in specs}


def validate(values: dict[str, Any], base: BrainSettings | None = None) -> BrainSettings:
    """Check the settings among `values` (others are ignored) by building BrainSettings; raises ConfigError."""
    return settings_from_flat({k: v for k, v in values.items() if k in SETTINGS_NAMES}, base)


def settings_in_params_file(path: str | Path) -> dict[str, Any]:
    """The brain settings (dotted name -> value) that a ROS parameter file sets for the brain's nodes,
    e.g. launch/params/brain_pusht.yaml's real-time budget; its other parameters are left out.
    ConfigError for a file that is no parameter file, or that gives one setting two values."""
    document = read_yaml(path)
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: a ROS parameter file maps node names to {{ros__parameters: ...}}")
    settings: dict[str, Any] = {}
    for node, section in document.items():
        parameters = (section.get("ros__parameters") or {}) if isinstance(section, dict) else None
        if not isinstance(parameters, dict):
            raise ConfigError(f"{path}: {node} holds no ros__parameters mapping")
        for name, value in flatten_parameters(parameters).items():
            if name not in SETTINGS_NAMES:
                continue
            if name in settings and settings[name] != value:
                raise ConfigError(f"{path}: {name} is set to both {settings[name]!r} and {value!r}")
            settings[name] = value
    return settings


def flatten_parameters(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested ROS parameters ({"safety": {"max_rate": 0.5}}) by dotted name ({"safety.max_rate": 0.5})."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten_parameters(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check(values: dict[str, Any], specs: list[ParameterSpec]) -> None:
    """Everything a value must pass, at start-up and on `ros2 param set`: `check_each`, and the
    settings together building a valid BrainSettings. Raises ConfigError naming the parameter."""
    check_each(values, specs)
    if any(name in SETTINGS_NAMES for name in values):
        validate(values)


def check_each(values: dict[str, Any], specs: list[ParameterSpec]) -> None:
    """Each value on its own: its choices, a finite number within its range. Raises ConfigError
    naming the parameter."""
    for spec in specs:
        if spec.name in values:
            Setting(spec.description, spec.min_value, spec.max_value, choices=spec.choices).check(
                values[spec.name], spec.name
            )


def check_choices(values: dict[str, Any], specs: list[ParameterSpec]) -> None:
    """Raise ConfigError when a value is not among its spec's choices."""
    for spec in specs:
        if spec.choices and spec.name in values and values[spec.name] not in spec.choices:
            raise ConfigError(f"{spec.name} must be one of {list(spec.choices)}, got {values[spec.name]!r}")


def load_settings_file(settings_file: str, checkpoint: str) -> BrainSettings:
    """The BrainSettings a node starts from (see `load_brain_settings`); raises ConfigError for a
    file that sets what no ROS parameter can carry, so nothing in it is dropped silently."""
    settings = load_brain_settings(settings_file, checkpoint)
    path = brain_settings_path(settings_file, checkpoint)
    defaults = flatten_settings(BrainSettings())
    dropped = sorted(
        name
        for name, value in flatten_settings(settings).items()
        if name not in SETTINGS_PARAMETERS and value != defaults[name]
    )
    if dropped:
        raise ConfigError(f"{path}: {dropped} cannot be set on the ROS brain (no parameter carries them)")
    return settings


def declare_parameters(node, specs: list[ParameterSpec]) -> dict[str, Any]:
    """Declare `specs` on an rclpy node with descriptors and check the start-up values (`check`);
    returns {name: value} after overrides. Settings default to the node's settings file when it
    declares `settings_file`. Raises ConfigError, starting with the node's name, for a bad value."""
    by_name = {spec.name: spec for spec in specs}
    values: dict[str, Any] = {}
    try:
        defaults: dict[str, Any] = {}
        if SETTINGS_FILE.name in by_name:
            for name in ("checkpoint", SETTINGS_FILE.name):
                values[name] = _declare(node, by_name[name], by_name[name].default)
            defaults = flatten_settings(load_settings_file(values[SETTINGS_FILE.name], values["checkpoint"]))
        for spec in specs:
            if spec.name not in values:
                values[spec.name] = _declare(node, spec, defaults.get(spec.name, spec.default))
        check(values, specs)
    except ConfigError as exc:
        raise ConfigError(f"{node.get_name()}: {exc}") from exc
    return values


def _declare(node, spec: ParameterSpec, default: Any) -> Any:
    """Declare one parameter; a start-up value of the wrong type or out of range is a ConfigError."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.exceptions import ParameterException

    descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    constraints = [f"one of {list(spec.choices)}"] if spec.choices else []
    if spec.constraint:
        constraints.append(spec.constraint)
    descriptor.additional_constraints = "; ".join(constraints)
    has_range = spec.min_value is not None or spec.max_value is not None
    if has_range and isinstance(spec.default, int) and not isinstance(spec.default, bool):
        low = INT64_MIN if spec.min_value is None else max(int(spec.min_value), INT64_MIN)
        high = INT64_MAX if spec.max_value is None else min(int(spec.max_value), INT64_MAX)
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
    elif has_range and isinstance(spec.default, float):
        low = -sys.float_info.max if spec.min_value is None else float(spec.min_value)
        high = sys.float_info.max if spec.max_value is None else float(spec.max_value)
        descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high)]
    default = [float(v) for v in default] if isinstance(default, list) else default
    try:
        node.declare_parameter(spec.name, default, descriptor)
    except ParameterException as exc:
        raise ConfigError(f"parameter {spec.name}: {exc.args[0] if exc.args else exc}") from exc
    return plain(node.get_parameter(spec.name).value)


def plain(value: Any) -> Any:
    """rclpy parameter values as plain Python (array.array and tuples to lists)."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "array":
        return list(value)
    return value
