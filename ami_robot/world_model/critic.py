"""The cost module's trainable part: a critic C(z, g) >= 0 that predicts how many model steps
separate latent state z from goal g (one model step = frameskip environment steps).

    e = embed(z)                                   plain MLP, (N, D) -> (N, E)
    C(z, g) = max_k relu(e_z,k - e_g,k)            asymmetric part, k < asymmetric_dim
            + sqrt(|e_z,s - e_g,s|^2 + eps) - sqrt(eps)   symmetric part, the other E - asymmetric_dim

The distance is a metric residual network (MRN, Liu et al. 2023): a quasimetric, so C >= 0,
C(z, z) = 0 and C obeys the triangle inequality. The per-state part is a plain MLP (Linear ->
optional LayerNorm -> activation, the predictor's blocks) and the distance is cheap, so a planner
embeds the goal once per plan and each rollout state once (the form a C++/CUDA port runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ami_robot.config import ConfigError, check_settings, setting
from ami_robot.world_model.mlp_predictor import ACTIVATIONS

SYMMETRIC_EPS = 1e-6
"""Inside the square root of the symmetric part: a finite gradient where z = g (units: embedding^2)."""


@dataclass(frozen=True)
class CriticConfig:
    """Architecture of the critic: latent_dim -> hidden_dim (x depth) -> embed_dim."""

    latent_dim: int = setting(32, help="width D of the latents the critic reads", low=1)
    hidden_dim: int = setting(256, help="width of the critic's hidden layers", low=1)
    depth: int = setting(2, help="hidden blocks (Linear -> LayerNorm -> activation)", low=1)
    embed_dim: int = setting(64, help="width E of the embedding the distance is measured in", low=2)
    asymmetric_dim: int = setting(
        32, help="embedding components of the asymmetric (max-relu) part; the rest are Euclidean", low=1
    )
    activation: str = setting("gelu", help="activation of the hidden blocks", choices=tuple(ACTIVATIONS))
    layer_norm: bool = setting(True, help="LayerNorm after each hidden Linear")
    layer_norm_eps: float = setting(1e-5, help="LayerNorm epsilon", low=0.0, low_open=True)

    def __post_init__(self) -> None:
        check_settings(self)
        if self.asymmetric_dim >= self.embed_dim:
            raise ConfigError(
                f"CriticConfig: asymmetric_dim ({self.asymmetric_dim}) must be < embed_dim ({self.embed_dim})"
            )


class Critic(nn.Module):
    """C(z (N, D), goal (N or 1, D)) -> (N,) >= 0, predicted model steps from z to goal."""

    def __init__(self, config: CriticConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.latent_dim
        for _ in range(config.depth):
            layers.append(nn.Linear(width, config.hidden_dim))
            if config.layer_norm:
                layers.append(nn.LayerNorm(config.hidden_dim, eps=config.layer_norm_eps))
            layers.append(ACTIVATIONS[config.activation]())
            width = config.hidden_dim
        layers.append(nn.Linear(width, config.embed_dim))
        self.embedding = nn.Sequential(*layers)

    def embed(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (..., D) -> embeddings (..., E)."""
        return self.embedding(z)

    def distance(self, embedded: torch.Tensor, embedded_goal: torch.Tensor) -> torch.Tensor:
        """MRN distance from embeddings (..., E) to goal embeddings (broadcastable) -> (...,) >= 0."""
        k = self.config.asymmetric_dim
        difference = embedded - embedded_goal
        asymmetric = torch.relu(difference[..., :k]).amax(-1)
        squared = difference[..., k:].square().sum(-1)
        eps = squared.new_tensor(SYMMETRIC_EPS)
        symmetric = torch.sqrt(squared + eps) - torch.sqrt(eps)
        return asymmetric + symmetric

    def forward(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """z (N, D), goal (N, D) or (1, D) -> predicted steps (N,) >= 0."""
        return self.distance(self.embed(z), self.embed(goal))
