"""MPPI as the field defines it (Williams et al. 2017), in every host backend: a fixed exploration
std on its schedule, never refit; importance weights over all samples; a temperature that means the
same at any cost scale."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from planning_helpers import injected_noise_problem

from ami_robot.cost import CostConfig
from ami_robot.planning import CEMPlanner, MPPIPlanner

BACKENDS = ["reference", "cpu", "torch"]


def _planner(backend, planner_cls, p, config):
    dynamics = p.dynamics.to_module() if backend == "torch" else p.dynamics
    return planner_cls(dynamics, config, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mppi_samples_with_the_scheduled_std(backend):
    p = injected_noise_problem(std_decay=0.5, min_std=0.1)
    result = _planner(backend, MPPIPlanner, p, p.config).plan(p.z0, p.goal, previous_action=p.previous_action)
    schedule = np.maximum(p.config.init_std * 0.5 ** np.arange(p.config.iterations), 0.1)
    np.testing.assert_allclose(result.std_history, np.broadcast_to(schedule[:, None, None], result.std_history.shape))
    np.testing.assert_allclose(result.std, max(p.config.init_std * 0.5**p.config.iterations, 0.1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_mppi_keeps_exploring_where_cem_collapses_to_the_floor(backend):
    """On costs far larger than their spread (the benchmark's case), CEM's std falls towards its
    floor while MPPI's follows its schedule (init_std * std_decay^i, whatever the costs)."""
    p = injected_noise_problem()
    big = dataclasses.replace(p.config, elites=2, cost=CostConfig(goal_weight=1e3), min_std=0.0)
    cem = _planner(backend, CEMPlanner, p, big).plan(p.z0, p.goal)
    mppi = _planner(backend, MPPIPlanner, p, big).plan(p.z0, p.goal)
    assert cem.std_history[-1].mean() < 0.25 * p.config.init_std
    schedule = np.float32(p.config.init_std) * np.float32(big.std_decay) ** np.arange(big.iterations, dtype=np.float32)
    np.testing.assert_allclose(
        mppi.std_history.reshape(big.iterations, -1), schedule[:, None].repeat(mppi.std_history[0].size, 1), rtol=1e-6
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_mppi_temperature_is_dimensionless(backend):
    """Every cost term scaled by 1000: the same plan (costs normalised by their spread)."""
    p = injected_noise_problem(control_cost_weight=0.2)
    c = p.config.cost
    weights = ("goal_weight", "goal_running_weight", "action_weight", "smoothness_weight", "latent_bound_weight")
    scaled_cost = dataclasses.replace(c, **{name: 1000 * getattr(c, name) for name in weights})
    planners = [
        _planner(backend, MPPIPlanner, p, cfg) for cfg in (p.config, dataclasses.replace(p.config, cost=scaled_cost))
    ]
    noise = planners[0].sample_noise(0)
    plain, scaled = (planner.plan(p.z0, p.goal, previous_action=p.previous_action, noise=noise) for planner in planners)
    np.testing.assert_allclose(scaled.actions, plain.actions, rtol=1e-4, atol=1e-5)
    assert abs(scaled.cost - 1000 * plain.cost) <= 1e-4 * abs(scaled.cost)
