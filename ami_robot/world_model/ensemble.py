"""PredictorEnsemble: M predictors of one architecture over one frozen latent space.

A planner that searches through a single predictor finds the action sequences that predictor gets
most wrong in its own favour: sequences unlike the data, predicted to end at the goal. Predictors
trained apart (another initialisation, another batch order) agree where the data taught them and
disagree where it did not, so the members' mean cost and their spread at the final step (see
`ami_robot.cost.terms.Cost`) steer the search back to what the model knows (PETS, Chua et al. 2018).
The members are trained on the frozen encoder's latents after the world model
(`ami_robot.training.ensemble`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ami_robot.world_model.rollout import autoregressive_rollout


class PredictorEnsemble(nn.Module):
    """`members` predictors; `rollout(z_history (B, k, D), actions (B, H, A))` -> (M, B, H, D), each
    member rolled out on its own predictions. `config` is the members' common architecture."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 predictors, got {len(members)}")
        configs = {getattr(m, "config", None) for m in members}
        if len(configs) != 1:
            raise ValueError("the ensemble's predictors must share one architecture (config)")
        self.members = nn.ModuleList(members)

    @property
    def config(self) -> Any:
        return self.members[0].config

    def __len__(self) -> int:
        return len(self.members)

    def rollout(self, z_history: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Latents (M, B, H, D) that each member predicts for actions (B, H, A) from z_history (B, k, D)."""
        return torch.stack([autoregressive_rollout(member, z_history, actions) for member in self.members])

    def forward(self, z_history: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One step of every member: z_history (B, k, D), action (B, A) -> (M, B, D)."""
        return torch.stack([member(z_history, action) for member in self.members])
