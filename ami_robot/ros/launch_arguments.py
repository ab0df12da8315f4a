"""The launch files' arguments (launch/*.launch.py), declared and checked without ROS 2 launch.

ROS 2 launch hands every argument over as a string. `check_launch_arguments` parses each one by
the type of its declared default (true/false, a number, text) and checks it against the same
choices and ranges as the node parameter it feeds (`ami_robot.ros.params`), so `backend:=gpu` or
`separate_processes:=yes` stops the launch with one line naming the argument, before any node
starts, instead of leaving part of the graph running. An argument declared with an empty default
means "not given" when left empty; given, it is parsed by the type of the parameter it feeds
(`replan_every:=5` is the integer 5).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ami_robot.errors import ConfigError
from ami_robot.ros import params as P

BOOLEANS = {"true": True, "false": False}


def argument_like(
    name: str, specs: list[P.ParameterSpec], default: Any = None, description: str = ""
) -> P.ParameterSpec:
    """A launch argument that feeds parameter `name` of `specs`: the same choices and range, with
    its own default (None: the parameter's) and description (empty: the parameter's)."""
    spec = next(s for s in specs if s.name == name)
    return dataclasses.replace(
        spec,
        default=spec.default if default is None else default,
        description=description or spec.description,
    )


BRAIN_ARGUMENTS: list[P.ParameterSpec] = [
    P.ParameterSpec("namespace", "", "namespace of all brain nodes and topics"),
    P.ParameterSpec("image_topic", "camera/image", "camera input (sensor_msgs/Image)"),
    P.ParameterSpec("twist_topic", "cmd_vel", "command output with command_type twist (TwistStamped)"),
    P.ParameterSpec("array_topic", "command", "command output with command_type array (Float32MultiArray)"),
    P.ParameterSpec("goal_topic", "goal/image", "goal image input (sensor_msgs/Image)"),
    argument_like("checkpoint", P.CONFIGURATOR, "", "world-model checkpoint directory (empty: the one in params_file)"),
    argument_like(
        "settings_file",
        P.CONFIGURATOR,
        "",
        "BrainSettings YAML (empty: the one in params_file, else CHECKPOINT/brain.yaml)",
    ),
    argument_like("backend", P.CONFIGURATOR, "", "planner backend (empty: the one in params_file)"),
    argument_like("command_type", P.PLANNER, "", "twist or array (empty: the one in params_file)"),
    argument_like(
        "replan_every", P.PLANNER, "", "model steps of each plan executed before replanning (empty: the settings')"
    ),
    argument_like(
        "plan_ahead", P.PLANNER, "", "true: plan the next model step while the current one runs (empty: the settings')"
    ),
    P.ParameterSpec("separate_processes", False, "one process per node instead of the single brain process"),
    P.ParameterSpec(
        "autostart", True, "configure and activate the nodes at start (false: leave them to a lifecycle manager)"
    ),
    P.ParameterSpec("record", "", "record the brain's topics into this new bag directory (MCAP; empty: no recording)"),
    P.ParameterSpec("foxglove", "", "show the brain's topics live in Foxglove on ws://127.0.0.1:PORT (empty: off)"),
]
"""Arguments of brain.launch.py (besides `params_file`)."""

FED_PARAMETERS: dict[str, P.ParameterSpec] = {spec.name: spec for specs in P.NODE_PARAMETERS.values() for spec in specs}
"""The brain's node parameters by name: an argument that feeds one takes its type from it."""


def launch_default(spec: P.ParameterSpec) -> str:
    """The default of a launch argument as the text ROS 2 launch takes ("true", "10.0", ...)."""
    if isinstance(spec.default, bool):
        return str(spec.default).lower()
    return str(spec.default)


def check_launch_arguments(texts: dict[str, str], specs: list[P.ParameterSpec]) -> dict[str, Any]:
    """The arguments `texts` (name -> text, as launch performs them) parsed by the type of each
    spec's default and checked like the parameter they feed, each on its own (the node checks the
    settings together once it has read its settings file); raises ConfigError with one line naming
    the argument. Empty text stays "" for arguments declared with an empty default (not given)."""
    values: dict[str, Any] = {}
    for spec in specs:
        text = texts.get(spec.name, launch_default(spec)).strip()
        values[spec.name] = _parse(spec, text)
    given = {name: value for name, value in values.items() if value != ""}
    try:  # each on its own: rules across settings (replan_every <= planner.horizon) need the settings file
        P.check_each(given, [s for s in specs if s.name in given])
    except ConfigError as exc:
        raise ConfigError(f"launch argument {exc}") from exc
    return values


def foxglove_port(text: str) -> int | None:
    """The port of the `foxglove` launch argument: None when empty (no live view), else 0-65535;
    raises ConfigError with one line naming the argument."""
    if not text.strip():
        return None
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"launch argument foxglove must be a port in 0-65535 (empty: no live view), got {text!r}")
    return port


TEXT_CHECKS = {"foxglove": foxglove_port}
"""Text arguments with a format of their own: the check that raises ConfigError for a bad one."""


def _parse(spec: P.ParameterSpec, text: str) -> Any:
    if spec.default == "" and spec.name in FED_PARAMETERS:
        if not text:
            return ""
        spec = dataclasses.replace(spec, default=FED_PARAMETERS[spec.name].default)
    if isinstance(spec.default, bool):
        if text.lower() not in BOOLEANS:
            raise ConfigError(f"launch argument {spec.name} must be true or false, got {text!r}")
        return BOOLEANS[text.lower()]
    if isinstance(spec.default, (int, float)):
        kind = type(spec.default)
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(
                f"launch argument {spec.name} must be a{'n integer' if kind is int else ' number'}, got {text!r}"
            ) from None
    if spec.name in TEXT_CHECKS:
        TEXT_CHECKS[spec.name](text)
    return text
