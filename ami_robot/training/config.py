"""`TrainConfig`: the training recipe (typed, loaded from YAML) and its learning-rate schedule."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ami_robot.config import ConfigError, check_settings, load_yaml, setting
from ami_robot.world_model.critic import CriticConfig
from ami_robot.world_model.model import WorldModelConfig
from ami_robot.world_model.sigreg import SIGRegConfig

DeviceName = Literal["auto", "cpu", "cuda"]
"""Where training runs: "auto" takes cuda when a GPU is visible, else cpu."""


CriticObjective = Literal["regression", "quasimetric"]
"""How the critic learns temporal distance from pairs (z_t, z_{t+k}) of one episode:
"regression": MSE between log(1 + C) and log(1 + k);
"quasimetric": QRL-style, C pushed up towards `quasimetric_cap` on random pairs while every
episode pair keeps C <= k (a squared-hinge penalty), so C estimates the shortest number of steps.

Measured on held-out TwoRoom episodes (noisy expert, shipped world model, 2000 steps, 60k frames):
regression ranks pairs by steps better (Spearman 0.84 against 0.74; latent L2 0.51) and both grow
over the whole room (Spearman with the true distance 0.94 and 0.92; latent L2 0.77, flat beyond
0.4 units), so regression is the default. On random-walk data (the dot world) regression is not
monotone (0.41) where the quasimetric objective is (0.87): use it for undirected data."""


@dataclass(frozen=True)
class OptimiserConfig:
    """AdamW and its schedule, shared by every training stage (its fields sit flat in the stage's
    YAML section): linear warm-up to `lr`, then cosine decay to `min_lr_fraction` * `lr`."""

    lr: float = setting(1e-3, help="peak learning rate (AdamW)", low=0.0, low_open=True)
    weight_decay: float = setting(1e-4, help="AdamW weight decay", low=0.0)
    min_lr_fraction: float = setting(
        0.1, help="final learning rate as a fraction of lr (cosine decay)", low=0.0, high=1.0
    )
    grad_clip: float = setting(1.0, help="gradient norm clip (0: none)", low=0.0)


@dataclass(frozen=True)
class CriticTrainConfig(OptimiserConfig):
    """The critic stage: a second stage on the frozen world model (`steps` > 0 turns it on).

    Pairs: an input state at model step t of an episode, either the encoded frame or the frozen
    predictor's rollout of up to `rollout_steps` true action blocks from an earlier frame (the
    latents a planner sees), and the goal: the encoded frame k in [0, max_offset] model steps later.
    """

    model: CriticConfig = setting(default_factory=CriticConfig, help="critic architecture (latent_dim from the model)")
    steps: int = setting(0, help="critic optimisation steps after the world model (0: no critic)", low=0)
    batch_size: int = setting(256, help="pairs per optimisation step", low=1)
    warmup_steps: int = setting(100, help="steps of linear learning-rate warm-up", low=0)
    max_offset: int = setting(30, help="largest goal offset k in model steps", low=1)
    rollout_steps: int = setting(
        5, help="largest number of predicted steps behind an input state (0: encoded frames only)", low=0
    )
    objective: CriticObjective = setting("regression", help="how the critic learns temporal distance")
    quasimetric_cap: float = setting(
        60.0, help="quasimetric objective: distance random pairs are pushed to (model steps)", low=0.0, low_open=True
    )
    constraint_weight: float = setting(
        10.0, help="quasimetric objective: weight of the penalty on C > k for episode pairs", low=0.0, low_open=True
    )
    eval_every: int = setting(500, help="validate and checkpoint every N critic steps", low=1)
    val_pairs: int = setting(4096, help="held-out pairs per validation", low=16)


@dataclass(frozen=True)
class EnsembleTrainConfig(OptimiserConfig):
    """The ensemble stage: `members` predictors of the world model's predictor architecture, trained
    one after the other on the frozen encoder's latents, each on its own rollout of `horizon` true
    action blocks (`members` >= 2 turns it on; see `ami_robot.world_model.ensemble`)."""

    members: int = setting(0, help="predictors in the ensemble (0: no ensemble stage; else >= 2)", low=0)
    steps: int = setting(4000, help="optimisation steps of each member", low=1)
    batch_size: int = setting(256, help="windows per optimisation step", low=1)
    warmup_steps: int = setting(200, help="steps of linear learning-rate warm-up (each member)", low=0)
    horizon: int = setting(5, help="model steps each member rolls out in training (the planning horizon)", low=1)
    eval_every: int = setting(1000, help="validate and checkpoint every N steps of a member", low=1)
    val_windows: int = setting(4096, help="held-out windows per validation", low=16)
    dataset_weights: tuple[float, ...] = setting(
        (),
        help="share of each --data directory's windows in every batch, in the order given (normalised; empty: "
        "every training window equally likely, so each directory in proportion to its frames)",
        low=0.0,
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.dataset_weights and sum(self.dataset_weights) <= 0:
            raise ConfigError("EnsembleTrainConfig: dataset_weights must not all be 0")
        if self.members == 1:
            raise ConfigError("EnsembleTrainConfig: members must be 0 (no ensemble) or >= 2")


@dataclass(frozen=True)
class TrainConfig(OptimiserConfig):
    """Training settings; `model` is the architecture (its action statistics are filled from the data).

    reg_weight is the one weight to tune: loss = prediction + reg_weight * regulariser.
    """

    model: WorldModelConfig = setting(default_factory=WorldModelConfig, help="encoder and predictor architecture")
    steps: int = setting(4000, help="total optimisation steps", low=1)
    batch_size: int = setting(64, help="windows per optimisation step", low=1)
    warmup_steps: int = setting(200, help="steps of linear learning-rate warm-up", low=0)
    horizon: int = setting(1, help="predicted steps per window", low=1)
    rollout: bool = setting(False, help="train multi-step on the model's own predictions (else teacher forcing)")
    regularizer: Literal["sigreg", "vicreg"] = setting("sigreg", help="anti-collapse regulariser")
    reg_weight: float = setting(0.02, help="weight of the regulariser against the prediction loss", low=0.0)
    sigreg: SIGRegConfig = setting(default_factory=SIGRegConfig, help="SIGReg settings")
    eval_every: int = setting(500, help="validate and checkpoint every N steps", low=1)
    val_fraction: float = setting(
        0.1, help="share of episodes held out for validation", low=0.0, high=1.0, high_open=True
    )
    val_windows: int = setting(512, help="validation windows per evaluation", low=1)
    probe_frames: int = setting(2048, help="frames of the linear state probe", low=0)
    probe_ridge: float = setting(1e-3, help="ridge penalty of the linear state probe", low=0.0)
    max_frames: int = setting(0, help="cap on training frames held in memory (0: all)", low=0)
    seed: int = setting(0, help="seed of the data split, sampling and initialisation", low=0)
    device: DeviceName = setting("auto", help="training device")
    critic: CriticTrainConfig = setting(
        default_factory=CriticTrainConfig, help="the critic stage, after the world model (critic.steps > 0)"
    )
    ensemble: EnsembleTrainConfig = setting(
        default_factory=EnsembleTrainConfig,
        help="the ensemble stage, after the world model and the critic (ensemble.members >= 2)",
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.model.critic is not None:
            raise ConfigError("TrainConfig: set the critic's architecture under critic.model, not model.critic")
        if self.model.ensemble:
            raise ConfigError("TrainConfig: set the ensemble's size under ensemble.members, not model.ensemble")


def load_train_config(path: str | Path | None, **overrides: Any) -> TrainConfig:
    """TrainConfig from a YAML file (or defaults), then `overrides` that are not None."""
    config = load_yaml(TrainConfig, path) if path else TrainConfig()
    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid training option: {exc}") from exc


def learning_rate(config: TrainConfig | CriticTrainConfig | EnsembleTrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to min_lr_fraction * lr at `steps`."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    floor = config.min_lr_fraction
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
