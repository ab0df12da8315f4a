"""The PyTorch backend: CEM / iCEM / MPPI in torch with any predictor
forward(z_history (N, k, D), action (N, A)) -> (N, D), not only MLPs, or a `PredictorEnsemble`;
the baseline the native backends are timed against. `update_distribution` is the one torch form
of the CEM / MPPI update, shared with the benchmark's CUDA-graph baseline."""

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
from ami_robot.world_model.critic import Critic
from ami_robot.world_model.ensemble import PredictorEnsemble
from ami_robot.world_model.rollout import autoregressive_rollout


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
        critic: Critic | None = None,
    ) -> None:
        """critic: the model's trained critic, required when config.cost weighs it."""
        self.name = "torch"
        self.variant = variant
        self.config = config
        self.limits = limits
        self.method = method
        self.device = torch.device(device)
        self.predictor = predictor.to(self.device).eval()
        self.critic = None if critic is None else critic.to(self.device).eval()
        self.cost = Cost.from_config(config.cost, self.critic)
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
        """Predicted latents (N, H, D) of actions (N, H, A) from z0 (k, D); (M, N, H, D) from an ensemble."""
        z_history = z0.expand(actions.shape[0], *z0.shape)
        if isinstance(self.predictor, PredictorEnsemble):
            return self.predictor.rollout(z_history, actions)
        return autoregressive_rollout(self.predictor, z_history, actions)

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
        """Predicted latents (n, H, D) of sequences (n, H, A) (an ensemble's: the members' mean)."""
        latents = self.rollout(self._tensor(actions), self._tensor(z0))
        return (latents.mean(0) if latents.dim() == 4 else latents).cpu().numpy()

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
        n, keep = c.samples, c.keep_elites
        best_cost, best = float("inf"), mean.clone()
        kept = None
        history = []
        for it in range(c.iterations):
            history.append(std)
            x = self.limits.project(mean + std * noise_t[it], prev)
            if kept is not None:
                x[n - keep :] = kept
            cost = self._rollout_cost(x, z0_t, goal_t, prev)
            key = torch.nan_to_num(cost, nan=float("inf"))
            order = torch.sort(key, stable=True).indices
            if keep > 0:
                kept = x[order[:keep]].clone()
            if float(key[order[0]]) < best_cost:
                best_cost, best = float(key[order[0]]), x[order[0]].clone()
            if torch.isfinite(key[order[0]]):
                mean, std = update_distribution(mean, std, x, key, order, c, self.method)
        mean = self.limits.project(mean, prev)
        final_cost = float(self._eager_rollout_cost(mean[None], z0_t, goal_t, prev)[0])
        return RawPlan(_host(mean), _host(std), final_cost, _host(best), best_cost, _host(torch.stack(history)))


def _host(x: torch.Tensor) -> np.ndarray:
    return x.cpu().numpy().astype(np.float32)


def update_distribution(
    mean: torch.Tensor,
    std: torch.Tensor,
    samples: torch.Tensor,
    cost: torch.Tensor,
    order: torch.Tensor,
    config: PlannerConfig,
    method: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The next sampling (mean, std) (H, A) from one iteration's samples (N, H, A), their costs (N,)
    (NaN as +inf) and `order` (at least the first config.elites sample indices, best first; the best
    cost must be finite). CEM refits mean and std to the top config.elites samples, equally
    weighted. MPPI takes the `mppi_weights`-weighted mean of all samples and keeps the exploration
    std on its schedule, max(std * std_decay, min_std). Both blend the mean by config.momentum.
    No host synchronisation, so it can be captured in a CUDA graph."""
    keep = config.momentum
    if method == "mppi":
        weights = mppi_weights(mean, std, samples, cost, cost[order[0]], config)
        mean = keep * mean + (1.0 - keep) * (weights[:, None, None] * samples).sum(0)
        return mean, torch.clamp_min(std * config.std_decay, config.min_std)
    elites = samples[order[: config.elites]]
    weight = float(np.float32(1.0 / config.elites))
    elite_mean = (weight * elites).sum(0)
    elite_std = (weight * (elites - elite_mean) ** 2).sum(0).sqrt()
    mean = keep * mean + (1.0 - keep) * elite_mean
    std = torch.clamp_min(keep * std + (1.0 - keep) * elite_std, config.min_std)
    return mean, std


def mppi_weights(
    mean: torch.Tensor,
    std: torch.Tensor,
    samples: torch.Tensor,
    cost: torch.Tensor,
    min_cost: torch.Tensor,
    config: PlannerConfig,
) -> torch.Tensor:
    """MPPI importance weights (N,) summing to 1: exp(-(score - min score)) with
    score_n = (cost_n - min_cost) / (temperature * spread) + control_cost_weight * u^T Sigma^-1 eps_n,
    spread the std of the finite costs (so temperature is dimensionless), u = mean (H, A),
    eps_n = samples[n] - u, Sigma = diag(std^2); non-finite costs weigh 0. As ami::inverse_cost_scale
    and SamplingPlanner::mppi_update in csrc/planner.cpp."""
    finite = torch.isfinite(cost)
    count = finite.sum()
    wide = torch.where(finite, cost, 0.0).double()
    spread = ((torch.where(finite, wide - wide.sum() / count, 0.0) ** 2).sum() / count).sqrt()
    inv_scale = torch.where(spread > 0, 1.0 / (config.temperature * spread), 0.0)
    inv_scale = inv_scale.clamp_max(float(np.finfo(np.float32).max)).float()
    inv_var = torch.where(std > 0, 1.0 / (std * std), 0.0)
    control = (mean * (samples - mean) * inv_var).sum((1, 2))
    score = torch.where(finite, (cost - min_cost) * inv_scale + config.control_cost_weight * control, float("inf"))
    weights = torch.where(finite, torch.exp(-(score - score.min())), 0.0).double()
    return (weights / weights.sum()).float()


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
