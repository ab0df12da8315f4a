"""Every backend equals the torch reference on the same injected noise (relative 1e-4, float32)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from planning_helpers import (
    FULL_COST,
    PLANNER_OPTIONS,
    assert_plans_equal,
    assert_rel,
    injected_noise_problem,
    random_dynamics,
)

from ami_robot import _core, build_info
from ami_robot.planning import CEMPlanner, MPPIPlanner, PlannerConfig
from ami_robot.planning.backends.native import NativeBackend

NATIVE = ["reference"] + [f"cpu:{isa}" for isa in build_info()["cpu_kernels_usable"]]


def _native(name, dyn, config, method):
    kind, _, isa = name.partition(":")
    return NativeBackend(kind, dyn, config, config.action_limits(dyn.action_dim), method, isa=isa or "auto")


@pytest.mark.parametrize("backend", NATIVE)
@pytest.mark.parametrize("activation", ["gelu", "silu", "relu", "tanh"])
@pytest.mark.parametrize("history", [1, 3])
def test_rollout_cost_matches_torch(backend, activation, history):
    module, dyn = random_dynamics(
        latent_dim=12, action_dim=3, hidden_dim=40, depth=2, activation=activation, history=history
    )
    config = PlannerConfig(horizon=4, samples=21, iterations=1, elites=3, cost=FULL_COST)
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (21, 4, 3)).astype(np.float32)
    z0 = rng.standard_normal((history, 12)).astype(np.float32)
    goal = rng.standard_normal(12).astype(np.float32)
    prev = rng.uniform(-1, 1, 3).astype(np.float32)
    torch_backend = CEMPlanner(module, config, backend="torch").backend
    native = _native(backend, dyn, config, "cem")
    for p in (prev, None):
        assert_rel(native.rollout_cost(actions, z0, goal, p), torch_backend.rollout_cost(actions, z0, goal, p))
    head = actions[:5]
    assert_rel(native.rollout_cost(head, z0, goal, prev), torch_backend.rollout_cost(head, z0, goal, prev))
    assert_rel(native.predict(actions, z0), torch_backend.predict(actions, z0))


@pytest.mark.parametrize("backend", NATIVE)
@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
@pytest.mark.parametrize("options", PLANNER_OPTIONS)
def test_plan_matches_torch_on_injected_noise(backend, planner_cls, options):
    p = injected_noise_problem(**options)
    reference = planner_cls(p.module, p.config, backend="torch")
    other = planner_cls(p.dynamics, p.config, backend="torch")
    other.backend = _native(backend, p.dynamics, p.config, planner_cls.method)
    for step in range(2):  # the second call exercises the warm start
        noise = reference.sample_noise(step)
        expected = reference.plan(p.z0, p.goal, previous_action=p.previous_action, noise=noise)
        assert_plans_equal(other.plan(p.z0, p.goal, previous_action=p.previous_action, noise=noise), expected)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_internal_philox_noise_equals_injected_noise(backend):
    _, dyn = random_dynamics()
    config = PlannerConfig(horizon=3, samples=30, iterations=3, elites=5, seed=1234)
    seeded, injected = CEMPlanner(dyn, config, backend=backend), CEMPlanner(dyn, config, backend=backend)
    z0, goal = np.zeros(8, np.float32), np.ones(8, np.float32)
    for step in range(2):
        a = seeded.plan(z0, goal)
        b = injected.plan(z0, goal, noise=injected.sample_noise(step))
        assert_rel(a.actions, b.actions, 1e-6)


def test_torch_backend_seeded_noise_matches_cpu():
    module, dyn = random_dynamics()
    config = PlannerConfig(horizon=3, samples=30, iterations=3, elites=5, seed=7)
    z0, goal = np.zeros(8, np.float32), np.ones(8, np.float32)
    assert_rel(
        CEMPlanner(dyn, config, backend="cpu").plan(z0, goal).actions,
        CEMPlanner(module, config, backend="torch").plan(z0, goal).actions,
    )


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
