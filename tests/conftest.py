"""Test session set-up: keep every DDS participant of this run on this machine, and let tests import
the shared helper modules beside them (model_helpers, planning_helpers)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ami_robot.ros.dds import apply_localhost_environment

os.environ.setdefault("MUJOCO_GL", "egl")
apply_localhost_environment()
sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `long` run only with AMI_ROBOT_LONG_TESTS=1 (see pyproject.toml's markers)."""
    if os.environ.get("AMI_ROBOT_LONG_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="long test: set AMI_ROBOT_LONG_TESTS=1 to run it")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def dot_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dot world's episode dataset shared by the training tests: 30 episodes of 40 steps, 32 px."""
    from ami_sim.dotworld import write_dot_dataset

    return write_dot_dataset(tmp_path_factory.mktemp("dot"), episodes=30, steps=40, image_size=32, seed=0)
