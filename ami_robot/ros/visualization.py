"""The brain's plan as visualization_msgs/MarkerArray, for RViz and Foxglove (`brain/plan/markers`).

Positions are the planned velocities integrated from the robot's current position, as in
`conversions.plan_to_path`: action[0] is the x velocity and action[1] the y velocity (m/s, or
the simulated robot's units per second), integrated over `dt_s` per planned step.

Markers, all in `frame_id`, each replacing its predecessor (the first marker clears the last plan):

- ns "plan", id 0: LINE_STRIP through the planned positions (green).
- ns "spread", ids 0..T-1: one flat ellipse (SPHERE) per planned position, its half-axes one standard
  deviation of that position along x and y, from the planner's final sampling std (the elites'
  spread) accumulated over the steps as independent errors: sigma_k = dt * sqrt(sum_{j<=k} std_j^2).
- ns "status", id 0: TEXT_VIEW_FACING at the plan's end: its cost, and the surprise when known.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

PLAN_COLOR = ColorRGBA(r=0.1, g=0.8, b=0.2, a=1.0)
SPREAD_COLOR = ColorRGBA(r=0.2, g=0.5, b=1.0, a=0.25)
TEXT_COLOR = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
MIN_SCALE = 1e-4
"""Smallest marker extent (m): RViz refuses a zero scale."""


def planned_positions(raw_plan: np.ndarray, dt_s: float) -> np.ndarray:
    """Planned velocities (T, A) -> positions (T + 1, 2) from the origin (the robot now)."""
    raw_plan = np.asarray(raw_plan, dtype=np.float64)
    xy = np.zeros((raw_plan.shape[0] + 1, 2))
    dims = min(2, raw_plan.shape[1])
    xy[1:, :dims] = np.cumsum(raw_plan[:, :dims] * dt_s, axis=0)
    return xy


def position_spread(raw_std: np.ndarray, dt_s: float) -> np.ndarray:
    """Per-step velocity std (T, A) -> std of each planned position (T, 2) along x and y."""
    raw_std = np.asarray(raw_std, dtype=np.float64)
    sigma = np.zeros((raw_std.shape[0], 2))
    dims = min(2, raw_std.shape[1])
    sigma[:, :dims] = dt_s * np.sqrt(np.cumsum(raw_std[:, :dims] ** 2, axis=0))
    return sigma


def plan_markers(
    raw_plan: np.ndarray,
    raw_std: np.ndarray | None,
    dt_s: float,
    stamp: Time,
    frame_id: str = "base_link",
    cost: float = float("nan"),
    surprise: float | None = None,
    line_width: float = 0.01,
) -> MarkerArray:
    """The plan (T, A) and its sampling std (T, A) or None, raw action units, as a MarkerArray
    (module docstring); `line_width` and the text height in metres."""
    header = Header(stamp=stamp, frame_id=frame_id)
    xy = planned_positions(raw_plan, dt_s)
    markers = [Marker(header=header, action=Marker.DELETEALL)]
    path = Marker(header=header, ns="plan", id=0, type=Marker.LINE_STRIP, action=Marker.ADD, color=PLAN_COLOR)
    path.pose.orientation.w = 1.0
    path.scale.x = line_width
    path.points = [Point(x=float(x), y=float(y)) for x, y in xy]
    path.lifetime = Duration()
    markers.append(path)
    if raw_std is not None:
        for index, ((x, y), (sx, sy)) in enumerate(zip(xy[1:], position_spread(raw_std, dt_s))):
            ellipse = Marker(
                header=header, ns="spread", id=index, type=Marker.SPHERE, action=Marker.ADD, color=SPREAD_COLOR
            )
            ellipse.pose.position.x, ellipse.pose.position.y = float(x), float(y)
            ellipse.pose.orientation.w = 1.0
            ellipse.scale.x = max(2.0 * float(sx), MIN_SCALE)
            ellipse.scale.y = max(2.0 * float(sy), MIN_SCALE)
            ellipse.scale.z = MIN_SCALE
            markers.append(ellipse)
    text = Marker(header=header, ns="status", id=0, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, color=TEXT_COLOR)
    text.pose.position.x, text.pose.position.y = float(xy[-1, 0]), float(xy[-1, 1])
    text.pose.position.z = 5.0 * line_width
    text.pose.orientation.w = 1.0
    text.scale.z = 5.0 * line_width
    text.text = status_text(cost, surprise)
    markers.append(text)
    return MarkerArray(markers=markers)


def status_text(cost: float, surprise: float | None) -> str:
    """The marker text, e.g. `cost 1.23  surprise 0.045` (surprise left out while unknown)."""
    parts = [f"cost {cost:.3g}" if math.isfinite(cost) else "cost n/a"]
    if surprise is not None and math.isfinite(surprise):
        parts.append(f"surprise {surprise:.3g}")
    return "  ".join(parts)
