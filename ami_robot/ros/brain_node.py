"""The `brain` executable: perception, configurator, planner and memory nodes in one process
(one executor thread), for the lowest latency. The same node classes run as separate
processes with the `perception`, `configurator`, `planner` and `memory` executables."""

from __future__ import annotations

from ami_robot.ros.configurator_node import ConfiguratorNode
from ami_robot.ros.memory_node import MemoryNode
from ami_robot.ros.perception_node import PerceptionNode
from ami_robot.ros.planner_node import PlannerNode
from ami_robot.ros.runtime import run_nodes

NODES = (ConfiguratorNode, PerceptionNode, PlannerNode, MemoryNode)


def main(argv: list[str] | None = None) -> int:
    return run_nodes(list(NODES), argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
