"""CEM and MPPI find the known optimum of a linear-quadratic problem: z' = z + B a,
cost |z_H - g|^2 + lam * sum_t |a_t|^2, whose minimiser is a_t = (H B^T B + lam I)^-1 B^T (g - z0)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from planning_helpers import LinearDynamics, linear_mlp_dynamics

from ami_robot.cost import CostConfig
from ami_robot.planning import CEMPlanner, MPPIPlanner, PlannerConfig

B = np.array([[1.0, 0.2], [-0.3, 0.8], [0.1, 0.5]], np.float32)  # D=3, A=2
Z0 = np.array([0.2, -0.1, 0.3], np.float32)
GOAL = np.array([1.0, 0.4, 1.1], np.float32)
H, LAM = 4, 0.5


def optimum():
    a = np.linalg.solve(H * B.T @ B + LAM * np.eye(2), B.T @ (GOAL - Z0))
    actions = np.tile(a, (H, 1))
    z_final = Z0 + B @ actions.sum(0)
    return actions, float(((z_final - GOAL) ** 2).sum() + LAM * (actions**2).sum())


def test_linear_mlp_is_linear():
    dyn = linear_mlp_dynamics(B)
    a = np.random.default_rng(0).uniform(-1, 1, (5, 2)).astype(np.float32)
    with torch.no_grad():
        z = dyn.to_module()(torch.as_tensor(Z0).expand(5, 3), torch.as_tensor(a)).numpy()
    np.testing.assert_allclose(z, Z0 + a @ B.T, atol=1e-4)


@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
@pytest.mark.parametrize("backend", ["torch", "cpu", "reference"])
def test_solves_linear_quadratic_problem(planner_cls, backend):
    best_actions, best_cost = optimum()
    assert np.abs(best_actions).max() < 0.9  # interior optimum: the bounds are not active
    config = PlannerConfig(
        horizon=H,
        samples=256,
        iterations=25,
        elites=32,
        init_std=0.5,
        min_std=0.002,
        temperature=0.05,
        std_decay=0.8,  # MPPI's exploration std anneals to min_std; CEM refits its own
        action_low=-1.0,
        action_high=1.0,
        cost=CostConfig(goal_weight=1.0, action_weight=LAM),
    )
    dynamics = LinearDynamics(B) if backend == "torch" else linear_mlp_dynamics(B)
    planner = planner_cls(dynamics, config, backend=backend, action_dim=2)
    result = planner.plan(Z0, GOAL)
    np.testing.assert_allclose(result.actions, best_actions, atol=0.03)
    assert best_cost <= result.cost + 1e-4 and result.cost <= best_cost + 2e-3
