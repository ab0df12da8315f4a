"""The C++ core backends: `cpu` (threaded SIMD), `reference` (single-threaded oracle), `cuda`."""

from __future__ import annotations

import numpy as np

from ami_robot.cost.config import CostConfig
from ami_robot.cost.limits import ActionLimits
from ami_robot.planning.backends.base import RawPlan
from ami_robot.planning.config import PlannerConfig
from ami_robot.planning.dynamics import MLPDynamics


def core_problem(dynamics: MLPDynamics, config: PlannerConfig, limits: ActionLimits, method: str):
    """The _core structs (model, cost, bounds, sampler) of a planning problem."""
    from ami_robot import _core

    cost = _core.CostParams()
    c: CostConfig = config.cost
    cost.goal_weight, cost.goal_running_weight = c.goal_weight, c.goal_running_weight
    cost.action_weight, cost.smoothness_weight = c.action_weight, c.smoothness_weight
    cost.latent_bound_weight = c.latent_bound_weight
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
    return dynamics.to_core(), cost, bounds, sampler


class NativeBackend:
    """A _core planner; plan() releases the GIL and allocates no buffers in steady state."""

    def __init__(
        self,
        kind: str,
        dynamics: MLPDynamics,
        config: PlannerConfig,
        limits: ActionLimits,
        method: str,
        threads: int = 0,
        isa: str = "auto",
    ) -> None:
        from ami_robot import _core

        args = core_problem(dynamics, config, limits, method)
        if kind == "cpu":
            self._planner = _core.cpu_planner(*args, threads=threads, isa=isa)
        elif kind == "reference":
            self._planner = _core.reference_planner(*args)
        elif kind == "cuda":
            if not hasattr(_core, "cuda_planner"):
                raise ValueError("backend 'cuda': ami_robot._core was built without CUDA")
            self._planner = _core.cuda_planner(*args, precision=config.cuda_precision)
        else:
            raise ValueError(f"unknown native backend {kind!r}")
        self.name = kind
        self.kernels: str = self._planner.kernels
        self.threads: int = self._planner.threads

    @property
    def core_planner(self):
        """The _core planner object (a _core.CudaPlanner for kind 'cuda': plan_device, precision, device)."""
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
        mean, std, cost, best, best_cost = self._planner.plan(
            z0, goal, previous_action, init_mean, init_std, noise, plan_index
        )
        return RawPlan(mean, std, float(cost), best, float(best_cost))

    def rollout_cost(
        self, actions: np.ndarray, z0: np.ndarray, goal: np.ndarray, previous_action: np.ndarray | None = None
    ) -> np.ndarray:
        return self._planner.rollout_cost(actions, z0, goal, previous_action)

    def predict(self, actions: np.ndarray, z0: np.ndarray) -> np.ndarray:
        """Predicted latents (n, H, D) of sequences (n, H, A)."""
        return self._planner.predict(actions, z0)
