"""QoS profiles of the brain's topics."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

CAMERA = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=qos_profile_sensor_data.reliability,
    durability=qos_profile_sensor_data.durability,
)
"""Camera images: sensor-data QoS (best effort), only the latest frame kept."""

LATEST = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
"""Internal streams where only the newest value matters (latents, state)."""

COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
"""Robot commands: reliable, newest only."""

LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""Goals and settings: the last message is kept for subscribers that join later."""

EVENTS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
"""Diagnostics, success reports, plans."""


def matching(offered: QoSProfile, depth: int) -> QoSProfile:
    """A subscription that matches a publisher offering `offered` (its reliability and durability:
    latched topics deliver their last message) and keeps the last `depth` messages."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=offered.reliability, durability=offered.durability
    )
