"""The interface every planner backend implements."""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np


class RawPlan(NamedTuple):
    """mean (H, A): the projected plan; std (H, A); cost of mean; best sample (H, A) and its cost."""

    mean: np.ndarray
    std: np.ndarray
    cost: float
    best_actions: np.ndarray
    best_cost: float


class Backend(Protocol):
    """One sampling-planner implementation. Arrays are float32 numpy, already validated:
    z0 (k, D), goal (D,), previous_action (A,) or None, init_mean/init_std (H, A),
    noise (iterations, samples, H, A) standard normal, or None for the seeded Philox stream."""

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
