"""CEMPlanner and MPPIPlanner: receding-horizon sampling planners over a latent world model.

    planner = CEMPlanner(MLPDynamics.from_module(predictor), PlannerConfig(), backend="auto")
    result = planner.plan(z0, z_goal)   # result.actions (H, A), result.cost, result.elapsed_s

Each plan() warm-starts from the previous plan shifted by one step and draws its noise from the
Philox stream (config.seed, plan_index), plan_index counting plan() calls since reset(); pass
noise= to inject the exact noise (iterations, samples, H, A) instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ami_robot.planning import rng
from ami_robot.planning.backends.base import Backend
from ami_robot.planning.backends.cuda_arrays import is_cuda_array, plan_cuda_arrays
from ami_robot.planning.config import PlannerConfig
from ami_robot.planning.dynamics import MLPDynamics
from ami_robot.world_model.mlp_predictor import MLPPredictor

BACKENDS = ("auto", "cuda", "cpu", "torch", "reference")


def _core_module() -> Any | None:
    try:
        from ami_robot import _core
    except ImportError:
        return None
    return _core


def available_backends() -> list[str]:
    """Backends usable here, in the order backend='auto' tries them (cuda, cpu, torch)."""
    core = _core_module()
    names = []
    if core is not None and hasattr(core, "cuda_planner") and getattr(core, "cuda_device_count", lambda: 0)() > 0:
        names.append("cuda")
    if core is not None:
        names.append("cpu")
    names.append("torch")
    return names


@dataclass(frozen=True)
class PlanResult:
    """actions (H, A): the plan (first row = the action to apply now); cost: its cost; elapsed_s:
    wall time of plan(); std (H, A): final sampling std; best_actions/best_cost: best sample seen."""

    actions: np.ndarray
    cost: float
    elapsed_s: float
    std: np.ndarray
    best_actions: np.ndarray
    best_cost: float
    backend: str
    plan_index: int


def _as_array(x: Any, name: str) -> np.ndarray:
    """float32 numpy copy of an array-like or tensor, rejecting non-float dtypes and NaN/Inf."""
    if isinstance(x, torch.Tensor):
        if not (x.is_floating_point()):
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


class _SamplingPlanner:
    method = "cem"

    def __init__(
        self,
        dynamics: MLPDynamics | nn.Module,
        config: PlannerConfig | None = None,
        backend: str = "auto",
        *,
        action_dim: int | None = None,
        history: int | None = None,
        device: str | None = None,
        threads: int = 0,
        torch_variant: str = "eager",
    ) -> None:
        """dynamics: an MLPDynamics (every backend), or any torch.nn.Module predictor
        (backend 'torch', which 'auto' picks for modules other than an MLPPredictor; an
        MLPPredictor module is exported for the native backends).
        action_dim: needed only for a generic module without a `.config`; its history length is
        then `history`, or else taken from z0 (history, D) at each plan()."""
        self.config = config or PlannerConfig()
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
        if isinstance(dynamics, nn.Module):
            module = dynamics
            cfg = getattr(module, "config", None)
            action_dim = action_dim or getattr(cfg, "action_dim", None)
            history = history or getattr(cfg, "history", None)
            self.latent_dim = getattr(cfg, "latent_dim", None)
            if backend == "auto" and not isinstance(module, MLPPredictor):
                backend = "torch"  # only the torch backend runs predictors other than the MLP
            if backend != "torch":
                dynamics = MLPDynamics.from_module(module)  # raises TypeError for non-MLP modules
        elif isinstance(dynamics, MLPDynamics):
            module = None
            action_dim, history, self.latent_dim = dynamics.action_dim, dynamics.history, dynamics.latent_dim
        else:
            raise TypeError(f"dynamics must be an MLPDynamics or a torch.nn.Module, got {type(dynamics).__name__}")
        if action_dim is None:
            raise ValueError("action_dim is required for a predictor module without a config")
        self.action_dim = int(action_dim)
        self.history: int | None = None if history is None else int(history)
        self.limits = self.config.action_limits(self.action_dim)
        if backend == "auto":
            backend = available_backends()[0]
        elif backend == "cuda" and "cuda" not in available_backends():
            core = _core_module()
            why = (
                "ami_robot._core was built without CUDA"
                if core is None or not hasattr(core, "cuda_planner")
                else "cuda_device_count() == 0"
            )
            raise ValueError(f"backend 'cuda': no CUDA GPU: {why}")
        elif backend not in available_backends() and backend != "reference":
            raise ValueError(f"backend {backend!r} is not available here (available: {available_backends()})")
        self.backend: Backend = self._make_backend(backend, dynamics, module, device, threads, torch_variant)
        self.reset()

    def _make_backend(
        self, name: str, dynamics: Any, module: nn.Module | None, device: str | None, threads: int, torch_variant: str
    ) -> Backend:
        if name == "torch":
            from ami_robot.planning.backends.torch_backend import TorchBackend

            predictor = module if module is not None else dynamics.to_module()
            return TorchBackend(
                predictor, self.config, self.limits, self.method, device=device or "cpu", variant=torch_variant
            )
        from ami_robot.planning.backends.native import NativeBackend

        if _core_module() is None:
            raise ValueError(f"backend {name!r}: the compiled core ami_robot._core is not importable")
        return NativeBackend(name, dynamics, self.config, self.limits, self.method, threads=threads)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def reset(self) -> None:
        """Forget the warm start and restart the noise stream."""
        self.plan_index = 0
        self._previous_plan: np.ndarray | None = None

    def initial_mean(self) -> np.ndarray:
        """(H, A): the previous plan shifted by one step (last step repeated), or zeros."""
        H, A = self.config.horizon, self.action_dim
        if self.config.warm_start and self._previous_plan is not None:
            prev = self._previous_plan
            if isinstance(prev, torch.Tensor):  # left by a plan on CUDA arrays
                prev = prev.cpu().numpy()
            return np.ascontiguousarray(np.concatenate([prev[1:], prev[-1:]], axis=0))
        return np.zeros((H, A), dtype=np.float32)

    def sample_noise(self, plan_index: int) -> np.ndarray:
        """The noise (iterations, samples, H, A) that call number plan_index draws (colored when
        config.noise_beta > 0)."""
        c = self.config
        return rng.planner_noise(c.seed, plan_index, c.iterations, c.samples, c.horizon, self.action_dim, c.noise_beta)

    def _validate(self, z0: Any, z_goal: Any, previous_action: Any, noise: Any):
        z0 = _as_array(z0, "z0")
        goal = _as_array(z_goal, "z_goal")
        D = self.latent_dim if self.latent_dim is not None else goal.shape[-1]
        given_shape = z0.shape
        if z0.ndim == 1:
            z0 = z0[None]
        history = self.history or (z0.shape[0] if z0.ndim == 2 else 1)
        if z0.shape != (history, D):
            want = f"({D},) or ({history}, {D})" if history == 1 else f"({history}, {D})"
            raise ValueError(f"z0: expected shape {want}, got {given_shape}")
        if goal.shape != (D,):
            raise ValueError(f"z_goal: expected shape ({D},), got {goal.shape}")
        prev = None
        if previous_action is not None:
            prev = _as_array(previous_action, "previous_action")
            if prev.shape != (self.action_dim,):
                raise ValueError(f"previous_action: expected shape ({self.action_dim},), got {prev.shape}")
        if noise is not None:
            c = self.config
            noise = _as_array(noise, "noise")
            shape = (c.iterations, c.samples, c.horizon, self.action_dim)
            if noise.shape != shape:
                raise ValueError(f"noise: expected shape {shape}, got {noise.shape}")
        return z0, goal, prev, noise

    def plan(self, z0: Any, z_goal: Any, *, previous_action: Any = None, noise: Any = None) -> PlanResult:
        """Plan from z0 (D,) or (history, D) to z_goal (D,); numpy arrays or torch tensors.
        previous_action (A,): the action applied last (rate limit and smoothness start from it).
        With backend 'cuda' and torch CUDA tensors as input, the plan stays on the device and the
        result's arrays are torch CUDA tensors (see backends.cuda_arrays)."""
        if self.backend.name == "cuda" and is_cuda_array(z0):
            return plan_cuda_arrays(self, z0, z_goal, previous_action, noise)
        start = time.perf_counter()
        z0, goal, prev, noise = self._validate(z0, z_goal, previous_action, noise)
        if noise is None and self.config.noise_beta > 0:
            noise = self.sample_noise(self.plan_index)
        init_std = np.full((self.config.horizon, self.action_dim), self.config.init_std, dtype=np.float32)
        raw = self.backend.plan(z0, goal, prev, self.initial_mean(), init_std, noise, self.plan_index)
        self._previous_plan = raw.mean
        result = PlanResult(
            raw.mean,
            raw.cost,
            time.perf_counter() - start,
            raw.std,
            raw.best_actions,
            raw.best_cost,
            self.backend.name,
            self.plan_index,
        )
        self.plan_index += 1
        return result


class CEMPlanner(_SamplingPlanner):
    """Cross-entropy method (iCEM with noise_beta > 0 and keep_elites_fraction > 0): refit mean and
    std to the top-`elites` samples each iteration."""

    method = "cem"


class MPPIPlanner(_SamplingPlanner):
    """MPPI: mean and std refit with weights exp(-(cost - min cost) / temperature) over the
    top-`elites` samples (elites = samples gives classic MPPI over all samples)."""

    method = "mppi"
