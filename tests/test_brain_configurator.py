"""The configurator: typed settings, validation of run-time changes, stored goals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ami_robot.config import ConfigError
from ami_robot.configurator import BrainSettings, Configurator, flatten_settings, load_goal_image, settings_from_flat


def test_flat_settings_round_trip() -> None:
    settings = BrainSettings()
    flat = flatten_settings(settings)
    assert {"planner.horizon", "cost.goal_weight", "safety.deadline_s", "checkpoint"} <= set(flat)
    assert not any(name.startswith("planner.cost.") for name in flat), "the cost has one home: cost.*"
    assert settings_from_flat(flat) == settings


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"planner.horizon": 0}, "horizon"),
        ({"planner.elites": 500}, "elites"),
        ({"cost.goal_weight": -1.0}, "goal_weight"),
        ({"method": "gradient"}, "must be one of"),
        ({"planner.horizonn": 3}, "unknown setting"),
        ({"planner.cost.goal_weight": 2.0}, "not a setting"),
        ({"safety.image_timeout_s": 0.0}, "image_timeout_s"),
    ],
)
def test_invalid_changes_are_rejected_and_change_nothing(change: dict, message: str) -> None:
    configurator = Configurator()
    before = configurator.settings
    with pytest.raises(ConfigError, match=message):
        configurator.update(change)
    assert configurator.settings is before and configurator.version == 0


def test_valid_changes_apply_and_count_versions() -> None:
    configurator = Configurator()
    configurator.update({"planner.horizon": 9, "cost.action_weight": 0.2})
    assert configurator.settings.planner.horizon == 9
    assert configurator.settings.planner_config().cost.action_weight == 0.2
    assert configurator.version == 1
    configurator.update({"planner.horizon": 9})
    assert configurator.version == 1, "no change, no new version"


def test_stored_goals_load_from_png_and_npy(tmp_path: Path) -> None:
    import cv2

    goal = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "goal.png"), cv2.cvtColor(goal, cv2.COLOR_RGB2BGR))
    np.save(tmp_path / "goal.npy", goal)
    np.testing.assert_array_equal(load_goal_image(tmp_path / "goal.png"), goal)
    configurator = Configurator()
    configurator.load_goal(tmp_path / "goal.npy")
    np.testing.assert_array_equal(configurator.goal_image, goal)
    assert configurator.goal_version == 1
    with pytest.raises(FileNotFoundError):
        load_goal_image(tmp_path / "missing.png")
    with pytest.raises(FileNotFoundError):
        configurator.switch_model(tmp_path / "no-checkpoint")
