"""Parameters are declared with descriptors and validated when set at run time (in-process node)."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

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


@pytest.mark.parametrize(("value", "threads"), [(None, 1), ("3", 3), ("0", 1), ("two", 1)])
def test_node_processes_run_torch_on_one_thread_unless_told(monkeypatch: pytest.MonkeyPatch, value, threads) -> None:
    from ami_robot.ros.node_base import default_torch_threads

    if value is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert default_torch_threads() == threads
