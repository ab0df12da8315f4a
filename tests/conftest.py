"""Test session set-up: keep every DDS participant of this run on this machine."""

from __future__ import annotations

import os

import pytest

from ami_robot.ros.dds import apply_localhost_environment

os.environ.setdefault("MUJOCO_GL", "egl")
apply_localhost_environment()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `long` run only with AMI_ROBOT_LONG_TESTS=1 (see pyproject.toml's markers)."""
    if os.environ.get("AMI_ROBOT_LONG_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="long test: set AMI_ROBOT_LONG_TESTS=1 to run it")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)
