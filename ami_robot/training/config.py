"""`TrainConfig`: the training recipe (typed, loaded from YAML) and its learning-rate schedule."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ami_robot.config import ConfigError, load_yaml
from ami_robot.world_model.model import WorldModelConfig
from ami_robot.world_model.sigreg import SIGRegConfig


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; `model` is the architecture (its action statistics are filled from the data).

    reg_weight is the one weight to tune: loss = prediction + reg_weight * regulariser.
    """

    model: WorldModelConfig = field(default_factory=WorldModelConfig)
    steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    min_lr_fraction: float = 0.1
    grad_clip: float = 1.0
    horizon: int = 1
    rollout: bool = False
    regularizer: Literal["sigreg", "vicreg"] = "sigreg"
    reg_weight: float = 0.02
    sigreg: SIGRegConfig = field(default_factory=SIGRegConfig)
    eval_every: int = 500
    val_fraction: float = 0.1
    val_windows: int = 512
    probe_frames: int = 2048
    probe_ridge: float = 1e-3
    max_frames: int = 0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "horizon", "eval_every", "val_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.regularizer not in ("sigreg", "vicreg"):
            raise ValueError(f"regularizer must be 'sigreg' or 'vicreg', got {self.regularizer!r}")


def load_train_config(path: str | Path | None, **overrides: Any) -> TrainConfig:
    """TrainConfig from a YAML file (or defaults), then `overrides` that are not None."""
    config = load_yaml(TrainConfig, path) if path else TrainConfig()
    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid training option: {exc}") from exc


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to min_lr_fraction * lr at `steps`."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    floor = config.min_lr_fraction
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
