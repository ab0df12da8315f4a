"""The training objective: latent prediction error plus an anti-collapse regulariser.

    loss = MSE(predicted z, encoded z) + reg_weight * SIGReg(z)   (or VICReg(z))

with gradients through both sides: no stop-gradient, no EMA teacher; SIGReg alone keeps the
embeddings from collapsing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ami_robot.training.config import TrainConfig
from ami_robot.training.losses import vicreg
from ami_robot.world_model.model import WorldModel
from ami_robot.world_model.sigreg import sigreg


class Objective(nn.Module):
    """The training loss of a WorldModel on a batch of windows (the module DDP wraps)."""

    def __init__(self, model: WorldModel, config: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config

    def forward(self, observations: torch.Tensor, actions: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """observations (B, L, S, S, 3) uint8, actions (B, L-1, A) -> {"loss", "pred", "reg"} scalars."""
        b, length = observations.shape[:2]
        k = self.model.history
        z = self.model.encode(observations.flatten(0, 1)).view(b, length, -1)
        targets = z[:, k:]
        if self.config.rollout:
            predictions = self.model.rollout(z[:, :k], actions[:, k - 1 :])
        else:
            predictions = torch.stack(
                [self.model.predict(z[:, j - k : j], actions[:, j - 1]) for j in range(k, length)], 1
            )
        pred = F.mse_loss(predictions, targets)
        if self.config.regularizer == "sigreg":
            reg = torch.stack([sigreg(z[:, j], step, self.config.sigreg) for j in range(length)]).mean()
        else:
            reg = torch.stack([vicreg(z[:, j]) for j in range(length)]).mean()
        return {"loss": pred + self.config.reg_weight * reg, "pred": pred.detach(), "reg": reg.detach()}
