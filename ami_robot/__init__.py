"""ami_robot: an objective-driven robot brain (perception, JEPA world model, cost, planner, memory,
configurator) with a C++/CUDA planning core and ROS 2 nodes at the edge."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def build_info() -> dict[str, Any]:
    """What the compiled core `ami_robot._core` was built with (CUDA or not, architectures, ...)."""
    from ami_robot import _core

    return dict(_core.build_info())
