"""The `brain` executable: perception, configurator, planner and memory nodes in one process
(one executor thread), for the lowest latency: the perception node hands each latent straight to
the planner (and publishes it for the others). The same node classes run as separate processes
with the `perception`, `configurator`, `planner` and `memory` executables, over `brain/latent`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.lifecycle import LifecycleNode

from ami_robot.ros.configurator_node import ConfiguratorNode
from ami_robot.ros.memory_node import MemoryNode
from ami_robot.ros.perception_node import PerceptionNode
from ami_robot.ros.planner_node import PlannerNode
from ami_robot.ros.runtime import run_nodes


class BrainNodes:
    """Factories of the brain's nodes for one process, in start order, each made with `node_kwargs`
    (rclpy Node keyword arguments); the planner is wired to the perception node made before it."""

    def __init__(self, **node_kwargs: Any) -> None:
        self.node_kwargs = node_kwargs
        self.perception: PerceptionNode | None = None

    def factories(self) -> list[Callable[[], LifecycleNode]]:
        return [
            lambda: ConfiguratorNode(**self.node_kwargs),
            self.make_perception,
            self.make_planner,
            lambda: MemoryNode(**self.node_kwargs),
        ]

    def make_perception(self) -> PerceptionNode:
        self.perception = PerceptionNode(**self.node_kwargs)
        return self.perception

    def make_planner(self) -> PlannerNode:
        if self.perception is None:
            raise RuntimeError("the perception node is made before the planner")
        planner = PlannerNode(latent_topic=False, **self.node_kwargs)
        self.perception.latent_listeners.append(planner.on_latent)
        return planner


def main(argv: list[str] | None = None) -> int:
    return run_nodes(BrainNodes().factories(), argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
