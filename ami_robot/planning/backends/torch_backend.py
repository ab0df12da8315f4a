"""The PyTorch backend: the readable oracle the native backends are tested against, and the
baseline they are timed against. Works with any predictor
forward(z_history (N, k, D), action (N, A)) -> (N, D), not only MLPs."""

from __future__ import annotations

from collections.abc import Callable

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
            if not torch.isfinite(elite_cost[0]):
                continue
            if self.method == "mppi":
                w = torch.exp(-(elite_cost - elite_cost[0]) / c.temperature)
                w = torch.where(torch.isfinite(elite_cost), w, torch.zeros_like(w))
            else:
                w = torch.ones_like(elite_cost)
            w = (w.double() / w.double().sum()).float()[:, None, None]
            m = (w * elites).sum(0)
            s = (w * (elites - m) ** 2).sum(0).sqrt()
            mean = c.momentum * mean + (1.0 - c.momentum) * m
            std = torch.clamp_min(c.momentum * std + (1.0 - c.momentum) * s, c.min_std)
        mean = self.limits.project(mean, prev)
        final_cost = float(self._eager_rollout_cost(mean[None], z0_t, goal_t, prev)[0])
        as_np = lambda t: t.cpu().numpy().astype(np.float32)  # noqa: E731
        return RawPlan(as_np(mean), as_np(std), final_cost, as_np(best), best_cost)


class _CudaGraphed:
    """fn(actions, z0, goal, previous_action) replayed from a CUDA graph captured on first call
    (re-captured when shapes or the presence of previous_action change)."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        self.fn = fn
        self.graph: torch.cuda.CUDAGraph | None = None
        self.key: tuple | None = None

    def __call__(self, actions, z0, goal, previous_action):
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
            if dst is not None:
                dst.copy_(src)
        self.graph.replay()
        return self.output.clone()
