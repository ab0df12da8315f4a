"""Parameters are declared with descriptors and validated when set at run time (in-process node)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from ami_robot.errors import ConfigError  # noqa: E402
from ami_robot.ros import params as P  # noqa: E402
from ami_robot.ros.node_base import BrainNode  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture
def context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def test_every_parameter_is_declared_with_a_description(context) -> None:
    node = Node("params_probe", context=context)
    try:
        P.declare_parameters(node, P.PLANNER)
        for spec in P.PLANNER:
            descriptor = node.describe_parameter(spec.name)
            assert descriptor.description, spec.name
        rate = node.describe_parameter("control_rate_hz")
        assert rate.floating_point_range[0].from_value == pytest.approx(0.1)
        assert node.get_parameter("safety.action_low").value == [-1.0]
    finally:
        node.destroy_node()


@pytest.mark.parametrize("node_name", ["planner", "configurator"])
def test_invalid_values_are_refused_and_valid_ones_accepted(context, node_name: str) -> None:
    node = BrainNode(node_name, P.NODE_PARAMETERS[node_name], context=context)
    try:
        bad = {
            "planner": [
                Parameter("safety.deadline_s", value=-1.0),
                Parameter("command_type", value="joint"),
                Parameter("safety.action_low", value=[2.0]),
            ],
            "configurator": [
                Parameter("planner.elites", value=10_000),
                Parameter("method", value="gradient"),
                Parameter("cost.goal_weight", value=-0.5),
            ],
        }[node_name]
        for parameter in bad:
            result = node.set_parameters([parameter])[0]
            assert not result.successful, parameter.name
            assert result.reason
        good = (
            Parameter("safety.max_rate", value=0.3) if node_name == "planner" else Parameter("planner.horizon", value=8)
        )
        assert node.set_parameters([good])[0].successful
        assert node.get_parameter(good.name).value == good.value
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    "parameter",
    [
        Parameter("safety.stop_action", value=[math.nan]),
        Parameter("safety.image_timeout_s", value=math.nan),
        Parameter("safety.deadline_s", value=math.nan),
        Parameter("safety.max_rate", value=math.inf),
    ],
    ids=lambda p: p.name,
)
def test_non_finite_values_are_refused_when_set(context, parameter: Parameter) -> None:
    node = BrainNode("planner", P.PLANNER, context=context)
    try:
        before = node.get_parameter(parameter.name).value
        result = node.set_parameters([parameter])[0]
        assert not result.successful and ("finite" in result.reason or "out of range" in result.reason)
        assert node.get_parameter(parameter.name).value == before
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    ("node_name", "parameter", "message"),
    [
        ("configurator", Parameter("backend", value="gpu"), "configurator: backend must be one of"),
        (
            "configurator",
            Parameter("planner.momentum", value=math.nan),
            "configurator: .*planner.momentum.*(finite|out of range)",
        ),
        ("planner", Parameter("command_type", value="bogus"), "planner: command_type must be one of"),
        (
            "planner",
            Parameter("safety.deadline_s", value=math.nan),
            "planner: .*safety.deadline_s.*(finite|out of range)",
        ),
        ("planner", Parameter("control_rate_hz", value=5000.0), "planner: parameter control_rate_hz"),
        ("planner", Parameter("control_rate_hz", value="fast"), "planner: parameter control_rate_hz"),
    ],
)
def test_start_up_values_are_checked_like_a_parameter_set(context, node_name, parameter, message) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        BrainNode(node_name, P.NODE_PARAMETERS[node_name], context=context, parameter_overrides=[parameter])
    assert "\n" not in str(error.value)


def test_simulated_robot_refuses_an_unknown_environment_at_start_up(context) -> None:
    from ami_sim.ros.params import SIM_ROBOT

    node = Node("sim_robot", context=context, parameter_overrides=[Parameter("env", value="mars")])
    try:
        with pytest.raises(ConfigError, match="sim_robot: env must be one of"):
            P.declare_parameters(node, SIM_ROBOT)
    finally:
        node.destroy_node()


def test_settings_start_from_the_checkpoint_settings_file_and_parameters_override_it(context, tmp_path: Path) -> None:
    (tmp_path / "brain.yaml").write_text(
        "planner: {samples: 64, elites: 8}\nsafety: {max_rate: 2.0, deadline_s: 5.0}\n"
    )
    overrides = [Parameter("checkpoint", value=str(tmp_path)), Parameter("safety.deadline_s", value=0.25)]
    planner = BrainNode("planner", P.PLANNER, context=context, parameter_overrides=overrides)
    configurator = BrainNode("configurator", P.CONFIGURATOR, context=context, parameter_overrides=overrides[:1])
    try:
        assert planner.values()["safety.max_rate"] == 2.0, "from the file"
        assert planner.values()["safety.deadline_s"] == 0.25, "the parameter wins"
        assert configurator.values()["planner.samples"] == 64
        assert P.validate(configurator.values()).planner.elites == 8
    finally:
        planner.destroy_node()
        configurator.destroy_node()


def test_a_settings_file_that_no_parameter_can_carry_is_refused(context, tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("cost: {latent_low: -3.0}\n")
    with pytest.raises(ConfigError, match=r"configurator: .*settings.yaml: \['cost.latent_low'\]"):
        BrainNode(
            "configurator",
            P.CONFIGURATOR,
            context=context,
            parameter_overrides=[Parameter("settings_file", value=str(settings_file))],
        )


@pytest.mark.parametrize(("value", "threads"), [(None, 1), ("3", 3), ("0", 1), ("two", 1)])
def test_node_processes_run_torch_on_one_thread_unless_told(monkeypatch: pytest.MonkeyPatch, value, threads) -> None:
    from ami_robot.ros.runtime import default_torch_threads

    if value is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert default_torch_threads() == threads


@pytest.mark.parametrize(
    ("module", "argument", "named"),
    [
        ("ami_robot.ros.configurator_node", "backend:=gpu", "backend"),
        ("ami_robot.ros.planner_node", "command_type:=bogus", "command_type"),
        ("ami_sim.ros.robot_node", "env:=mars", "env"),
    ],
)
def test_a_node_that_refuses_its_start_up_values_says_why_in_one_line(module, argument, named) -> None:
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", module, "--ros-args", "-p", argument],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2, run.stderr[-3000:]
    assert len(lines) == 1 and named in lines[0], run.stderr[-3000:]
    assert "Traceback" not in run.stderr
