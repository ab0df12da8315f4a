"""The parameters of every node, declared in one place (the launch-file check reads this table).

Each `ParameterSpec` gives a name, its default, a description and, where it has one, a range or
a set of choices; `declare_parameters` declares them on a node with a `ParameterDescriptor`.
The brain settings (`planner.*`, `cost.*`, `safety.*`, ...) are derived from the `BrainSettings`
dataclass so names, types and defaults cannot drift from the code that uses them; values that
pass the descriptor are then validated by building the dataclass (see `validate`).

Nothing here imports rclpy at module level, so the table can be read without ROS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ami_robot.config import ConfigError
from ami_robot.configurator.settings import BrainSettings, flatten_settings, settings_from_flat


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False


def _settings_specs(prefixes: tuple[str, ...]) -> list[ParameterSpec]:
    """Specs for the BrainSettings fields whose dotted names start with one of `prefixes`."""
    defaults = flatten_settings(BrainSettings())
    docs = {
        "checkpoint": "world-model checkpoint directory (model.safetensors + config.json); changing it switches the model",
        "backend": "planner backend: auto, cpu, torch or cuda",
        "method": "planner: cem or mppi",
        "control_rate_hz": "planner ticks per second",
        "memory_capacity": "latents, actions and surprises kept in short-term memory",
        "safety.action_low": "lowest command per action dimension (one value: all dimensions)",
        "safety.action_high": "highest command per action dimension (one value: all dimensions)",
        "safety.max_rate": "largest change of any command value between two control ticks",
        "safety.image_timeout_s": "stop when the newest camera image is older than this (s)",
        "safety.deadline_s": "stop with an error when planning takes longer than this (s)",
        "safety.stop_action": "the command sent to stop (one value: all dimensions)",
    }
    choices = {"backend": ("auto", "cpu", "torch", "cuda"), "method": ("cem", "mppi")}
    ranges = {
        "control_rate_hz": (0.1, 1000.0),
        "memory_capacity": (1, 100000),
        "safety.max_rate": (1e-6, 1e6),
        "safety.image_timeout_s": (0.001, 3600.0),
        "safety.deadline_s": (0.0001, 60.0),
    }
    specs = []
    for name, default in defaults.items():
        if not name.startswith(prefixes):
            continue
        if isinstance(default, list) and not default:
            continue
        if default is None:
            continue
        section, _, field_name = name.rpartition(".")
        doc = docs.get(name) or f"{section} setting {field_name!r} (see {_owner(section)})"
        low, high = ranges.get(name, (None, None))
        specs.append(ParameterSpec(name, default, doc, min_value=low, max_value=high, choices=choices.get(name, ())))
    return specs


def _owner(section: str) -> str:
    return {
        "planner": "ami_robot.planning.PlannerConfig",
        "cost": "ami_robot.cost.CostConfig",
        "safety": "ami_robot.actor.safety.SafetyConfig",
    }.get(section, "BrainSettings")


CHECKPOINT = _settings_specs(("checkpoint",))

PERCEPTION = [*CHECKPOINT]

PLANNER = [
    *_settings_specs(("checkpoint", "control_rate_hz", "memory_capacity", "safety.")),
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
    ParameterSpec(
        "goal_image_path", "", "a stored goal image (PNG or .npy); empty: wait for one on the goal image topic"
    ),
]

MEMORY = [*_settings_specs(("checkpoint", "memory_capacity"))]

NODE_PARAMETERS: dict[str, list[ParameterSpec]] = {
    "perception": PERCEPTION,
    "planner": PLANNER,
    "configurator": CONFIGURATOR,
    "memory": MEMORY,
}
"""Declared parameters of each brain node, by node name."""

SETTINGS_NAMES = frozenset(flatten_settings(BrainSettings()))


def spec_names(specs: list[ParameterSpec]) -> set[str]:
    return {s.name for s in specs}


def validate(values: dict[str, Any], base: BrainSettings | None = None) -> BrainSettings:
    """Check the settings among `values` (others are ignored) by building BrainSettings; raises ConfigError."""
    return settings_from_flat({k: v for k, v in values.items() if k in SETTINGS_NAMES}, base)


def declare_parameters(node, specs: list[ParameterSpec]) -> dict[str, Any]:
    """Declare `specs` on an rclpy node with descriptors; returns {name: value} after overrides."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    values = {}
    for spec in specs:
        descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
        if spec.choices:
            descriptor.additional_constraints = f"one of {list(spec.choices)}"
        if spec.min_value is not None and isinstance(spec.default, int) and not isinstance(spec.default, bool):
            descriptor.integer_range = [
                IntegerRange(from_value=int(spec.min_value), to_value=int(spec.max_value), step=1)
            ]
        elif spec.min_value is not None and isinstance(spec.default, float):
            descriptor.floating_point_range = [FloatingPointRange(from_value=spec.min_value, to_value=spec.max_value)]
        default = [float(v) for v in spec.default] if isinstance(spec.default, list) else spec.default
        node.declare_parameter(spec.name, default, descriptor)
        values[spec.name] = node.get_parameter(spec.name).value
    return values


def check_choices(values: dict[str, Any], specs: list[ParameterSpec]) -> None:
    """Raise ConfigError when a value is not among its spec's choices."""
    for spec in specs:
        if spec.choices and spec.name in values and values[spec.name] not in spec.choices:
            raise ConfigError(f"{spec.name} must be one of {list(spec.choices)}, got {values[spec.name]!r}")


def plain(value: Any) -> Any:
    """rclpy parameter values as plain Python (array.array and tuples to lists)."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "array":
        return list(value)
    return value
