"""Typed configuration of the cost: which terms are on and how much each weighs."""

from __future__ import annotations

from dataclasses import dataclass

from ami_robot.config import ConfigError, check_settings, setting


@dataclass(frozen=True)
class CostConfig:
    """Weights of the cost terms (0 turns a term off). Units: squared latent / action distances;
    the critic terms: model steps."""

    goal_weight: float = setting(1.0, help="weight of |z_H - g|^2 at the final step", low=0.0)
    goal_running_weight: float = setting(0.0, help="weight of |z_t - g|^2 summed over every step 1..H", low=0.0)
    action_weight: float = setting(0.0, help="weight of the effort sum_t |a_t|^2", low=0.0)
    smoothness_weight: float = setting(
        0.0, help="weight of sum_t |a_t - a_{t-1}|^2, from the previous applied action when given", low=0.0
    )
    latent_bound_weight: float = setting(
        0.0, help="weight of the squared excursion of latents outside [latent_low, latent_high]", low=0.0
    )
    latent_low: float | None = setting(None, help="lower side of the latent keep-out box (None: open)")
    latent_high: float | None = setting(None, help="upper side of the latent keep-out box (None: open)")
    critic_weight: float = setting(
        0.0, help="weight of the critic's predicted steps C(z_H, g) at the final step (model steps)", low=0.0
    )
    critic_running_weight: float = setting(
        0.0, help="weight of the critic's predicted steps C(z_t, g) summed over every step 1..H", low=0.0
    )
    disagreement_weight: float = setting(
        0.0,
        help="weight of the predictor ensemble's spread at the final step, sum_d var_m z_H,d (needs a model "
        "with an ensemble; the other terms are then the members' mean)",
        low=0.0,
    )
    disagreement_running_weight: float = setting(
        0.0,
        help="weight of the predictor ensemble's spread summed over every step 1..H, sum_t sum_d var_m z_t,d "
        "(needs a model with an ensemble)",
        low=0.0,
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.latent_low is not None and self.latent_high is not None and self.latent_low > self.latent_high:
            raise ConfigError(f"CostConfig: latent_low {self.latent_low} > latent_high {self.latent_high}")

    @property
    def uses_ensemble(self) -> bool:
        """Whether a disagreement term is on (the planner then needs the model's predictor ensemble)."""
        return self.disagreement_weight > 0 or self.disagreement_running_weight > 0

    @property
    def uses_critic(self) -> bool:
        """Whether a critic term is on (the planner then needs the model's critic)."""
        return self.critic_weight > 0 or self.critic_running_weight > 0
