"""`BrainNode`, the base of every brain node: declared, validated parameters, /diagnostics, and
the active flag its lifecycle callbacks keep. Their `main()` is `ami_robot.ros.runtime.run_nodes`;
latent messages are in `ami_robot.ros.conversions`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.parameter import Parameter

from ami_robot.config import ConfigError
from ami_robot.ros import params as P
from ami_robot.ros.qos import EVENTS

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class BrainNode(LifecycleNode):
    """A lifecycle node with declared, validated parameters and a /diagnostics publisher.

    Subclasses implement configure/activate/deactivate/cleanup via the `on_*` callbacks.
    """

    def __init__(self, name: str, specs: list[P.ParameterSpec], **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.specs = specs
        P.declare_parameters(self, specs)
        self.add_on_set_parameters_callback(self._check_parameters)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", EVENTS)
        self.active = False

    def values(self) -> dict[str, Any]:
        """Current parameter values as plain Python, by name."""
        return {s.name: P.plain(self.get_parameter(s.name).value) for s in self.specs}

    def _check_parameters(self, parameters) -> SetParametersResult:
        changes = {p.name: P.plain(p.value) for p in parameters}
        try:
            P.check_choices(changes, self.specs)
            P.validate({**self.values(), **changes})
        except (ConfigError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def diagnose(self, level: bytes, message: str, **values: Any) -> None:
        """Publish one DiagnosticStatus named after this node on /diagnostics."""
        status = DiagnosticStatus(
            level=level, name=self.get_fully_qualified_name(), message=message, hardware_id="ami_robot"
        )
        status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)
        if level == ERROR:
            self.get_logger().error(message, throttle_duration_sec=1.0)
        elif level == WARN:
            self.get_logger().warning(message, throttle_duration_sec=1.0)

    def follow_checkpoint(self, settings: dict[str, Any]) -> str | None:
        """The new checkpoint if a configurator snapshot `settings` switches the model, else None;
        this node's `checkpoint` parameter is updated to it."""
        checkpoint = settings.get("checkpoint")
        if not checkpoint or checkpoint == self.get_parameter("checkpoint").value:
            return None
        self.set_parameters([Parameter("checkpoint", value=checkpoint)])
        return checkpoint

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_activate(self, state) -> TransitionCallbackReturn:
        self.active = True
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.active = False
        return super().on_deactivate(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.active = False
        return SUCCESS


def percentiles(name: str, values: Iterable[float]) -> dict[str, float]:
    """{name_p50, name_p99} of `values` for a diagnostic (NaN when there are none)."""
    array = np.fromiter(values, dtype=np.float64)
    if array.size == 0:
        return {f"{name}_p50": float("nan"), f"{name}_p99": float("nan")}
    return {f"{name}_p50": float(np.percentile(array, 50)), f"{name}_p99": float(np.percentile(array, 99))}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
