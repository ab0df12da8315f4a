"""The C++ core's host backends: `cpu` (threaded SIMD) and `reference` (single-threaded, the oracle
every backend is tested against); `CoreBackend` is also the base of the `cuda` backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ami_robot.cost.config import CostConfig
from ami_robot.cost.limits import ActionLimits
from ami_robot.planning.backends.base import RawPlan
from ami_robot.planning.config import PlannerConfig
from ami_robot.planning.dynamics import MLPDynamics, critic_to_core
from ami_robot.world_model.critic import Critic


def core_problem(
    dynamics: MLPDynamics, config: PlannerConfig, limits: ActionLimits, method: str, critic: Critic | None = None
) -> tuple[Any, Any, Any, Any]:
    """The _core structs (MlpModel, CostParams, ActionBounds, SamplerParams) of a planning problem.
    critic: the trained critic, required when config.cost weighs it (ValueError without one)."""
    from ami_robot import _core

    c: CostConfig = config.cost
    cost = _core.CostParams()
    if c.uses_critic:
        if critic is None:
            raise ValueError("cost.critic_weight / critic_running_weight > 0 needs a critic")
        cost.critic = critic_to_core(critic)
        cost.critic_weight, cost.critic_running_weight = c.critic_weight, c.critic_running_weight
    cost.goal_weight, cost.goal_running_weight = c.goal_weight, c.goal_running_weight
    cost.action_weight, cost.smoothness_weight = c.action_weight, c.smoothness_weight
    cost.latent_bound_weight = c.latent_bound_weight
    cost.disagreement_weight, cost.disagreement_running_weight = c.disagreement_weight, c.disagreement_running_weight
    cost.latent_low = [] if c.latent_low is None else [c.latent_low] * dynamics.latent_dim
    cost.latent_high = [] if c.latent_high is None else [c.latent_high] * dynamics.latent_dim
    bounds = _core.ActionBounds()
    bounds.low, bounds.high = limits.low.tolist(), limits.high.tolist()
    bounds.max_rate = [] if limits.max_rate is None else limits.max_rate.tolist()
    sampler = _core.SamplerParams()
    sampler.method = _core.Method.MPPI if method == "mppi" else _core.Method.CEM
    sampler.horizon, sampler.samples = config.horizon, config.samples
    sampler.iterations, sampler.elites = config.iterations, config.elites
    sampler.keep_elites, sampler.momentum = config.keep_elites, config.momentum
    sampler.min_std, sampler.temperature, sampler.seed = config.min_std, config.temperature, config.seed
    sampler.control_cost_weight, sampler.std_decay = config.control_cost_weight, config.std_decay
    return dynamics.to_core(), cost, bounds, sampler


class CoreBackend:
    """A _core planner behind the `Backend` interface; plan() releases the GIL and allocates no
    buffers in steady state."""

    def __init__(self, name: str, core_planner: Any) -> None:
        self.name = name
        self._planner = core_planner
        self.kernels: str = core_planner.kernels
        self.threads: int = core_planner.threads

    @property
    def core_planner(self) -> Any:
        """The _core planner object (a _core.CudaPlanner for the `cuda` backend)."""
        return self._planner

    def plan(
        self,
        z0: np.ndarray,
        goal: np.ndarray,
        previous_action: np.ndarray | None,
        init_mean: np.ndarray,
        init_std: np.ndarray,
        noise: np.ndarray | None,
        plan_index: int,
    ) -> RawPlan:
        mean, std, cost, best, best_cost, std_history = self._planner.plan(
            z0, goal, previous_action, init_mean, init_std, noise, plan_index
        )
        return RawPlan(mean, std, float(cost), best, float(best_cost), std_history)

    def rollout_cost(
        self, actions: np.ndarray, z0: np.ndarray, goal: np.ndarray, previous_action: np.ndarray | None = None
    ) -> np.ndarray:
        return self._planner.rollout_cost(actions, z0, goal, previous_action)

    def predict(self, actions: np.ndarray, z0: np.ndarray) -> np.ndarray:
        """Predicted latents (n, H, D) of sequences (n, H, A)."""
        return self._planner.predict(actions, z0)


class NativeBackend(CoreBackend):
    """The C++ core on the host. kind: "cpu" (threads: 0 = auto; isa: "auto" or one of
    build_info()["cpu_kernels_usable"]) or "reference"; dynamics: one predictor, or the members of a
    predictor ensemble (`ensemble_dynamics`); critic: the trained critic when config.cost weighs it."""

    def __init__(
        self,
        kind: Literal["cpu", "reference"],
        dynamics: MLPDynamics | Sequence[MLPDynamics],
        config: PlannerConfig,
        limits: ActionLimits,
        method: str,
        threads: int = 0,
        isa: str = "auto",
        critic: Critic | None = None,
    ) -> None:
        from ami_robot import _core

        members = [dynamics] if isinstance(dynamics, MLPDynamics) else list(dynamics)
        problem = core_problem(members[0], config, limits, method, critic)
        ensemble = [problem[0], *(member.to_core() for member in members[1:])] if len(members) > 1 else []
        if kind == "cpu":
            core_planner = _core.cpu_planner(*problem, threads=threads, isa=isa, ensemble=ensemble)
        elif kind == "reference":
            core_planner = _core.reference_planner(*problem, ensemble=ensemble)
        else:
            raise ValueError(f"unknown host backend {kind!r} (cpu, reference; cuda is CudaBackend)")
        super().__init__(kind, core_planner)
