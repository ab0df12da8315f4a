"""The autoregressive rollout every latent predictor is run with (training, critic, planning)."""

from __future__ import annotations

import torch
from torch import nn


def autoregressive_rollout(predictor: nn.Module, z_history: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Latents (B, H, D) that `predictor` ((B, k, D) history, (B, A) action -> (B, D)) predicts for
    actions (B, H, A) from z_history (B, k, D), each prediction becoming the newest history frame."""
    predictions = []
    for step in range(actions.shape[1]):
        z_next = predictor(z_history, actions[:, step])
        predictions.append(z_next)
        z_history = torch.cat([z_history[:, 1:], z_next.unsqueeze(1)], dim=1)
    return torch.stack(predictions, dim=1)
