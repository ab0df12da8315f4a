"""The critic C(z, g): a quasimetric in model steps, saved in the world model's checkpoint, trained
on a frozen world model (the dot world), resumable and reachable from the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from model_helpers import DOT_WORLD_MODEL

from ami_robot.data import dataset_digest
from ami_robot.errors import ConfigError
from ami_robot.training import CriticTrainConfig, TrainConfig, train, train_critic
from ami_robot.world_model import (
    Critic,
    CriticConfig,
    SIGRegConfig,
    WorldModel,
    WorldModelConfig,
    load_checkpoint,
    save_checkpoint,
)
from ami_robot.world_model.checkpoint import read_config

SMALL_CRITIC = CriticConfig(latent_dim=16, hidden_dim=64, embed_dim=16, asymmetric_dim=8)
TINY = TrainConfig(
    model=DOT_WORLD_MODEL,
    steps=300,
    batch_size=32,
    warmup_steps=10,
    eval_every=300,
    val_fraction=0.2,
    val_windows=128,
    probe_frames=256,
    sigreg=SIGRegConfig(directions=256),
    device="cpu",
    critic=CriticTrainConfig(
        model=dataclasses.replace(SMALL_CRITIC, hidden_dim=128, embed_dim=32, asymmetric_dim=16),
        steps=500,
        eval_every=250,
        max_offset=15,
        rollout_steps=3,
        val_pairs=1024,
        objective="quasimetric",  # the dot world's episodes are random walks
    ),
)


def _untrained_world_model(directory: Path) -> Path:
    """A checkpoint of a freshly initialised world model (frozen weights are all the critic needs)."""
    torch.manual_seed(0)
    config = dataclasses.replace(DOT_WORLD_MODEL, action_mean=(0.0, 0.0), action_std=(0.5, 0.5))
    return save_checkpoint(directory, WorldModel(config))


def test_critic_is_a_nonnegative_quasimetric_in_steps() -> None:
    torch.manual_seed(0)
    critic = Critic(SMALL_CRITIC)
    z, goal, third = torch.randn(3, 256, 16).unbind(0)
    steps = critic(z, goal)
    assert steps.shape == (256,)
    assert bool((steps >= 0).all())
    assert bool((critic(z, z) == 0).all())
    torch.testing.assert_close(critic(z, goal[:1]), critic(z, goal[:1].expand_as(z)))
    assert bool((critic(z, goal) <= critic(z, third) + critic(third, goal) + 1e-5).all())  # triangle inequality
    assert not torch.allclose(critic(z, goal), critic(goal, z))  # asymmetric: going is not coming back


def test_critic_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="asymmetric_dim"):
        CriticConfig(embed_dim=32, asymmetric_dim=32)
    with pytest.raises(ConfigError, match="activation"):
        CriticConfig(activation="softmax")
    with pytest.raises(ValueError, match=r"critic\.latent_dim"):
        WorldModelConfig(latent_dim=32, critic=SMALL_CRITIC)
    with pytest.raises(ConfigError, match=r"critic\.model"):
        TrainConfig(model=dataclasses.replace(DOT_WORLD_MODEL, critic=SMALL_CRITIC))


def test_checkpoint_round_trip_with_and_without_a_critic(tmp_path: Path) -> None:
    torch.manual_seed(0)
    with_critic = WorldModel(dataclasses.replace(DOT_WORLD_MODEL, critic=SMALL_CRITIC)).eval()
    save_checkpoint(tmp_path / "with", with_critic)
    loaded = load_checkpoint(tmp_path / "with")
    assert loaded.config.critic == SMALL_CRITIC and loaded.critic is not None
    assert any(name.startswith("critic.") for name in loaded.state_dict())
    z, goal = torch.randn(2, 5, 16).unbind(0)
    torch.testing.assert_close(loaded.critic(z, goal), with_critic.critic(z, goal))

    save_checkpoint(tmp_path / "without", WorldModel(DOT_WORLD_MODEL))
    config_path = tmp_path / "without" / "config.json"
    config = json.loads(config_path.read_text())
    del config["world_model"]["critic"]  # as written before critics existed
    config_path.write_text(json.dumps(config))
    old = load_checkpoint(tmp_path / "without")
    assert old.critic is None and old.config.critic is None


def test_critic_stage_resumes_exactly_and_refuses_to_overwrite(dot_data: Path, tmp_path: Path) -> None:
    config = dataclasses.replace(
        TINY, critic=dataclasses.replace(TINY.critic, steps=6, eval_every=3, batch_size=16, val_pairs=64)
    )
    _untrained_world_model(tmp_path / "full")
    _untrained_world_model(tmp_path / "split")
    train_critic(dot_data, tmp_path / "full", config, progress=False)
    train_critic(dot_data, tmp_path / "split", config, progress=False, stop_at=3)
    assert json.loads((tmp_path / "split" / "critic_train_state.json").read_text())["step"] == 3
    with pytest.raises(FileExistsError, match="--resume"):
        train_critic(dot_data, tmp_path / "split", config, progress=False)
    train_critic(dot_data, tmp_path / "split", config, progress=False, resume=True)
    full, split = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "split")
    assert full.critic is not None and split.critic is not None
    for name, tensor in full.critic.state_dict().items():
        torch.testing.assert_close(split.critic.state_dict()[name], tensor, rtol=1e-6, atol=1e-7, msg=name)
    saved = json.loads((tmp_path / "full" / "config.json").read_text())
    assert saved["metrics"]["critic"]["step"] == 6
    assert saved["world_model"]["critic"]["latent_dim"] == 16


def test_cli_critic_only_needs_steps_and_writes_metrics(dot_data: Path, tmp_path: Path) -> None:
    from ami_robot.cli import main

    checkpoint = _untrained_world_model(tmp_path / "ckpt")
    argv = ["train", "--data", str(dot_data), "--out", str(checkpoint), "--critic-only", "--no-progress"]
    assert main([*argv, "--device", "cpu"]) != 0  # no critic steps given
    assert main([*argv, "--device", "cpu", "--critic-steps", "2", "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["step"] == 2 and [h["step"] for h in metrics["history"]] == [2]
    assert load_checkpoint(checkpoint).critic is not None


@pytest.mark.slow
def test_critic_learns_temporal_distance_on_the_dot_world(dot_data: Path, tmp_path: Path) -> None:
    train(dot_data, tmp_path / "ckpt", TINY, progress=False)
    metrics = train_critic(dot_data, tmp_path / "ckpt", TINY, progress=False, json_path=tmp_path / "critic.json")
    print({k: v for k, v in metrics.items() if k != "by_state_distance"})
    assert metrics["critic_spearman_steps"] > 0.5
    assert metrics["critic_spearman_steps_predicted"] > 0.5
    # over the whole square, beyond where latent L2 saturates: monotone in the true distance
    assert metrics["critic_spearman_state_distance"] > 0.8
    assert metrics["critic_spearman_state_distance"] > metrics["latent_l2_spearman_state_distance"]
    written = json.loads((tmp_path / "critic.json").read_text())
    assert [h["step"] for h in written["history"]] == [250, 500]
    assert load_checkpoint(tmp_path / "ckpt").critic is not None
    recorded = read_config(tmp_path / "ckpt")[1]
    assert recorded["critic_data"]["sha256"] == recorded["data"]["sha256"] == dataset_digest(dot_data)
    assert recorded["critic_data"]["train_frames"] == metrics["train_frames"]
