"""The interface every planner backend implements."""

from __future__ import annotations

from typing import NamedTuple, Protocol, TypeAlias

import numpy as np
import torch

PlanArray: TypeAlias = np.ndarray | torch.Tensor
"""A plan's array: float32 numpy on the host; a torch CUDA tensor from a plan on device memory."""


class RawPlan(NamedTuple):
    """mean (H, A): the projected plan; std (H, A): the std after the last iteration; cost of mean;
    best sample (H, A) and its cost; std_history (iterations, H, A): the std each iteration sampled
    with. Host numpy arrays, except from `CudaBackend.plan_device` (torch CUDA tensors)."""

    mean: PlanArray
    std: PlanArray
    cost: float
    best_actions: PlanArray
    best_cost: float
    std_history: PlanArray


class Backend(Protocol):
    """One sampling-planner implementation: a pure function of its arguments (the planner owns the
    warm start and the plan counter). Arrays are float32 numpy, already validated: z0 (k, D),
    goal (D,), previous_action (A,) or None, init_mean/init_std (H, A), noise
    (iterations, samples, H, A) standard normal, or None for the Philox stream (seed, plan_index)."""

    name: str

    def plan(
        self,
        z0: np.ndarray,
        goal: np.ndarray,
        previous_action: np.ndarray | None,
        init_mean: np.ndarray,
        init_std: np.ndarray,
        noise: np.ndarray | None,
        plan_index: int,
    ) -> RawPlan: ...

    def rollout_cost(
        self, actions: np.ndarray, z0: np.ndarray, goal: np.ndarray, previous_action: np.ndarray | None = None
    ) -> np.ndarray:
        """Cost (n,) of n already-projected sequences (n, H, A)."""
        ...

    def predict(self, actions: np.ndarray, z0: np.ndarray) -> np.ndarray:
        """Predicted latents (n, H, D) of sequences (n, H, A)."""
        ...
