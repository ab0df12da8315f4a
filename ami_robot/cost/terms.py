"""Cost terms: each a small weighted object that adds into one (N,) cost array (torch).

The native planner backends compute the same terms in C++ from the same CostConfig (see
csrc/include/ami_robot/problem.h, CostParams); tests check that they agree. A predictor ensemble's
rollouts (M, N, H, D) cost the members' mean of the latent terms, the action terms once, plus the
ensemble's disagreement (the C++ `reference` and `cpu` backends too; not yet the CUDA one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch

from ami_robot.cost.config import CostConfig


@dataclass(frozen=True)
class CostInputs:
    """latents (N, H, D): predicted z_1..z_H; actions (N, H, A); goal (D,); previous_action (A,) or None."""

    latents: torch.Tensor
    actions: torch.Tensor
    goal: torch.Tensor
    previous_action: torch.Tensor | None = None


class CostTerm(Protocol):
    reads_latents: ClassVar[bool]
    """False for terms of the actions alone, which an ensemble's members share."""

    @property
    def weight(self) -> float: ...

    def __call__(self, x: CostInputs) -> torch.Tensor:
        """Weighted cost (N,)."""
        ...


@dataclass(frozen=True)
class GoalDistance:
    """weight * |z_H - g|^2, or with every_step weight * sum_t |z_t - g|^2."""

    reads_latents: ClassVar[bool] = True
    weight: float
    every_step: bool = False

    def __call__(self, x: CostInputs) -> torch.Tensor:
        dist = ((x.latents - x.goal) ** 2).sum(-1)  # (N, H)
        return self.weight * (dist.sum(-1) if self.every_step else dist[:, -1])


@dataclass(frozen=True)
class ActionMagnitude:
    """weight * sum_t |a_t|^2."""

    reads_latents: ClassVar[bool] = False
    weight: float

    def __call__(self, x: CostInputs) -> torch.Tensor:
        return self.weight * (x.actions**2).sum((-2, -1))


@dataclass(frozen=True)
class ActionSmoothness:
    """weight * sum_t |a_t - a_{t-1}|^2, starting from the previous applied action when given."""

    reads_latents: ClassVar[bool] = False
    weight: float

    def __call__(self, x: CostInputs) -> torch.Tensor:
        a = x.actions
        if x.previous_action is not None:
            a = torch.cat([x.previous_action.expand(a.shape[0], 1, -1).to(a.dtype), a], dim=1)
        return self.weight * ((a[:, 1:] - a[:, :-1]) ** 2).sum((-2, -1))


@dataclass(frozen=True)
class LatentBounds:
    """weight * sum_t sum_d relu(z - high)^2 + relu(low - z)^2 (a soft box in latent space)."""

    reads_latents: ClassVar[bool] = True
    weight: float
    low: float | None = None
    high: float | None = None

    def __call__(self, x: CostInputs) -> torch.Tensor:
        z = x.latents
        excess = torch.zeros_like(z)
        if self.high is not None:
            excess = excess + torch.relu(z - self.high) ** 2
        if self.low is not None:
            excess = excess + torch.relu(self.low - z) ** 2
        return self.weight * excess.sum((-2, -1))


class LatentCritic(Protocol):
    """A trained critic (e.g. `ami_robot.world_model.Critic`): predicted steps from z to the goal."""

    def embed(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (..., D) -> embeddings (..., E)."""
        ...

    def distance(self, embedded: torch.Tensor, embedded_goal: torch.Tensor) -> torch.Tensor:
        """Embeddings (..., E) and goal embeddings (broadcastable) -> predicted steps (...,) >= 0."""
        ...


@dataclass(frozen=True)
class CriticSteps:
    """weight * C(z_H, g), or with every_step weight * sum_t C(z_t, g): the steps to the goal that a
    trained critic predicts (model steps). The goal is embedded once per call."""

    reads_latents: ClassVar[bool] = True
    weight: float
    critic: LatentCritic
    every_step: bool = False

    def __call__(self, x: CostInputs) -> torch.Tensor:
        latents = x.latents if self.every_step else x.latents[:, -1:]
        steps = self.critic.distance(self.critic.embed(latents), self.critic.embed(x.goal))  # (N, H or 1)
        return self.weight * steps.sum(-1)


def disagreement(latents: torch.Tensor, every_step: bool = False) -> torch.Tensor:
    """An ensemble's spread: latents (M, N, H, D) -> sum_d var_m z_H,d at the final step, or with
    every_step sum_t sum_d var_m z_t,d (N,)."""
    spread = latents.var(0, unbiased=False).sum(-1)  # (N, H)
    return spread.sum(-1) if every_step else spread[:, -1]


class Cost:
    """Sum of the enabled terms: cost(latents, actions, goal, previous_action) -> (N,). Latents
    (M, N, H, D) from a predictor ensemble cost the members' mean of the latent terms, the action
    terms once, plus `disagreement_weight` * `disagreement` at the final step and
    `disagreement_running_weight` * `disagreement` summed over every step."""

    def __init__(
        self, terms: list[CostTerm], disagreement_weight: float = 0.0, disagreement_running_weight: float = 0.0
    ) -> None:
        self.terms = [t for t in terms if t.weight != 0.0]
        self._latent_terms = [t for t in self.terms if t.reads_latents]
        self._action_terms = [t for t in self.terms if not t.reads_latents]
        self.disagreement_weight = disagreement_weight
        self.disagreement_running_weight = disagreement_running_weight

    @classmethod
    def from_config(cls, config: CostConfig, critic: LatentCritic | None = None) -> Cost:
        """The terms `config` weighs; `critic` is required when a critic weight is nonzero."""
        if config.uses_critic and critic is None:
            raise ValueError(
                "CostConfig.critic_weight / critic_running_weight > 0 needs a critic (a model trained with one)"
            )
        terms: list[CostTerm] = [
            GoalDistance(config.goal_weight),
            GoalDistance(config.goal_running_weight, every_step=True),
            ActionMagnitude(config.action_weight),
            ActionSmoothness(config.smoothness_weight),
            LatentBounds(config.latent_bound_weight, config.latent_low, config.latent_high),
        ]
        if critic is not None:
            terms += [
                CriticSteps(config.critic_weight, critic),
                CriticSteps(config.critic_running_weight, critic, every_step=True),
            ]
        return cls(terms, config.disagreement_weight, config.disagreement_running_weight)

    def __call__(
        self,
        latents: torch.Tensor,
        actions: torch.Tensor,
        goal: torch.Tensor,
        previous_action: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if latents.dim() == 3:
            return self._sum(self.terms, CostInputs(latents, actions, goal, previous_action))
        members = torch.stack(
            [self._sum(self._latent_terms, CostInputs(z, actions, goal, previous_action)) for z in latents]
        )
        total = members.mean(0) + self._sum(self._action_terms, CostInputs(latents[0], actions, goal, previous_action))
        if self.disagreement_weight:
            total = total + self.disagreement_weight * disagreement(latents)
        if self.disagreement_running_weight:
            total = total + self.disagreement_running_weight * disagreement(latents, every_step=True)
        return total

    @staticmethod
    def _sum(terms: list[CostTerm], x: CostInputs) -> torch.Tensor:
        total = torch.zeros(x.latents.shape[0], dtype=x.latents.dtype, device=x.latents.device)
        for term in terms:
            total = total + term(x)
        return total
