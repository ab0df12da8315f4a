"""Typed configuration of the cost: which terms are on and how much each weighs."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CostConfig:
    """Weights of the cost terms (0 turns a term off). Units: squared latent / action distances.

    goal_weight: |z_H - g|^2 at the final step. goal_running_weight: sum over every step 1..H.
    action_weight: sum_t |a_t|^2. smoothness_weight: sum_t |a_t - a_{t-1}|^2, from the previous
    applied action when one is given. latent_bound_weight: squared excursion of every latent
    coordinate outside [latent_low, latent_high] (a soft keep-out box in latent space).
    """

    goal_weight: float = 1.0
    goal_running_weight: float = 0.0
    action_weight: float = 0.0
    smoothness_weight: float = 0.0
    latent_bound_weight: float = 0.0
    latent_low: float | None = None
    latent_high: float | None = None

    def __post_init__(self) -> None:
        for name in ("goal_weight", "goal_running_weight", "action_weight", "smoothness_weight", "latent_bound_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"CostConfig.{name} must be finite and >= 0, got {value}")
        for name in ("latent_low", "latent_high"):
            value = getattr(self, name)
            if value is not None and math.isnan(value):
                raise ValueError(f"CostConfig.{name} is NaN")
        if self.latent_low is not None and self.latent_high is not None and self.latent_low > self.latent_high:
            raise ValueError(f"CostConfig: latent_low {self.latent_low} > latent_high {self.latent_high}")
