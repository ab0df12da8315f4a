"""The critic cost term: weight * C(z_H, g) (+ running weight * sum_t C(z_t, g)) in torch and in the
C++ core (per-backend parity against the reference: tests/test_planning_parity.py)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ami_robot.cost import Cost, CostConfig
from ami_robot.errors import ConfigError
from ami_robot.planning import CEMPlanner, MPPIPlanner, PlannerConfig
from ami_robot.planning.backends import core_module
from ami_robot.planning.backends.native import NativeBackend, core_problem
from ami_robot.planning.dynamics import critic_to_core
from ami_robot.world_model import Critic, CriticConfig

sys.path.insert(0, str(Path(__file__).parent))
from planning_helpers import CRITIC_COST, FULL_COST, assert_plans_equal, random_dynamics

LATENT_DIM = 8


def _critic(seed: int = 0) -> Critic:
    torch.manual_seed(seed)
    return Critic(CriticConfig(latent_dim=LATENT_DIM, hidden_dim=32, embed_dim=8, asymmetric_dim=4)).eval()


def _planner_config(**cost: float) -> PlannerConfig:
    return PlannerConfig(horizon=3, samples=32, iterations=3, elites=4, cost=CostConfig(**cost))


def test_critic_weights_are_checked() -> None:
    assert not CostConfig().uses_critic
    assert CostConfig(critic_running_weight=0.1).uses_critic
    with pytest.raises(ConfigError, match="critic_weight"):
        CostConfig(critic_weight=-1.0)


@torch.no_grad()
def test_torch_cost_adds_the_critic_terms_as_computed_by_hand() -> None:
    critic = _critic()
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(5, 4, LATENT_DIM, generator=generator)
    actions = torch.randn(5, 4, 2, generator=generator)
    goal = torch.randn(LATENT_DIM, generator=generator)
    config = CostConfig(goal_weight=0.5, critic_weight=2.0, critic_running_weight=0.25)
    cost = Cost.from_config(config, critic)(latents, actions, goal)

    goal_distance = 0.5 * ((latents[:, -1] - goal) ** 2).sum(-1)
    steps = torch.stack([critic(latents[:, t], goal[None]) for t in range(4)], dim=1)  # (N, H)
    expected = goal_distance + 2.0 * steps[:, -1] + 0.25 * steps.sum(1)
    torch.testing.assert_close(cost, expected)
    assert bool((steps > 0).all())  # so the terms above are really in the sum

    without = Cost.from_config(CostConfig(goal_weight=0.5), critic)(latents, actions, goal)
    torch.testing.assert_close(without, goal_distance)


def test_a_critic_weight_without_a_critic_is_refused() -> None:
    with pytest.raises(ValueError, match="critic"):
        Cost.from_config(CostConfig(critic_weight=1.0))
    module, _ = random_dynamics(latent_dim=LATENT_DIM, action_dim=2)
    with pytest.raises(ValueError, match="critic="):
        CEMPlanner(module, _planner_config(critic_weight=1.0), backend="torch")


@pytest.mark.skipif(core_module() is None, reason="the compiled core is not importable")
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_native_backends_need_the_critic_for_a_critic_weight(backend: str) -> None:
    _, dynamics = random_dynamics(latent_dim=LATENT_DIM, action_dim=2)
    config = _planner_config(critic_weight=1.0)
    with pytest.raises(ValueError, match="critic"):
        NativeBackend(backend, dynamics, config, config.action_limits(2), "cem")


@pytest.mark.skipif(core_module() is None, reason="the compiled core is not importable")
def test_auto_keeps_the_native_backend_for_a_critic_weight_and_plans_with_it() -> None:
    module, _ = random_dynamics(latent_dim=LATENT_DIM, action_dim=2)
    critic = _critic()
    planner = CEMPlanner(module, _planner_config(goal_weight=0.0, critic_weight=1.0), backend="auto", critic=critic)
    assert planner.backend_name != "torch"
    z0, goal = np.zeros(LATENT_DIM, np.float32), np.ones(LATENT_DIM, np.float32)
    result = planner.plan(z0, goal)
    final = planner.backend.predict(result.actions[None], z0[None])[0, -1]
    with torch.no_grad():
        expected = float(critic(torch.from_numpy(final)[None], torch.from_numpy(goal)[None])[0])
    assert result.cost == pytest.approx(expected, rel=1e-5)


@pytest.mark.skipif(core_module() is None, reason="the compiled core is not importable")
@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
def test_seeded_plans_with_the_critic_agree_on_cpu_reference_and_torch(planner_cls: type[CEMPlanner]) -> None:
    """End to end, each backend's own noise stream: the critic term, final and running, beside the others."""
    module, _ = random_dynamics(latent_dim=LATENT_DIM, action_dim=2)
    critic = _critic(seed=2)
    config = PlannerConfig(horizon=4, samples=48, iterations=4, elites=6, seed=5, cost=CRITIC_COST)
    planners = {
        name: planner_cls(module, config, backend=name, critic=critic) for name in ("reference", "cpu", "torch")
    }
    z0, goal = np.zeros(LATENT_DIM, np.float32), np.full(LATENT_DIM, 0.5, np.float32)
    for _ in range(2):  # the second plan starts from the first (warm start)
        results = {name: planner.plan(z0, goal) for name, planner in planners.items()}
        for name in ("cpu", "torch"):
            assert_plans_equal(results[name], results["reference"], 1e-4)
    without = planner_cls(module, dataclasses.replace(config, cost=FULL_COST), backend="reference")
    assert without.plan(z0, goal).cost != pytest.approx(results["reference"].cost, rel=1e-3)


@pytest.mark.skipif(core_module() is None, reason="the compiled core is not importable")
def test_the_core_refuses_a_critic_weight_without_a_critic() -> None:
    _, dynamics = random_dynamics(latent_dim=LATENT_DIM, action_dim=2)
    config = _planner_config(critic_running_weight=1.0)
    model, cost, bounds, sampler = core_problem(dynamics, config, config.action_limits(2), "cem", _critic())
    cost.critic = core_module().CriticModel(LATENT_DIM, 4, "gelu", 1e-5, 1e-6)
    with pytest.raises(ValueError, match="needs a critic"):
        core_module().reference_planner(model, cost, bounds, sampler)


@pytest.mark.skipif(core_module() is None, reason="the compiled core is not importable")
def test_critic_export_refuses_layers_the_core_does_not_run() -> None:
    critic = _critic()
    critic.embedding[2] = torch.nn.GELU(approximate="tanh")
    with pytest.raises(TypeError, match="exact GELU"):
        critic_to_core(critic)
    exported = critic_to_core(_critic())
    assert (exported.num_layers, exported.embed_dim) == (3, 8)
