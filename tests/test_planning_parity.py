"""Every planner backend against one oracle: the C++ `reference` backend (csrc/reference).

The oracle is single-threaded and written to be read, and it is also what the CUDA kernels are
checked against on the CPU (tests/test_cuda_emulation.py), so every backend answers to the same
implementation. Each backend variant (the reference itself, each CPU kernel set usable here,
torch, and each CUDA precision where a GPU is present) must reproduce the oracle's rollout costs
and latents, and its plans on the same injected or seeded noise, within its row of TOLERANCES
(relative to the oracle's largest value). GPU variants skip with the reason where there is none.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from planning_helpers import (
    CRITIC_COST,
    FULL_COST,
    PLANNER_OPTIONS,
    assert_plans_equal,
    assert_rel,
    injected_noise_problem,
    random_critic,
    random_dynamics,
)

from ami_robot import _core, build_info
from ami_robot.cost import CostConfig
from ami_robot.planning import CEMPlanner, MLPDynamics, MPPIPlanner, PlannerConfig
from ami_robot.planning.backends import Backend
from ami_robot.planning.backends.cuda import CudaBackend
from ami_robot.planning.backends.native import NativeBackend
from ami_robot.planning.backends.torch_backend import TorchBackend
from ami_robot.planning.config import CudaPrecision
from ami_robot.world_model.critic import Critic
from ami_robot.world_model.ensemble import PredictorEnsemble

ORACLE = "reference"
HAS_GPU = hasattr(_core, "cuda_planner") and _core.cuda_device_count() > 0
NO_GPU_REASON = "built without CUDA" if not hasattr(_core, "cuda_planner") else "no CUDA GPU (cuda_device_count()==0)"


@dataclass(frozen=True)
class Tolerance:
    """rollout: costs and latents of given action sequences; plan: every field of a plan on the
    same noise, or None where plans are not compared (see TOLERANCES)."""

    rollout: float
    plan: float | None


TOLERANCES: dict[str, Tolerance] = {
    "reference": Tolerance(0.0, 0.0),  # the oracle is deterministic
    "cpu:avx512": Tolerance(1e-4, 1e-4),
    "cpu:avx2": Tolerance(1e-4, 1e-4),
    "cpu:generic": Tolerance(1e-4, 1e-4),
    "torch": Tolerance(1e-4, 1e-4),
    "cuda:fp32": Tolerance(1e-4, 1e-4),
    # Tensor cores round the matrix products' operands to 10 (tf32) or 7 (bf16) mantissa bits, with
    # float32 accumulation, a few layers and steps deep (their CPU emulation: 7e-4 and 3e-3). A plan
    # may then pick other elites among near-ties, so tf32/bf16 plans are compared, with fp32's and the
    # known optimum, on the well-conditioned analytic problem in tests/test_cuda_planner.py.
    "cuda:tf32": Tolerance(5e-3, None),
    "cuda:bf16": Tolerance(2e-2, None),
}
"""Per backend variant, relative to the largest oracle value (float32 everywhere but in tf32/bf16)."""

HOST_VARIANTS = ["reference", *(f"cpu:{isa}" for isa in build_info()["cpu_kernels_usable"]), "torch"]
CUDA_VARIANTS = [f"cuda:{precision}" for precision in typing.get_args(CudaPrecision)]
VARIANTS = HOST_VARIANTS + CUDA_VARIANTS
PLAN_VARIANTS = [v for v in VARIANTS if TOLERANCES[v].plan is not None]


def params(variants: list[str]) -> list:
    """pytest parameters of `variants`, the CUDA ones marked gpu and skipped without a GPU."""
    gpu = [pytest.mark.gpu, pytest.mark.skipif(not HAS_GPU, reason=NO_GPU_REASON)]
    return [pytest.param(v, marks=gpu) if v in CUDA_VARIANTS else v for v in variants]


def test_the_table_covers_every_variant():
    compiled = {f"cpu:{isa}" for isa in build_info()["cpu_kernels_compiled"]}
    assert compiled | {"reference", "torch", *CUDA_VARIANTS} <= set(TOLERANCES)


Dynamics = MLPDynamics | tuple[MLPDynamics, ...]
"""One predictor, or the members of a predictor ensemble."""


def as_module(dynamics: Dynamics) -> torch.nn.Module:
    """The torch predictor, or PredictorEnsemble, of `dynamics`."""
    if isinstance(dynamics, tuple):
        return PredictorEnsemble([member.to_module() for member in dynamics])
    return dynamics.to_module()


def make_backend(
    variant: str, dynamics: Dynamics, config: PlannerConfig, method: str, critic: Critic | None = None
) -> Backend:
    """The backend `variant` ("reference", "cpu:<kernels>", "torch", "cuda:<precision>")."""
    kind, _, option = variant.partition(":")
    limits = config.action_limits(dynamics[0].action_dim if isinstance(dynamics, tuple) else dynamics.action_dim)
    if kind == "torch":
        return TorchBackend(as_module(dynamics), config, limits, method, critic=critic)
    if kind == "cuda":
        return CudaBackend(dynamics, dataclasses.replace(config, cuda_precision=option), limits, method, critic=critic)
    return NativeBackend(kind, dynamics, config, limits, method, isa=option or "auto", critic=critic)


def make_planner(variant: str, planner_cls, dynamics: Dynamics, config: PlannerConfig, critic: Critic | None = None):
    """A planner whose backend is `variant` (the planner around it is the same for every backend)."""
    planner = planner_cls(
        as_module(dynamics) if isinstance(dynamics, tuple) else dynamics, config, backend=ORACLE, critic=critic
    )
    if variant != ORACLE:
        planner.backend = make_backend(variant, dynamics, config, planner_cls.method, critic)
    return planner


@pytest.mark.parametrize("variant", params(VARIANTS))
@pytest.mark.parametrize("activation", ["gelu", "silu", "relu", "tanh"])
@pytest.mark.parametrize("history", [1, 3])
def test_rollout_costs_and_latents_match_the_oracle(variant, activation, history):
    _, dyn = random_dynamics(
        latent_dim=12, action_dim=3, hidden_dim=40, depth=2, activation=activation, history=history
    )
    config = PlannerConfig(horizon=4, samples=37, iterations=1, elites=3, cost=FULL_COST)
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (37, 4, 3)).astype(np.float32)
    z0 = rng.standard_normal((history, 12)).astype(np.float32)
    goal = rng.standard_normal(12).astype(np.float32)
    prev = rng.uniform(-1, 1, 3).astype(np.float32)
    oracle, backend = make_backend(ORACLE, dyn, config, "cem"), make_backend(variant, dyn, config, "cem")
    tol = TOLERANCES[variant].rollout
    for p in (prev, None):
        assert_rel(backend.rollout_cost(actions, z0, goal, p), oracle.rollout_cost(actions, z0, goal, p), tol)
    head = actions[:5]
    assert_rel(backend.rollout_cost(head, z0, goal, prev), oracle.rollout_cost(head, z0, goal, prev), tol)
    assert_rel(backend.predict(actions, z0), oracle.predict(actions, z0), tol)


CRITIC_COSTS = {
    "final": CostConfig(goal_weight=0.0, critic_weight=1.0),
    "running": CostConfig(goal_weight=0.0, critic_running_weight=0.5),
    "every term": CRITIC_COST,
}
"""Cost configs with the critic on: alone (so that it dominates the comparison), and with every other term."""


CRITIC_ARCHITECTURES = [("gelu", True), ("silu", False), ("relu", True), ("tanh", False)]
"""(activation, layer_norm) of the random critics: every activation, with and without LayerNorm."""


@pytest.mark.parametrize("variant", params(VARIANTS))
@pytest.mark.parametrize("cost", sorted(CRITIC_COSTS))
@pytest.mark.parametrize(("activation", "layer_norm"), CRITIC_ARCHITECTURES)
def test_rollout_costs_with_the_critic_match_the_oracle(variant, cost, activation, layer_norm):
    _, dyn = random_dynamics(latent_dim=12, action_dim=3, hidden_dim=40, depth=2, activation=activation, history=2)
    critic = random_critic(latent_dim=12, activation=activation, layer_norm=layer_norm)
    config = PlannerConfig(horizon=4, samples=37, iterations=1, elites=3, cost=CRITIC_COSTS[cost])
    rng = np.random.default_rng(4)
    actions = rng.uniform(-1, 1, (37, 4, 3)).astype(np.float32)
    z0 = rng.standard_normal((2, 12)).astype(np.float32)
    goal = rng.standard_normal(12).astype(np.float32)
    prev = rng.uniform(-1, 1, 3).astype(np.float32)
    oracle = make_backend(ORACLE, dyn, config, "cem", critic)
    backend = make_backend(variant, dyn, config, "cem", critic)
    tol = TOLERANCES[variant].rollout
    expected = oracle.rollout_cost(actions, z0, goal, prev)
    assert_rel(backend.rollout_cost(actions, z0, goal, prev), expected, tol)
    head = actions[:5]
    assert_rel(backend.rollout_cost(head, z0, goal, None), oracle.rollout_cost(head, z0, goal, None), tol)
    without_critic = dataclasses.replace(config.cost, critic_weight=0.0, critic_running_weight=0.0)
    plain = make_backend(ORACLE, dyn, dataclasses.replace(config, cost=without_critic), "cem")
    assert np.abs(expected - plain.rollout_cost(actions, z0, goal, prev)).min() > 1e-3  # the critic term is there


@pytest.mark.parametrize("variant", params(PLAN_VARIANTS))
@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
def test_plan_with_the_critic_matches_the_oracle_on_injected_noise(variant, planner_cls):
    p = injected_noise_problem()
    config = dataclasses.replace(p.config, cost=CRITIC_COST)
    critic = random_critic(latent_dim=p.dynamics.latent_dim, seed=3)
    oracle = make_planner(ORACLE, planner_cls, p.dynamics, config, critic)
    other = make_planner(variant, planner_cls, p.dynamics, config, critic)
    for step in range(2):
        noise = oracle.sample_noise(step)
        expected = oracle.plan(p.z0, p.goal, previous_action=p.previous_action, noise=noise)
        actual = other.plan(p.z0, p.goal, previous_action=p.previous_action, noise=noise)
        assert_plans_equal(actual, expected, TOLERANCES[variant].plan)


@pytest.mark.parametrize("variant", params(PLAN_VARIANTS))
@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
@pytest.mark.parametrize("options", PLANNER_OPTIONS)
def test_plan_matches_the_oracle_on_injected_noise(variant, planner_cls, options):
    p = injected_noise_problem(**options)
    oracle = make_planner(ORACLE, planner_cls, p.dynamics, p.config)
    other = make_planner(variant, planner_cls, p.dynamics, p.config)
    for step in range(2):  # the second call exercises the warm start
        noise = oracle.sample_noise(step)
        for previous_action in (p.previous_action, None) if step == 0 else (p.previous_action,):
            expected = oracle.plan(p.z0, p.goal, previous_action=previous_action, noise=noise)
            actual = other.plan(p.z0, p.goal, previous_action=previous_action, noise=noise)
            assert_plans_equal(actual, expected, TOLERANCES[variant].plan)


ENSEMBLE_COSTS = {
    "final": CostConfig(goal_weight=1.0, disagreement_weight=8.0),
    "running": CostConfig(goal_weight=0.0, disagreement_running_weight=2.0),
    "every term": dataclasses.replace(CRITIC_COST, disagreement_weight=4.0, disagreement_running_weight=1.0),
}
"""Cost configs of a predictor ensemble: its disagreement at the final step, at every step, and both
beside every other term (the critic's too)."""
ENSEMBLE_VARIANTS = HOST_VARIANTS
"""The backends that run an ensemble (the CUDA one does not yet)."""


def random_ensemble(members: int = 3, **options) -> tuple[MLPDynamics, ...]:
    return tuple(random_dynamics(seed=seed, **options)[1] for seed in range(members))


@pytest.mark.parametrize("variant", ENSEMBLE_VARIANTS)
@pytest.mark.parametrize("cost", sorted(ENSEMBLE_COSTS))
def test_ensemble_rollout_costs_and_latents_match_the_oracle(variant, cost):
    """The members' mean of the latent terms, the action terms once, their disagreement: the torch
    backend's semantics (`ami_robot.cost.terms.Cost`), in every backend that runs an ensemble."""
    members = random_ensemble(latent_dim=12, action_dim=3, hidden_dim=40, depth=2, history=2)
    config = PlannerConfig(horizon=4, samples=37, iterations=1, elites=3, cost=ENSEMBLE_COSTS[cost])
    critic = random_critic(latent_dim=12) if config.cost.uses_critic else None
    rng = np.random.default_rng(6)
    actions = rng.uniform(-1, 1, (37, 4, 3)).astype(np.float32)
    z0 = rng.standard_normal((2, 12)).astype(np.float32)
    goal = rng.standard_normal(12).astype(np.float32)
    prev = rng.uniform(-1, 1, 3).astype(np.float32)
    oracle, backend = (
        make_backend(ORACLE, members, config, "cem", critic),
        make_backend(variant, members, config, "cem", critic),
    )
    tol = TOLERANCES[variant].rollout
    expected = oracle.rollout_cost(actions, z0, goal, prev)
    assert_rel(backend.rollout_cost(actions, z0, goal, prev), expected, tol)
    head = actions[:5]
    assert_rel(backend.rollout_cost(head, z0, goal, None), oracle.rollout_cost(head, z0, goal, None), tol)
    assert_rel(backend.predict(actions, z0), oracle.predict(actions, z0), tol)

    agreed = dataclasses.replace(
        config, cost=dataclasses.replace(config.cost, disagreement_weight=0.0, disagreement_running_weight=0.0)
    )
    without = make_backend(ORACLE, members, agreed, "cem", critic).rollout_cost(actions, z0, goal, prev)
    assert (expected - without).min() > 1e-3, "the disagreement term is there, and positive"
    alone = [make_backend(ORACLE, member, agreed, "cem", critic) for member in members]
    assert_rel(without, np.mean([one.rollout_cost(actions, z0, goal, prev) for one in alone], axis=0), 1e-5)
    assert_rel(oracle.predict(actions, z0), np.mean([one.predict(actions, z0) for one in alone], axis=0), 1e-5)


@pytest.mark.parametrize("variant", [v for v in PLAN_VARIANTS if v in ENSEMBLE_VARIANTS])
@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
def test_ensemble_plan_matches_the_oracle_on_injected_noise(variant, planner_cls):
    p = injected_noise_problem()
    members = random_ensemble(latent_dim=10, action_dim=2, hidden_dim=48, depth=3, history=2)
    config = dataclasses.replace(p.config, cost=ENSEMBLE_COSTS["every term"])
    critic = random_critic(latent_dim=10, seed=3)
    oracle = make_planner(ORACLE, planner_cls, members, config, critic)
    other = make_planner(variant, planner_cls, members, config, critic)
    for step in range(2):
        noise = oracle.sample_noise(step)
        expected = oracle.plan(p.z0, p.goal, previous_action=p.previous_action, noise=noise)
        actual = other.plan(p.z0, p.goal, previous_action=p.previous_action, noise=noise)
        assert_plans_equal(actual, expected, TOLERANCES[variant].plan)


def test_ensemble_costs_are_the_same_on_any_number_of_cpu_threads():
    """Each thread rolls its own row chunks through every member in its own workspace."""
    members = random_ensemble(latent_dim=12, action_dim=3, hidden_dim=40, depth=2, history=2)
    config = PlannerConfig(horizon=4, samples=300, iterations=1, elites=3, cost=ENSEMBLE_COSTS["final"])
    rng = np.random.default_rng(7)
    actions = rng.uniform(-1, 1, (300, 4, 3)).astype(np.float32)
    z0, goal = rng.standard_normal((2, 12)).astype(np.float32), rng.standard_normal(12).astype(np.float32)
    limits = config.action_limits(3)
    costs = [
        NativeBackend("cpu", members, config, limits, "cem", threads=threads).rollout_cost(actions, z0, goal)
        for threads in (1, 2)
    ]
    np.testing.assert_array_equal(costs[0], costs[1])
    assert_rel(costs[1], make_backend(ORACLE, members, config, "cem").rollout_cost(actions, z0, goal), 1e-4)


def test_the_core_checks_an_ensemble():
    members = random_ensemble(latent_dim=12, action_dim=3, hidden_dim=40, depth=2, history=2)
    wider = random_dynamics(latent_dim=12, action_dim=3, hidden_dim=48, depth=2, history=2)[1]
    config = PlannerConfig(horizon=4, samples=37, iterations=1, elites=3, cost=ENSEMBLE_COSTS["final"])
    with pytest.raises(ValueError, match="needs a predictor ensemble"):
        make_backend(ORACLE, members[0], config, "cem")
    with pytest.raises(ValueError, match="ensemble predictor 2 differs from the model's architecture"):
        make_backend("cpu", (*members[:2], wider), config, "cem")


SEEDED_PROBLEMS = {
    "small": (dict(), PlannerConfig(horizon=3, samples=30, iterations=3, elites=5, seed=7)),
    "wide": (
        dict(latent_dim=16, action_dim=3, hidden_dim=64, depth=2),
        PlannerConfig(horizon=4, samples=100, iterations=5, elites=10, seed=99, temperature=0.3),
    ),
}


@pytest.mark.parametrize("variant", params(PLAN_VARIANTS))
@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
@pytest.mark.parametrize("problem", sorted(SEEDED_PROBLEMS))
def test_seeded_plans_match_the_oracle(variant, planner_cls, problem):
    """Each backend's own Philox stream (host or device) and warm start, three plans in a row."""
    dynamics_options, config = SEEDED_PROBLEMS[problem]
    _, dyn = random_dynamics(**dynamics_options)
    z0, goal = np.zeros(dyn.latent_dim, np.float32), np.full(dyn.latent_dim, 0.5, np.float32)
    oracle = make_planner(ORACLE, planner_cls, dyn, config)
    other = make_planner(variant, planner_cls, dyn, config)
    for _ in range(3):
        expected, actual = oracle.plan(z0, goal), other.plan(z0, goal)
        assert_rel(actual.actions, expected.actions, TOLERANCES[variant].plan)
        assert_rel(actual.cost, expected.cost, TOLERANCES[variant].plan)


@pytest.mark.parametrize("variant", HOST_VARIANTS)
def test_internal_philox_noise_equals_injected_noise(variant):
    _, dyn = random_dynamics()
    config = PlannerConfig(horizon=3, samples=30, iterations=3, elites=5, seed=1234)
    seeded, injected = (make_planner(variant, CEMPlanner, dyn, config) for _ in range(2))
    z0, goal = np.zeros(8, np.float32), np.ones(8, np.float32)
    for step in range(2):
        a = seeded.plan(z0, goal)
        b = injected.plan(z0, goal, noise=injected.sample_noise(step))
        assert_rel(a.actions, b.actions, 1e-6)


@pytest.mark.parametrize("variant", params([v for v in PLAN_VARIANTS if v in CUDA_VARIANTS]))
def test_lewm_sized_plan_matches_the_oracle(variant):
    """The benchmark's shape (N=300, H=5, D=192, A=10, width 512, depth 4) on injected noise; the
    oracle needs seconds here, so only the CUDA backend runs it (the others share its code paths
    at the small sizes above)."""
    _, dyn = random_dynamics(latent_dim=192, action_dim=10, hidden_dim=512, depth=4)
    config = PlannerConfig(horizon=5, samples=300, iterations=3, elites=30)
    rng = np.random.default_rng(3)
    z0, goal = rng.standard_normal(192).astype(np.float32), rng.standard_normal(192).astype(np.float32)
    oracle, other = make_planner(ORACLE, CEMPlanner, dyn, config), make_planner(variant, CEMPlanner, dyn, config)
    noise = oracle.sample_noise(0)
    expected, actual = oracle.plan(z0, goal, noise=noise), other.plan(z0, goal, noise=noise)
    assert_rel(actual.actions, expected.actions, TOLERANCES[variant].plan)
    assert_rel(actual.cost, expected.cost, TOLERANCES[variant].plan)
