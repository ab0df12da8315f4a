"""The PyTorch backend: CEM / iCEM / MPPI in torch with any predictor
forward(z_history (N, k, D), action (N, A)) -> (N, D), not only MLPs; the baseline the native
backends are timed against. `refit` is the one torch form of the CEM / MPPI update, shared with
the benchmark's CUDA-graph baseline."""

from __future__ import annotations

from collections.abc import Callable
from typing import overload

import numpy as np
import torch
from torch import nn

from ami_robot.cost.limits import ActionLimits
from ami_robot.cost.terms import Cost
from ami_robot.planning import rng
from ami_robot.planning.backends.base import RawPlan
from ami_robot.planning.config import PlannerConfig
from ami_robot.world_model.model import autoregressive_rollout


class TorchBackend:
    """CEM / iCEM / MPPI in torch, the same order of operations as csrc/planner.cpp.

    variant: "eager"; "compiled" (torch.compile of the rollout + cost); "graph" (the rollout +
    cost captured in a CUDA graph; CUDA devices only)."""

    def __init__(
        self,
        predictor: nn.Module,
        config: PlannerConfig,
        limits: ActionLimits,
        method: str,
        device: str | torch.device = "cpu",
        variant: str = "eager",
    ) -> None:
        self.name = "torch"
        self.variant = variant
        self.config = config
        self.limits = limits
        self.method = method
        self.device = torch.device(device)
        self.predictor = predictor.to(self.device).eval()
        self.cost = Cost.from_config(config.cost)
        self._rollout_cost: Callable[..., torch.Tensor] = self._eager_rollout_cost
        if variant == "compiled":
            self._rollout_cost = torch.compile(self._eager_rollout_cost, dynamic=False)
        elif variant == "graph":
            if self.device.type != "cuda":
                raise ValueError("variant 'graph' needs a CUDA device")
            self._rollout_cost = _CudaGraphed(self._eager_rollout_cost)
        elif variant != "eager":
            raise ValueError(f"unknown torch variant {variant!r} (eager, compiled, graph)")

    @overload
    def _tensor(self, x: np.ndarray) -> torch.Tensor: ...
    @overload
    def _tensor(self, x: None) -> None: ...
    def _tensor(self, x: np.ndarray | None) -> torch.Tensor | None:
        return None if x is None else torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def rollout(self, actions: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        """Predicted latents (N, H, D) of actions (N, H, A) from z0 (k, D)."""
        return autoregressive_rollout(self.predictor, z0.expand(actions.shape[0], *z0.shape), actions)

    def _eager_rollout_cost(
        self, actions: torch.Tensor, z0: torch.Tensor, goal: torch.Tensor, previous_action: torch.Tensor | None
    ) -> torch.Tensor:
        return self.cost(self.rollout(actions, z0), actions, goal, previous_action)

    @torch.no_grad()
    def rollout_cost(
        self, actions: np.ndarray, z0: np.ndarray, goal: np.ndarray, previous_action: np.ndarray | None = None
    ) -> np.ndarray:
        cost = self._eager_rollout_cost(
            self._tensor(actions), self._tensor(z0), self._tensor(goal), self._tensor(previous_action)
        )
        return cost.cpu().numpy()

    @torch.no_grad()
    def predict(self, actions: np.ndarray, z0: np.ndarray) -> np.ndarray:
        """Predicted latents (n, H, D) of sequences (n, H, A)."""
        return self.rollout(self._tensor(actions), self._tensor(z0)).cpu().numpy()

    @torch.no_grad()
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
        c = self.config
        H, A = init_mean.shape
        if noise is None:
            noise = rng.planner_noise(c.seed, plan_index, c.iterations, c.samples, H, A)
        z0_t, goal_t, prev = self._tensor(z0), self._tensor(goal), self._tensor(previous_action)
        noise_t = self._tensor(noise)
        mean, std = self._tensor(init_mean).clone(), self._tensor(init_std).clone()
        n, k, keep = c.samples, c.elites, c.keep_elites
        best_cost, best = float("inf"), mean.clone()
        kept = None
        for it in range(c.iterations):
            x = self.limits.project(mean + std * noise_t[it], prev)
            if kept is not None:
                x[n - keep :] = kept
            cost = self._rollout_cost(x, z0_t, goal_t, prev)
            key = torch.nan_to_num(cost, nan=float("inf"))
            order = torch.sort(key, stable=True).indices[:k]
            elites, elite_cost = x[order], key[order]
            if keep > 0:
                kept = elites[:keep].clone()
            if float(elite_cost[0]) < best_cost:
                best_cost, best = float(elite_cost[0]), elites[0].clone()
            if torch.isfinite(elite_cost[0]):
                mean, std = refit(mean, std, elites, elite_cost, c, self.method)
        mean = self.limits.project(mean, prev)
        final_cost = float(self._eager_rollout_cost(mean[None], z0_t, goal_t, prev)[0])
        return RawPlan(_host(mean), _host(std), final_cost, _host(best), best_cost)


def _host(x: torch.Tensor) -> np.ndarray:
    return x.cpu().numpy().astype(np.float32)


def refit(
    mean: torch.Tensor,
    std: torch.Tensor,
    elites: torch.Tensor,
    elite_cost: torch.Tensor,
    config: PlannerConfig,
    method: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The next sampling (mean, std) (H, A) from the elites (K, H, A) and their costs (K,), best
    first (K = config.elites). CEM weighs the elites equally, MPPI by exp(-(cost - best cost) /
    temperature) with non-finite costs weighing 0 (the best cost must be finite); the weighted mean
    and std are then blended with the old ones by config.momentum and std floored at min_std.
    No host synchronisation, so it can be captured in a CUDA graph."""
    if method == "mppi":
        weights = torch.exp(-(elite_cost - elite_cost[0]) / config.temperature)
        weights = torch.where(torch.isfinite(elite_cost), weights, torch.zeros_like(weights))
    else:
        weights = torch.ones_like(elite_cost)
    weights = (weights.double() / weights.double().sum()).float()[:, None, None]
    elite_mean = (weights * elites).sum(0)
    elite_std = (weights * (elites - elite_mean) ** 2).sum(0).sqrt()
    keep = config.momentum
    mean = keep * mean + (1.0 - keep) * elite_mean
    std = torch.clamp_min(keep * std + (1.0 - keep) * elite_std, config.min_std)
    return mean, std


class _CudaGraphed:
    """fn(actions, z0, goal, previous_action) replayed from a CUDA graph captured on first call
    (re-captured when shapes or the presence of previous_action change)."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        self.fn = fn
        self.graph: torch.cuda.CUDAGraph | None = None
        self.key: tuple | None = None

    def __call__(
        self, actions: torch.Tensor, z0: torch.Tensor, goal: torch.Tensor, previous_action: torch.Tensor | None
    ) -> torch.Tensor:
        key = (actions.shape, z0.shape, previous_action is None)
        if self.graph is None or key != self.key:
            self.inputs = [
                actions.clone(),
                z0.clone(),
                goal.clone(),
                None if previous_action is None else previous_action.clone(),
            ]
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self.fn(*self.inputs)
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.output = self.fn(*self.inputs)
            self.key = key
        for dst, src in zip(self.inputs, (actions, z0, goal, previous_action)):
            if dst is not None and src is not None:  # the key holds whether previous_action is None
                dst.copy_(src)
        self.graph.replay()
        return self.output.clone()
