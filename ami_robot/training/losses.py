"""Training losses in latent space: next-latent prediction plus one anti-collapse regulariser.

    loss = prediction_mse + weight * regulariser(z)

The regulariser is SIGReg (default, see `sigreg.py`) or VICReg's variance + covariance terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def vicreg(
    z: torch.Tensor, std_target: float = 1.0, covariance_weight: float = 0.04, eps: float = 1e-4
) -> torch.Tensor:
    """VICReg variance hinge + weighted off-diagonal covariance of z (N, D); a scalar.

    The covariance weight relative to the variance term is VICReg's 1:25 ratio (0.04), so one
    outer weight still sets the whole regulariser.
    """
    z = z - z.mean(0)
    std = torch.sqrt(z.var(0) + eps)
    variance = F.relu(std_target - std).mean()
    n, d = z.shape
    cov = (z.T @ z) / max(n - 1, 1)
    off_diagonal = cov - torch.diag(torch.diag(cov))
    return variance + covariance_weight * off_diagonal.square().sum() / d


def copy_baseline_mse(z_history_last: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
    """MSE of predicting z_{t+1} = z_t, the baseline a useful predictor must beat."""
    return F.mse_loss(z_history_last, z_next)
