"""The world model: encoder (pixels -> z) and action-conditioned predictor (z history, a -> next z).

Actions seen by the predictor are normalised, `(raw - action_mean) / action_std` per action
dimension, and with `frameskip` > 1 an action block: the `frameskip` raw actions applied between
two model frames, concatenated (oldest first), so `action_dim = frameskip * env_action_dim`.
The planner searches in this normalised, blocked space; `denormalize_actions` maps a plan back
to raw robot commands and `action_bounds` gives the raw bounds seen in the data in that space.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from ami_robot.perception import Encoder, EncoderConfig, to_model_input
from ami_robot.world_model.critic import Critic, CriticConfig
from ami_robot.world_model.ensemble import PredictorEnsemble
from ami_robot.world_model.mlp_predictor import ACTIVATIONS, MLPPredictor, MLPPredictorConfig
from ami_robot.world_model.rollout import autoregressive_rollout
from ami_robot.world_model.transformer_predictor import TransformerPredictor, TransformerPredictorConfig


@dataclass(frozen=True)
class PredictorConfig:
    """kind "mlp" (runs on the C++/CUDA planner) or "transformer" (AdaLN-zero, torch backend).

    `hidden_dim` is the MLP width or the transformer width; `depth` its number of blocks.
    """

    kind: Literal["mlp", "transformer"] = "mlp"
    hidden_dim: int = 512
    depth: int = 3
    activation: str = "gelu"
    heads: int = 4
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "transformer"):
            raise ValueError(f"predictor kind must be 'mlp' or 'transformer', got {self.kind!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")


@dataclass(frozen=True)
class WorldModelConfig:
    """Everything needed to rebuild a WorldModel; saved as JSON next to its weights.

    action_mean/std/low/high have `env_action_dim` entries (empty: identity normalisation,
    unknown bounds). image_size is the square side the encoder sees; other sizes are resized.
    critic: the trained critic's architecture (None: the model has no critic).
    ensemble: how many predictors of the predictor's architecture were trained on the frozen
    latents after the world model (0: none); a model with them plans through them.
    """

    latent_dim: int = 32
    env_action_dim: int = 2
    frameskip: int = 1
    history: int = 1
    image_size: int = 64
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    action_mean: tuple[float, ...] = ()
    action_std: tuple[float, ...] = ()
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    critic: CriticConfig | None = None
    ensemble: int = 0

    def __post_init__(self) -> None:
        if self.ensemble == 1 or self.ensemble < 0:
            raise ValueError(f"ensemble must be 0 (none) or >= 2 predictors, got {self.ensemble}")
        for name in ("latent_dim", "env_action_dim", "frameskip", "history", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("action_mean", "action_std", "action_low", "action_high"):
            values = getattr(self, name)
            if values and len(values) != self.env_action_dim:
                raise ValueError(f"{name} has {len(values)} entries, expected env_action_dim={self.env_action_dim}")
        if any(s <= 0 for s in self.action_std):
            raise ValueError(f"action_std must be positive, got {self.action_std}")
        if self.critic is not None and self.critic.latent_dim != self.latent_dim:
            raise ValueError(f"critic.latent_dim {self.critic.latent_dim} != latent_dim {self.latent_dim}")

    @property
    def action_dim(self) -> int:
        return self.env_action_dim * self.frameskip


def build_predictor(config: WorldModelConfig) -> nn.Module:
    p = config.predictor
    if p.kind == "mlp":
        return MLPPredictor(
            MLPPredictorConfig(
                latent_dim=config.latent_dim,
                action_dim=config.action_dim,
                hidden_dim=p.hidden_dim,
                depth=p.depth,
                activation=p.activation,
                history=config.history,
            )
        )
    return TransformerPredictor(
        TransformerPredictorConfig(
            latent_dim=config.latent_dim,
            action_dim=config.action_dim,
            history=config.history,
            width=p.hidden_dim,
            depth=p.depth,
            heads=p.heads,
            mlp_ratio=p.mlp_ratio,
        )
    )


class WorldModel(nn.Module):
    """encode(pixels) -> z (B, D); predict(z_history (B, k, D), action (B, A)) -> next z (B, D);
    critic(z (B, D), goal (B or 1, D)) -> predicted steps (B,), when the model has one;
    ensemble.rollout(z_history, actions) -> (M, B, H, D), when the model has one."""

    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.encoder, config.image_size, config.latent_dim)
        self.predictor = build_predictor(config)
        self.critic: Critic | None = None if config.critic is None else Critic(config.critic)
        self.ensemble: PredictorEnsemble | None = (
            PredictorEnsemble([build_predictor(config) for _ in range(config.ensemble)]) if config.ensemble else None
        )

    def attach_ensemble(self, ensemble: PredictorEnsemble) -> None:
        """Make `ensemble` this model's predictor ensemble (replacing any), recorded in `config.ensemble`."""
        self.ensemble = ensemble
        self.config = dataclasses.replace(self.config, ensemble=len(ensemble))

    def attach_critic(self, critic: Critic) -> None:
        """Make `critic` this model's critic (replacing any), recorded in `config.critic`."""
        self.critic = critic
        self.config = dataclasses.replace(self.config, critic=critic.config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def action_dim(self) -> int:
        """Width of the predictor's action input: frameskip * env_action_dim (normalised)."""
        return self.config.action_dim

    @property
    def env_action_dim(self) -> int:
        return self.config.env_action_dim

    @property
    def history(self) -> int:
        return self.config.history

    @property
    def frameskip(self) -> int:
        return self.config.frameskip

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, pixels: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, 3) or float (B, 3, H, W) in [-1, 1] -> z (B, D)."""
        pixels = torch.as_tensor(pixels).to(self.device, non_blocking=True)
        return self.encoder(to_model_input(pixels, self.image_size))

    def predict(self, z_history: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """z_history (B, k, D) oldest first, normalised action block (B, A) -> z_{t+1} (B, D)."""
        return self.predictor(z_history, action)

    def rollout(self, z_history: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Autoregressive prediction: z_history (B, k, D) or (B, D), actions (B, H, A) -> latents (B, H, D)."""
        if z_history.dim() == 2:
            z_history = z_history.unsqueeze(1)
        return autoregressive_rollout(self.predictor, z_history, actions)

    def _stats(self, name: str, default: float) -> np.ndarray:
        values = getattr(self.config, name)
        return np.asarray(values if values else [default] * self.env_action_dim, dtype=np.float32)

    def normalize_actions(self, raw: np.ndarray) -> np.ndarray:
        """Raw actions (..., env_action_dim) or blocks (..., action_dim) -> normalised, same shape."""
        raw = np.asarray(raw, dtype=np.float32)
        a = raw.reshape(*raw.shape[:-1], -1, self.env_action_dim)
        return ((a - self._stats("action_mean", 0.0)) / self._stats("action_std", 1.0)).reshape(raw.shape)

    def denormalize_actions(self, normalized: np.ndarray) -> np.ndarray:
        """Inverse of `normalize_actions`: normalised (..., env_action_dim or action_dim) -> raw."""
        normalized = np.asarray(normalized, dtype=np.float32)
        a = normalized.reshape(*normalized.shape[:-1], -1, self.env_action_dim)
        return (a * self._stats("action_std", 1.0) + self._stats("action_mean", 0.0)).reshape(normalized.shape)

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Raw action bounds seen in training, in the normalised blocked space: (low, high), each (action_dim,)."""
        if not self.config.action_low:
            return None
        low = np.tile(self.normalize_actions(np.asarray(self.config.action_low)), self.frameskip)
        high = np.tile(self.normalize_actions(np.asarray(self.config.action_high)), self.frameskip)
        return low, high
