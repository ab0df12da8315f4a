"""Shared builders for the planning tests (imported by tests/test_planning_*.py)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ami_robot.cost import CostConfig
from ami_robot.cost.terms import Cost
from ami_robot.planning import MLPDynamics, PlannerConfig
from ami_robot.world_model.critic import Critic, CriticConfig
from ami_robot.world_model.mlp_predictor import MLPPredictor, MLPPredictorConfig
from ami_robot.world_model.rollout import autoregressive_rollout

FULL_COST = CostConfig(
    goal_weight=1.0,
    goal_running_weight=0.1,
    action_weight=0.05,
    smoothness_weight=0.2,
    latent_bound_weight=0.5,
    latent_low=-0.8,
    latent_high=0.8,
)
"""Every cost term switched on."""

CRITIC_COST = dataclasses.replace(FULL_COST, critic_weight=0.7, critic_running_weight=0.2)
"""Every cost term switched on, the critic's too (final and running)."""

PLANNER_OPTIONS = [
    {},
    dict(momentum=0.3, keep_elites_fraction=0.5, max_rate=0.4, noise_beta=1.5, control_cost_weight=0.3, std_decay=0.8),
]
"""Planner settings for the injected-noise comparisons: the defaults, and every option switched on."""


def assert_rel(actual, expected, rtol: float = 1e-4) -> None:
    """max |actual - expected| <= rtol * max |expected|."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = max(np.abs(expected).max(), 1e-6)
    assert np.abs(actual - expected).max() <= rtol * scale, (actual, expected)


def assert_plans_equal(actual, expected, rtol: float = 1e-4) -> None:
    """Two PlanResults agree in every field, relative to the largest expected value."""
    for field in ("actions", "std", "std_history", "cost", "best_cost", "best_actions"):
        assert_rel(getattr(actual, field), getattr(expected, field), rtol)


def random_dynamics(latent_dim=8, action_dim=3, hidden_dim=32, depth=2, activation="gelu", history=1, seed=0):
    torch.manual_seed(seed)
    module = MLPPredictor(MLPPredictorConfig(latent_dim, action_dim, hidden_dim, depth, activation, history))
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for ln in module.layer_norms():
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.2, 0.2)
    return module, MLPDynamics.from_module(module)


def float64_cost_and_rounding(
    module: torch.nn.Module, cost: CostConfig, actions: np.ndarray, z0: np.ndarray, goal: np.ndarray, draws: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """The rollout cost (n,) of actions (n, H, A) from z0 (k, D) computed in float64, and how far
    perturbing every weight by float32's unit roundoff (relative, random sign) moves it (n,): the
    float32 rounding error this very problem amplifies (a width-2 LayerNorm over nearly equal
    inputs amplifies it a thousandfold)."""
    terms = Cost.from_config(cost)
    wide = copy.deepcopy(module).double().eval()
    a, z, g = (torch.as_tensor(x, dtype=torch.float64) for x in (actions, z0, goal))

    def evaluate(predictor: torch.nn.Module) -> np.ndarray:
        with torch.no_grad():
            return terms(autoregressive_rollout(predictor, z.expand(a.shape[0], *z.shape), a), a, g, None).numpy()

    truth = evaluate(wide)
    generator = torch.Generator().manual_seed(0)
    spread = np.zeros_like(truth)
    for _ in range(draws):
        perturbed = copy.deepcopy(wide)
        with torch.no_grad():
            for weight in perturbed.parameters():
                signs = torch.randint(0, 2, weight.shape, generator=generator, dtype=torch.float64) * 2 - 1
                weight.mul_(1 + signs * 2.0**-24)
        spread = np.maximum(spread, np.abs(evaluate(perturbed) - truth))
    return truth, spread


def random_critic(latent_dim=8, activation="gelu", layer_norm=True, seed=0) -> Critic:
    """A random critic (hidden 24 x 2, embedding 10 = 4 asymmetric + 6 symmetric) in eval mode."""
    torch.manual_seed(seed)
    config = CriticConfig(
        latent_dim=latent_dim, hidden_dim=24, depth=2, embed_dim=10, asymmetric_dim=4,
        activation=activation, layer_norm=layer_norm,
    )  # fmt: skip
    critic = Critic(config).eval()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for module in critic.embedding:
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return critic


def linear_mlp_dynamics(B: np.ndarray, big: float = 1000.0) -> MLPDynamics:
    """An MLPPredictor whose step is z' = z + B a up to a relative error ~|Ba|^2 / (2 big^2).

    One ReLU hidden layer of width 2D + 2 holding [Ba, -Ba, big, -big]: its LayerNorm mean is 0 and
    its std ~ big * sqrt(2 / width), so relu(y) - relu(-y) recovers Ba after rescaling."""
    D, A = B.shape
    width = 2 * D + 2
    w1 = np.zeros((width, D + A), np.float32)
    w1[:D, D:] = B
    w1[D : 2 * D, D:] = -B
    b1 = np.zeros(width, np.float32)
    b1[-2:] = [big, -big]
    std0 = big * np.sqrt(2.0 / width)
    w2 = np.zeros((D, width), np.float32)
    w2[:, :D] = np.eye(D) * std0
    w2[:, D : 2 * D] = -np.eye(D) * std0
    config = MLPPredictorConfig(D, A, hidden_dim=width, depth=1, activation="relu", history=1)
    return MLPDynamics(
        config, (w1, w2), (b1, np.zeros(D, np.float32)), (np.ones(width, np.float32),), (np.zeros(width, np.float32),)
    )


class LinearDynamics(torch.nn.Module):
    """z' = z + B a, a generic (non-MLP) predictor for the torch backend."""

    def __init__(self, B: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("B", torch.as_tensor(B, dtype=torch.float32))

    def forward(self, z_history: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return z_history[:, -1] + action @ self.B.T


@dataclass
class InjectedNoiseProblem:
    """A bounded, history-2 planning problem with every cost term, for backend comparisons."""

    module: MLPPredictor
    dynamics: MLPDynamics
    config: PlannerConfig
    z0: np.ndarray  # (history, D)
    goal: np.ndarray  # (D,)
    previous_action: np.ndarray  # (A,)


def injected_noise_problem(**options) -> InjectedNoiseProblem:
    module, dynamics = random_dynamics(latent_dim=10, action_dim=2, hidden_dim=48, depth=3, history=2)
    config = PlannerConfig(
        horizon=5,
        samples=64,
        iterations=4,
        elites=8,
        temperature=0.5,
        init_std=0.7,
        action_low=(-1.0, -0.5),
        action_high=(1.0, 0.8),
        cost=FULL_COST,
        **options,
    )
    rng = np.random.default_rng(2)
    z0 = rng.standard_normal((2, 10)).astype(np.float32)
    goal = rng.standard_normal(10).astype(np.float32)
    return InjectedNoiseProblem(module, dynamics, config, z0, goal, np.array([0.3, -0.2], np.float32))
