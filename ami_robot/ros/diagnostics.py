"""The brain's /diagnostics seen from another node (the demo, tests): the latest status of each node.

Every brain node publishes one DiagnosticStatus named after itself (`BrainNode.diagnose`): a level,
a message and KeyValues whose values are numbers or words written as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from ami_robot.ros.qos import EVENTS


@dataclass(frozen=True)
class NodeDiagnostics:
    """One node's DiagnosticStatus: `name` fully qualified (`/planner`), `level` 0 OK, 1 WARN, 2 ERROR."""

    name: str
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)

    def number(self, key: str) -> float | None:
        """The value of `key` as a number, None if absent or not a number."""
        try:
            return float(self.values[key])
        except (KeyError, ValueError):
            return None


class DiagnosticsMonitor:
    """Subscribes /diagnostics on `node`; `latest(name)` is the newest status of a node whose fully
    qualified name ends with `name` (`"/planner"`), or None before one reported."""

    def __init__(self, node: Node) -> None:
        self.statuses: dict[str, NodeDiagnostics] = {}
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, EVENTS)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.statuses.pop(status.name, None)  # keeps the dict ordered by the time of the last report
            self.statuses[status.name] = NodeDiagnostics(
                name=status.name,
                level=int.from_bytes(status.level, "little"),
                message=status.message,
                values={kv.key: kv.value for kv in status.values},
            )

    def latest(self, name: str) -> NodeDiagnostics | None:
        found = [status for full_name, status in self.statuses.items() if full_name.endswith(name)]
        return found[-1] if found else None
