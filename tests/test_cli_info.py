"""`ami-robot info CHECKPOINT`: one screen on what a checkpoint holds, and whether it loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_helpers import tiny_world_model

from ami_robot.cli import main
from ami_robot.world_model import (
    CriticConfig,
    load_checkpoint,
    save_checkpoint,
)

SCREEN_LINES = 24


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    model = tiny_world_model(
        frameskip=3,
        action_low=(-0.5, -1.0),
        action_high=(0.5, 1.0),
        critic=CriticConfig(latent_dim=8, hidden_dim=16, depth=1, embed_dim=8, asymmetric_dim=4),
        ensemble=2,
    )
    metrics = {
        "step": 40,
        "pred_loss": 0.25,
        "copy_baseline_loss": 0.5,
        "critic": {"mae": 1.5},
        "data": {"name": "dots", "sha256": "ab" * 32, "episodes": 12, "env": "dots"},
        "critic_data": {"name": "chained", "episodes": 3},
        "ensemble_data": {
            "name": "slow+fast",
            "episodes": 5,
            "datasets": [{"name": "slow", "sha256": "cd" * 32, "episodes": 2}, {"name": "fast", "episodes": 3}],
        },
        "ensemble": {
            "ensemble_rollout_mse": [0.1, 0.2],
            "joint_predictor_rollout_mse": [0.15, 0.3],
            "datasets": [
                {"name": "slow", "ensemble_rollout_mse": [0.05, 0.12], "joint_predictor_rollout_mse": [0.1, 0.25]},
                {"name": "fast", "ensemble_rollout_mse": [0.2, 0.31], "joint_predictor_rollout_mse": [0.2, 0.4]},
            ],
        },
    }
    return save_checkpoint(tmp_path / "ckpt", model, metrics=metrics)


def test_info_fits_one_screen_and_names_what_the_checkpoint_holds(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(checkpoint), "--json", str(tmp_path / "info.json")]) == 0
    text = capsys.readouterr().out
    assert len(text.splitlines()) <= SCREEN_LINES
    for expected in (
        "latent 8, image 32 px",
        "action dim 2, frameskip 3",
        "predictor mlp 16 x 1",
        "critic    16 x 1 -> 8",
        "low [-0.5, -1], high [0.5, 1]",
        "step 40: val pred 0.25, copy baseline 0.5",
        "critic    mae 1.5",
        "data        name dots, sha256 abababababab, episodes 12, env dots",
        "  critic    name chained, episodes 3",
        "  ensemble  name slow+fast, episodes 5, datasets [slow: 2 episodes, sha256 cdcdcdcdcdcd; fast: 3 episodes]",
        "ensemble  2 predictors: ",
        "rollout MSE at step 2: members' mean 0.2, joint predictor 0.3",
        "on slow: members' mean 0.12, joint predictor 0.25",
        "on fast: members' mean 0.31, joint predictor 0.4",
        "final (no train state)",
        "checksum    OK: SHA-256",
    ):
        assert expected in text, expected
    from ami_robot.planning.backends import auto_backend

    here = auto_backend(native=True, ensemble=True)
    assert f"  planner   cem 300 x 30, top 30, horizon 5, replan every 1; backend auto: {here} here" in text
    shown = json.loads((tmp_path / "info.json").read_text())
    assert shown["planner"]["backend_here"] == here
    assert shown["loads"] is True and shown["data"]["critic_data"] == {"name": "chained", "episodes": 3}
    assert shown["data"]["data"]["sha256"] == "ab" * 32, "the JSON keeps the whole digest"
    assert shown["parameters"]["ensemble"] == 2 * shown["parameters"]["predictor"]
    in_model = sum(t.numel() for t in load_checkpoint(checkpoint).state_dict().values())
    assert sum(shown["parameters"].values()) == in_model, "counts from the safetensors header equal the model's"


def test_info_shows_how_the_settings_beside_the_checkpoint_plan(
    checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (checkpoint / "brain.yaml").write_text("backend: torch\nmethod: mppi\nplanner: {samples: 64, elites: 8}\n")
    assert main(["info", str(checkpoint)]) == 0
    assert "  planner   mppi 64 x 30, top 8, horizon 5, replan every 1; backend torch\n" in capsys.readouterr().out
    (checkpoint / "brain.yaml").write_text("planner: {samples: 0}\n")
    assert main(["info", str(checkpoint)]) == 0
    assert "  planner   settings not readable: " in capsys.readouterr().out


def test_info_reports_corrupt_weights_and_exits_2(checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = checkpoint / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert main(["info", str(checkpoint)]) == 2
    assert "checksum    FAILED: " in capsys.readouterr().out


def test_info_on_a_directory_that_is_no_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path)]) == 2
    assert "not a checkpoint" in capsys.readouterr().err
