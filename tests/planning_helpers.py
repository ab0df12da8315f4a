"""Shared builders for the planning tests (imported by tests/test_planning_*.py)."""

from __future__ import annotations

import numpy as np
import torch

from ami_robot.planning import MLPDynamics
from ami_robot.world_model.mlp_predictor import MLPPredictor, MLPPredictorConfig


def random_dynamics(latent_dim=8, action_dim=3, hidden_dim=32, depth=2, activation="gelu", history=1, seed=0):
    torch.manual_seed(seed)
    module = MLPPredictor(MLPPredictorConfig(latent_dim, action_dim, hidden_dim, depth, activation, history))
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for ln in module.layer_norms():
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.2, 0.2)
    return module, MLPDynamics.from_module(module)


def linear_mlp_dynamics(B: np.ndarray, big: float = 1000.0) -> MLPDynamics:
    """An MLPPredictor whose step is z' = z + B a up to a relative error ~|Ba|^2 / (2 big^2).

    One ReLU hidden layer of width 2D + 2 holding [Ba, -Ba, big, -big]: its LayerNorm mean is 0 and
    its std ~ big * sqrt(2 / width), so relu(y) - relu(-y) recovers Ba after rescaling."""
    D, A = B.shape
    width = 2 * D + 2
    w1 = np.zeros((width, D + A), np.float32)
    w1[:D, D:] = B
    w1[D:2 * D, D:] = -B
    b1 = np.zeros(width, np.float32)
    b1[-2:] = [big, -big]
    std0 = big * np.sqrt(2.0 / width)
    w2 = np.zeros((D, width), np.float32)
    w2[:, :D] = np.eye(D) * std0
    w2[:, D:2 * D] = -np.eye(D) * std0
    config = MLPPredictorConfig(D, A, hidden_dim=width, depth=1, activation="relu", history=1)
    return MLPDynamics(config, (w1, w2), (b1, np.zeros(D, np.float32)), (np.ones(width, np.float32),),
                       (np.zeros(width, np.float32),))


class LinearDynamics(torch.nn.Module):
    """z' = z + B a, a generic (non-MLP) predictor for the torch backend."""

    def __init__(self, B: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("B", torch.as_tensor(B, dtype=torch.float32))

    def forward(self, z_history: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return z_history[:, -1] + action @ self.B.T
