"""The MLP latent predictor that the planner's C++/CUDA kernels run.

    z_{t+1} = z_t + f([z_{t-k+1}, ..., z_t, a_t])

f is `depth` blocks of Linear -> LayerNorm -> activation of width `hidden_dim`, then a final
Linear back to `latent_dim`. The input is the last `history` latents (oldest first) concatenated
with the action. `ami_robot.planning.MLPDynamics.from_module` exports exactly this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh}


@dataclass(frozen=True)
class MLPPredictorConfig:
    latent_dim: int
    action_dim: int
    hidden_dim: int = 512
    depth: int = 4
    activation: str = "gelu"
    history: int = 1
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        for name in ("latent_dim", "action_dim", "hidden_dim", "depth", "history"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class MLPPredictor(nn.Module):
    """Residual MLP predictor. forward(z_history (B, k, D) or (B, D), action (B, A)) -> (B, D)."""

    def __init__(self, config: MLPPredictorConfig) -> None:
        super().__init__()
        self.config = config
        in_dim = config.history * config.latent_dim + config.action_dim
        blocks: list[nn.Module] = []
        for i in range(config.depth):
            blocks += [
                nn.Linear(in_dim if i == 0 else config.hidden_dim, config.hidden_dim),
                nn.LayerNorm(config.hidden_dim, eps=config.layer_norm_eps),
                ACTIVATIONS[config.activation](),
            ]
        blocks.append(nn.Linear(config.hidden_dim, config.latent_dim))
        self.net = nn.Sequential(*blocks)

    def forward(self, z_history: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        if z_history.dim() == 2:
            z_history = z_history.unsqueeze(1)
        k = self.config.history
        if z_history.shape[1] != k:
            raise ValueError(f"expected a history of {k} latents, got shape {tuple(z_history.shape)}")
        x = torch.cat([z_history.flatten(1), action], dim=-1)
        return z_history[:, -1] + self.net(x)

    def linear_layers(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def layer_norms(self) -> list[nn.LayerNorm]:
        return [m for m in self.net if isinstance(m, nn.LayerNorm)]
