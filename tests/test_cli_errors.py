"""Every command reports an expected problem (any AmiRobotError) the same way: one line on stderr
that names the file or setting and the problem, and exit code 2; no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ami_robot.cli import main
from ami_robot.data.episodes import episode_name, read_episode, write_episode
from ami_sim.dotworld import write_dot_dataset


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def assert_one_line_error(err: str, command: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ami-robot {command}: error: "), lines[0]
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_eval_reports_a_broken_checkpoint_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "model.safetensors").write_bytes(b"")
    code, err = run_cli(["eval", "--env", "tworoom", "--checkpoint", str(tmp_path), "--episodes", "1"], capsys)
    assert code == 2
    assert_one_line_error(err, "eval", str(tmp_path / "config.json"), "not valid JSON")


def test_eval_reports_a_bad_settings_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "brain.yaml"
    settings.write_text("safety: {stop_action: [.nan]}\n")
    code, err = run_cli(["eval", "--env", "tworoom", "--settings", str(settings), "--episodes", "1"], capsys)
    assert code == 2
    assert_one_line_error(err, "eval", str(settings), "stop_action must be finite")


def test_eval_resume_without_a_recording_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["eval", "--env", "tworoom", "--episodes", "1", "--resume"], capsys)
    assert code == 2
    assert_one_line_error(err, "eval", "--resume", "needs --record-episodes DIR")


def test_train_reports_bad_dataset_lists_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dot_dataset(tmp_path / "data", episodes=4, steps=12, image_size=16)
    out = ["--out", str(tmp_path / "ckpt"), "--steps", "1", "--no-progress"]
    code, err = run_cli(["train", "--data", str(data), str(data), *out], capsys)
    assert code == 2
    assert_one_line_error(err, "train", str(data), "more than once")
    code, err = run_cli(["train", "--data", str(data), str(tmp_path / "other"), "--bag", str(tmp_path), *out], capsys)
    assert code == 2
    assert_one_line_error(err, "train", "--bag converts into one --data directory")
    assert not (tmp_path / "ckpt" / "model.safetensors").exists()


def test_train_refuses_an_episode_with_nan_actions_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_dot_dataset(tmp_path / "data", episodes=4, steps=12, image_size=16)
    bad_file = data / episode_name(2)
    episode = read_episode(bad_file)
    episode.actions[5, 0] = np.nan
    write_episode(bad_file, episode)
    code, err = run_cli(
        ["train", "--data", str(data), "--out", str(tmp_path / "ckpt"), "--steps", "1", "--no-progress"], capsys
    )
    assert code == 2
    assert_one_line_error(err, "train", str(bad_file), "actions hold NaN or Inf (first at step 5)")
    assert not (tmp_path / "ckpt" / "model.safetensors").exists()


def test_train_reports_a_bad_config_value_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("lr: .inf\n")
    code, err = run_cli(
        ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(config)], capsys
    )
    assert code == 2
    assert_one_line_error(err, "train", str(config), "lr must be finite")


def test_train_reports_a_missing_dataset_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["train", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert_one_line_error(err, "train", str(tmp_path / "absent"))


def test_collect_reports_bad_options_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["collect", "--env", "tworoom", "--episodes", "0", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert_one_line_error(err, "collect", "episodes must be >= 1")


def test_eval_refuses_a_checkpoint_with_nan_weights_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from ami_robot.perception import EncoderConfig
    from ami_robot.world_model import PredictorConfig, WorldModel, WorldModelConfig, save_checkpoint

    model = WorldModel(
        WorldModelConfig(
            latent_dim=8,
            image_size=32,
            encoder=EncoderConfig(cnn_channels=(4, 8), feature_dim=16, projector_hidden_dim=16),
            predictor=PredictorConfig(hidden_dim=16, depth=1),
        )
    )
    with torch.no_grad():
        model.encoder.backbone.head[1].weight.fill_(float("nan"))
    save_checkpoint(tmp_path / "ckpt", model)
    code, err = run_cli(
        ["eval", "--env", "tworoom", "--checkpoint", str(tmp_path / "ckpt"), "--episodes", "1", "--budget", "2"], capsys
    )
    assert code == 2
    assert_one_line_error(
        err, "eval", str(tmp_path / "ckpt" / "model.safetensors"), "'encoder.backbone.head.1.weight'", "NaN"
    )
