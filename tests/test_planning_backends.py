"""Every backend equals the torch reference on the same injected noise (relative 1e-4, float32)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from planning_helpers import random_dynamics  # noqa: E402

from ami_robot import _core, build_info  # noqa: E402
from ami_robot.cost import CostConfig  # noqa: E402
from ami_robot.planning import CEMPlanner, MPPIPlanner, PlannerConfig  # noqa: E402
from ami_robot.planning.backends.native import NativeBackend  # noqa: E402

NATIVE = ["reference"] + [f"cpu:{isa}" for isa in build_info()["cpu_kernels_usable"]]
FULL_COST = CostConfig(goal_weight=1.0, goal_running_weight=0.1, action_weight=0.05, smoothness_weight=0.2,
                       latent_bound_weight=0.5, latent_low=-0.8, latent_high=0.8)


def _native(name, dyn, config, method):
    kind, _, isa = name.partition(":")
    return NativeBackend(kind, dyn, config, config.action_limits(dyn.action_dim), method, isa=isa or "auto")


def _assert_rel(actual, expected, rtol=1e-4):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = max(np.abs(expected).max(), 1e-6)
    assert np.abs(actual - expected).max() <= rtol * scale, (actual, expected)


@pytest.mark.parametrize("backend", NATIVE)
@pytest.mark.parametrize("activation", ["gelu", "silu", "relu", "tanh"])
@pytest.mark.parametrize("history", [1, 3])
def test_rollout_cost_matches_torch(backend, activation, history):
    module, dyn = random_dynamics(latent_dim=12, action_dim=3, hidden_dim=40, depth=2, activation=activation,
                                  history=history)
    config = PlannerConfig(horizon=4, samples=21, iterations=1, elites=3, cost=FULL_COST)
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (21, 4, 3)).astype(np.float32)
    z0 = rng.standard_normal((history, 12)).astype(np.float32)
    goal = rng.standard_normal(12).astype(np.float32)
    prev = rng.uniform(-1, 1, 3).astype(np.float32)
    torch_backend = CEMPlanner(module, config, backend="torch").backend
    native = _native(backend, dyn, config, "cem")
    for p in (prev, None):
        _assert_rel(native.rollout_cost(actions, z0, goal, p), torch_backend.rollout_cost(actions, z0, goal, p))
    head = actions[:5]
    _assert_rel(native.rollout_cost(head, z0, goal, prev), torch_backend.rollout_cost(head, z0, goal, prev))
    _assert_rel(native.predict(actions, z0), torch_backend.predict(actions, z0))


@pytest.mark.parametrize("backend", NATIVE)
@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
@pytest.mark.parametrize("options", [
    {},
    dict(momentum=0.3, keep_elites_fraction=0.5, max_rate=0.4, noise_beta=1.5),
])
def test_plan_matches_torch_on_injected_noise(backend, planner_cls, options):
    module, dyn = random_dynamics(latent_dim=10, action_dim=2, hidden_dim=48, depth=3, history=2)
    config = PlannerConfig(horizon=5, samples=64, iterations=4, elites=8, temperature=0.5, init_std=0.7,
                           action_low=(-1.0, -0.5), action_high=(1.0, 0.8), cost=FULL_COST, **options)
    rng = np.random.default_rng(2)
    z0 = rng.standard_normal((2, 10)).astype(np.float32)
    goal = rng.standard_normal(10).astype(np.float32)
    prev = np.array([0.3, -0.2], np.float32)
    reference = planner_cls(module, config, backend="torch")
    other = planner_cls(dyn, config, backend="torch")
    other.backend = _native(backend, dyn, config, planner_cls.method)
    for step in range(2):  # the second call exercises the warm start
        noise = reference.sample_noise(step)
        expected = reference.plan(z0, goal, previous_action=prev, noise=noise)
        actual = other.plan(z0, goal, previous_action=prev, noise=noise)
        _assert_rel(actual.actions, expected.actions)
        _assert_rel(actual.std, expected.std)
        _assert_rel(actual.cost, expected.cost)
        _assert_rel(actual.best_cost, expected.best_cost)
        _assert_rel(actual.best_actions, expected.best_actions)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_internal_philox_noise_equals_injected_noise(backend):
    _, dyn = random_dynamics()
    config = PlannerConfig(horizon=3, samples=30, iterations=3, elites=5, seed=1234)
    seeded, injected = CEMPlanner(dyn, config, backend=backend), CEMPlanner(dyn, config, backend=backend)
    z0, goal = np.zeros(8, np.float32), np.ones(8, np.float32)
    for step in range(2):
        a = seeded.plan(z0, goal)
        b = injected.plan(z0, goal, noise=injected.sample_noise(step))
        _assert_rel(a.actions, b.actions, 1e-6)


def test_torch_backend_seeded_noise_matches_cpu():
    module, dyn = random_dynamics()
    config = PlannerConfig(horizon=3, samples=30, iterations=3, elites=5, seed=7)
    z0, goal = np.zeros(8, np.float32), np.ones(8, np.float32)
    _assert_rel(CEMPlanner(dyn, config, backend="cpu").plan(z0, goal).actions,
                CEMPlanner(module, config, backend="torch").plan(z0, goal).actions)


def test_cpu_threads_give_the_same_costs():
    _, dyn = random_dynamics(hidden_dim=64)
    config = PlannerConfig(horizon=3, samples=50, iterations=1, elites=5)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (50, 3, 3)).astype(np.float32)
    z0, goal = rng.standard_normal((1, 8)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    one = NativeBackend("cpu", dyn, config, config.action_limits(3), "cem", threads=1)
    two = NativeBackend("cpu", dyn, config, config.action_limits(3), "cem", threads=2)
    np.testing.assert_array_equal(one.rollout_cost(actions, z0, goal), two.rollout_cost(actions, z0, goal))


def test_unknown_cpu_kernels_raise():
    _, dyn = random_dynamics()
    config = PlannerConfig(horizon=2, samples=8, iterations=1, elites=2)
    with pytest.raises(ValueError, match="not available"):
        _native("cpu:sse9", dyn, config, "cem")
    assert _core.philox4x32_10([0, 0, 0, 0], [0, 0]) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
