"""Transformer latent predictor with AdaLN-zero action conditioning (torch backend only).

    z_{t+1} = z_t + g(z_{t-k+1..t} | a_t)

The k history latents are tokens (plus a learned position embedding); the action conditions
every block through adaptive LayerNorm (shift, scale, gate), DiT-style. The modulation layers
and the output layer start at zero, so a fresh predictor is the copy model z_{t+1} = z_t and
each block starts as the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TransformerPredictorConfig:
    latent_dim: int
    action_dim: int
    history: int = 1
    width: int = 256
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        for name in ("latent_dim", "action_dim", "history", "width", "depth", "heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class AdaLNZeroBlock(nn.Module):
    """Pre-norm attention + MLP block whose norms and residual gates are set by the condition."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
        modulation = nn.Linear(width, 6 * width)
        nn.init.zeros_(modulation.weight)
        nn.init.zeros_(modulation.bias)
        self.modulation = nn.Sequential(nn.SiLU(), modulation)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(condition).chunk(6, dim=-1)
        h = _modulate(self.norm1(x), shift1, scale1)
        x = x + gate1.unsqueeze(1) * self.attn(h, h, h, need_weights=False)[0]
        h = _modulate(self.norm2(x), shift2, scale2)
        return x + gate2.unsqueeze(1) * self.mlp(h)


class TransformerPredictor(nn.Module):
    """forward(z_history (B, k, D) or (B, D), action (B, A)) -> (B, D)."""

    def __init__(self, config: TransformerPredictorConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.embed_latent = nn.Linear(config.latent_dim, w)
        self.position = nn.Parameter(torch.randn(1, config.history, w) * 0.02)
        self.embed_action = nn.Sequential(nn.Linear(config.action_dim, w), nn.SiLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(AdaLNZeroBlock(w, config.heads, config.mlp_ratio) for _ in range(config.depth))
        self.final_norm = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        final_modulation = nn.Linear(w, 2 * w)
        self.out = nn.Linear(w, config.latent_dim)
        for layer in (final_modulation, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.final_modulation = nn.Sequential(nn.SiLU(), final_modulation)

    def forward(self, z_history: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        if z_history.dim() == 2:
            z_history = z_history.unsqueeze(1)
        if z_history.shape[1] != self.config.history:
            raise ValueError(f"expected a history of {self.config.history} latents, got shape {tuple(z_history.shape)}")
        condition = self.embed_action(action)
        x = self.embed_latent(z_history) + self.position
        for block in self.blocks:
            x = block(x, condition)
        shift, scale = self.final_modulation(condition).chunk(2, dim=-1)
        delta = self.out(_modulate(self.final_norm(x), shift, scale))[:, -1]
        return z_history[:, -1] + delta
