"""Settings are declared once (`ami_robot.config.setting`): ranges, choices and finiteness are
checked at construction, whatever the source (code, YAML, flat ROS parameter names)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ami_robot.actor.safety import SafetyConfig
from ami_robot.config import ConfigError, choices_of, iter_settings, load_yaml
from ami_robot.configurator import BrainSettings, settings_from_flat
from ami_robot.configurator.settings import load_brain_settings
from ami_robot.cost import CostConfig
from ami_robot.errors import AmiRobotError
from ami_robot.planning.backends import BACKEND_CHOICES
from ami_robot.planning.config import METHOD_NAMES, PlannerConfig
from ami_robot.training.config import TrainConfig

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SafetyConfig(stop_action=(NAN,)), "stop_action"),
        (lambda: SafetyConfig(image_timeout_s=NAN), "image_timeout_s"),
        (lambda: SafetyConfig(deadline_s=NAN), "deadline_s"),
        (lambda: SafetyConfig(max_rate=INF), "max_rate"),
        (lambda: SafetyConfig(action_low=(-INF,)), "action_low"),
        (lambda: PlannerConfig(momentum=NAN), "momentum"),
        (lambda: PlannerConfig(keep_elites_fraction=NAN), "keep_elites_fraction"),
        (lambda: PlannerConfig(max_rate=NAN), "max_rate"),
        (lambda: CostConfig(latent_low=-INF), "latent_low"),
        (lambda: CostConfig(goal_weight=INF), "goal_weight"),
        (lambda: BrainSettings(control_rate_hz=NAN), "control_rate_hz"),
        (lambda: TrainConfig(lr=NAN), "lr"),
    ],
)
def test_non_finite_settings_are_refused_at_construction(make, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"{field} must be finite"):
        make()


def test_range_messages_name_the_field_and_the_range() -> None:
    with pytest.raises(ConfigError, match=r"PlannerConfig.momentum must be in \[0, 1\), got 1.0"):
        PlannerConfig(momentum=1.0)
    with pytest.raises(ConfigError, match=r"SafetyConfig.deadline_s must be in \(0, 60\], got 0.0"):
        SafetyConfig(deadline_s=0.0)
    with pytest.raises(ConfigError, match=r"TrainConfig.device must be one of \['auto', 'cpu', 'cuda'\]"):
        TrainConfig(device="tpu")


def test_flat_settings_reject_nan_as_ros_parameters_would_send_it() -> None:
    for name, value in [("safety.stop_action", [NAN]), ("safety.image_timeout_s", NAN), ("safety.deadline_s", NAN)]:
        with pytest.raises(ConfigError, match=name.split(".")[-1]):
            settings_from_flat({name: value})


def test_choices_are_declared_once() -> None:
    assert choices_of(BrainSettings, "backend") == BACKEND_CHOICES
    assert choices_of(BrainSettings, "method") == METHOD_NAMES
    assert choices_of(PlannerConfig, "cuda_precision") == ("fp32", "tf32", "bf16")
    with pytest.raises(ConfigError, match="backend must be one of"):
        settings_from_flat({"backend": "gpu"})


def test_every_brain_setting_has_help() -> None:
    missing = [name for name, declared in iter_settings(BrainSettings) if not declared.help]
    assert not missing


def test_yaml_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "brain.yaml"
    path.write_text("safety:\n  deadline_s: .nan\n")
    with pytest.raises(ConfigError, match=rf"{path}.*deadline_s must be finite"):
        load_yaml(BrainSettings, path)
    with pytest.raises(ConfigError, match=rf"{tmp_path / 'absent.yaml'}: cannot read"):
        load_yaml(BrainSettings, tmp_path / "absent.yaml")


def test_brain_settings_come_from_the_checkpoint_unless_a_file_is_given(tmp_path: Path) -> None:
    assert load_brain_settings(None, tmp_path) == BrainSettings(checkpoint=str(tmp_path))
    (tmp_path / "brain.yaml").write_text("planner: {samples: 64, elites: 8}\n")
    assert load_brain_settings("", tmp_path).planner.samples == 64
    other = tmp_path / "other.yaml"
    other.write_text("checkpoint: /elsewhere\nmethod: mppi\n")
    settings = load_brain_settings(other, tmp_path)
    assert settings.method == "mppi" and settings.checkpoint == str(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_brain_settings(tmp_path / "missing.yaml", tmp_path)


def test_every_project_error_has_one_base() -> None:
    from ami_robot.errors import BackendUnavailableError, CheckpointError, DataError, ImageError

    for error in (ConfigError, CheckpointError, BackendUnavailableError, ImageError, DataError):
        assert issubclass(error, AmiRobotError)
