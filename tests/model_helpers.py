"""Small world models for tests: a tiny random one for tests that need a checkpoint but not a
trained one (brain, CLI and ROS tests), and the one the training tests train on the dot world."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ami_robot.perception import EncoderConfig
from ami_robot.world_model import PredictorConfig, WorldModel, WorldModelConfig, save_checkpoint

TINY_MODEL = WorldModelConfig(
    latent_dim=8,
    env_action_dim=2,
    image_size=32,
    encoder=EncoderConfig(cnn_channels=(4, 8), feature_dim=16, projector_hidden_dim=16),
    predictor=PredictorConfig(hidden_dim=16, depth=1),
    action_low=(-1.0, -1.0),
    action_high=(1.0, 1.0),
)
"""8-d latents, 2-d actions in [-1, 1], 32 px images, a two-layer CNN and a one-layer MLP predictor."""

DOT_WORLD_MODEL = WorldModelConfig(
    latent_dim=16,
    image_size=32,
    encoder=EncoderConfig(cnn_channels=(16, 32, 32), feature_dim=64, projector_hidden_dim=128),
    predictor=PredictorConfig(hidden_dim=128, depth=2),
)
"""The smallest model that learns the dot world (`dot_data`) in a few hundred steps on a CPU."""


def tiny_world_model(seed: int = 0, **changes: Any) -> WorldModel:
    """`TINY_MODEL` with `changes` (WorldModelConfig fields), initialised from torch seed `seed`."""
    torch.manual_seed(seed)
    return WorldModel(dataclasses.replace(TINY_MODEL, **changes))


def tiny_checkpoint(directory: Path, seed: int = 0, **changes: Any) -> Path:
    """`tiny_world_model(seed, **changes)` saved like a trained model into `directory`; returns it."""
    return save_checkpoint(directory, tiny_world_model(seed, **changes))
