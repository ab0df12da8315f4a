"""CEMPlanner and MPPIPlanner: receding-horizon sampling planners over a latent world model.

    planner = CEMPlanner(MLPDynamics.from_module(predictor), PlannerConfig(), backend="auto")
    result = planner.plan(z0, z_goal)   # result.actions (H, A), result.cost, result.elapsed_s

Each plan() warm-starts from the previous plan shifted by the model steps executed since (`advance`,
one by default) and draws its noise from the Philox stream (config.seed, plan_index), plan_index
counting plan() calls since reset(); pass noise= to inject the exact noise (iterations, samples, H,
A) instead.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ami_robot.errors import BackendUnavailableError, PlanningError
from ami_robot.planning import rng
from ami_robot.planning.backends import BackendChoice, BackendName, auto_backend, resolve_backend
from ami_robot.planning.backends.base import Backend, PlanArray
from ami_robot.planning.backends.cuda import CudaBackend, is_cuda_array
from ami_robot.planning.config import PlannerConfig
from ami_robot.planning.dynamics import MLPDynamics, ensemble_dynamics, runs_natively
from ami_robot.world_model.critic import Critic
from ami_robot.world_model.ensemble import PredictorEnsemble

__all__ = ["CEMPlanner", "MPPIPlanner", "PlanResult"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanResult:
    """actions (H, A): the plan (first row = the action to apply now); cost: its cost; elapsed_s:
    wall time of plan(); std (H, A): the sampling std after the last iteration; best_actions/best_cost:
    best sample seen; plan_index: which plan() since reset() made it; std_history (iterations, H, A):
    the std each iteration sampled with. The arrays are float32 numpy, or torch CUDA tensors after a
    plan on CUDA arrays."""

    actions: PlanArray
    cost: float
    elapsed_s: float
    std: PlanArray
    best_actions: PlanArray
    best_cost: float
    backend: str
    plan_index: int
    std_history: PlanArray


def _as_array(x: Any, name: str) -> np.ndarray:
    """float32 numpy copy of an array-like or tensor, rejecting non-float dtypes and NaN/Inf.
    Tensors must be dense and hold data (not meta); bfloat16 is widened to float32 (exact)."""
    if isinstance(x, torch.Tensor):
        if not (x.is_floating_point()):
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
        if x.is_meta:
            raise TypeError(f"{name}: a meta tensor holds no values")
        if x.layout != torch.strided:
            raise TypeError(f"{name}: expected a dense tensor, got layout {x.layout}")
        x = x.detach().cpu()
        x = (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def _check_finite_weights(dynamics: Any) -> None:
    """Raise PlanningError naming the first predictor tensor that holds NaN or Inf (every backend
    alike: the native ones would refuse it, the torch one would plan with NaN costs)."""
    if isinstance(dynamics, nn.Module):
        tensors = ((name, t.detach()) for name, t in (*dynamics.named_parameters(), *dynamics.named_buffers()))
        for name, tensor in tensors:
            if tensor.is_floating_point() and not tensor.is_meta and not bool(torch.isfinite(tensor).all()):
                raise PlanningError(f"predictor weights: tensor {name!r} contains NaN or Inf")
    elif isinstance(dynamics, MLPDynamics):
        for name, array in dynamics.state_dict().items():
            if not np.isfinite(array).all():
                raise PlanningError(f"predictor weights: tensor {name!r} contains NaN or Inf")


class _SamplingPlanner:
    """The planner's state machine around a stateless backend: it validates the inputs, owns the warm
    start (the previous plan, shifted) and the plan counter, and draws colored noise; the backend
    runs one plan from (init_mean, init_std, noise, plan_index)."""

    method = "cem"

    def __init__(
        self,
        dynamics: MLPDynamics | nn.Module,
        config: PlannerConfig | None = None,
        backend: BackendChoice = "auto",
        *,
        action_dim: int | None = None,
        history: int | None = None,
        device: str | None = None,
        threads: int = 0,
        torch_variant: str = "eager",
        critic: Critic | None = None,
    ) -> None:
        """dynamics: an MLPDynamics (every backend), or any torch.nn.Module predictor or a
        PredictorEnsemble (backend 'torch', which 'auto' picks for modules the C++ core does not
        run). An MLPPredictor module is exported for the native backends, and so is an ensemble of
        them for `cpu` and `reference` (which 'auto' picks for it; `cuda` runs no ensemble yet).
        action_dim: needed only for a generic module without a `.config`; its history length is
        then `history`, or else taken from z0 (history, D) at each plan().
        critic: the model's trained critic (`WorldModel.critic`), needed when config.cost weighs it;
        every backend runs it.
        Raises ValueError for an unknown backend name, BackendUnavailableError for a backend this
        build or machine cannot run."""
        self.config = config or PlannerConfig()
        if backend == "auto" and isinstance(dynamics, nn.Module):
            backend = auto_backend(runs_natively(dynamics), isinstance(dynamics, PredictorEnsemble))
        if self.config.cost.uses_critic and critic is None:
            raise ValueError("cost.critic_weight / critic_running_weight > 0 needs critic= (a model with a critic)")
        if self.config.cost.uses_ensemble and not isinstance(dynamics, PredictorEnsemble):
            raise ValueError(
                "cost.disagreement_weight / disagreement_running_weight > 0 needs a PredictorEnsemble "
                "(a model with an ensemble)"
            )
        self.critic = critic
        name = resolve_backend(backend)
        model: nn.Module | MLPDynamics | tuple[MLPDynamics, ...]  # a module for torch, else exported
        _check_finite_weights(dynamics)
        if isinstance(dynamics, nn.Module):
            cfg = getattr(dynamics, "config", None)
            action_dim = action_dim or getattr(cfg, "action_dim", None)
            history = history or getattr(cfg, "history", None)
            self.latent_dim: int | None = getattr(cfg, "latent_dim", None)
            if name == "torch":
                model = dynamics
            elif isinstance(dynamics, PredictorEnsemble):
                model = ensemble_dynamics(dynamics)  # TypeError for members other than MLPs
            else:
                model = MLPDynamics.from_module(dynamics)  # TypeError for non-MLPs
        elif isinstance(dynamics, MLPDynamics):
            action_dim, history, self.latent_dim = dynamics.action_dim, dynamics.history, dynamics.latent_dim
            model = dynamics.to_module() if name == "torch" else dynamics
        else:
            raise TypeError(f"dynamics must be an MLPDynamics or a torch.nn.Module, got {type(dynamics).__name__}")
        if action_dim is None:
            raise ValueError("action_dim is required for a predictor module without a config")
        self.action_dim = int(action_dim)
        self.history: int | None = None if history is None else int(history)
        self.limits = self.config.action_limits(self.action_dim)
        self.backend: Backend = self._make_backend(name, model, device, threads, torch_variant)
        self._init_std = np.full((self.config.horizon, self.action_dim), self.config.init_std, dtype=np.float32)
        self.reset()

    def _make_backend(
        self,
        name: BackendName,
        model: nn.Module | MLPDynamics | tuple[MLPDynamics, ...],
        device: str | None,
        threads: int,
        torch_variant: str,
    ) -> Backend:
        if isinstance(model, nn.Module):
            from ami_robot.planning.backends.torch_backend import TorchBackend

            return TorchBackend(
                model,
                self.config,
                self.limits,
                self.method,
                device=device or "cpu",
                variant=torch_variant,
                critic=self.critic,
            )
        if name == "cuda":
            if isinstance(model, tuple):
                raise BackendUnavailableError(
                    "backend 'cuda' does not run a predictor ensemble yet; use 'cpu' or 'torch'"
                )
            return CudaBackend(model, self.config, self.limits, self.method, critic=self.critic)
        from ami_robot.planning.backends.native import NativeBackend

        assert name != "torch"
        return NativeBackend(name, model, self.config, self.limits, self.method, threads=threads, critic=self.critic)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def reset(self) -> None:
        """Forget the warm start and restart the noise stream."""
        self.plan_index = 0
        self._previous_plan: PlanArray | None = None

    def _initial_mean(self, advance: int = 1) -> PlanArray:
        """(H, A): the previous plan shifted by `advance` steps (its last step repeated), where that
        plan was made (host, or device after a plan on CUDA arrays); zeros without warm start."""
        H = self.config.horizon
        if not 1 <= advance <= H:
            raise ValueError(f"advance: model steps executed since the last plan must be in [1, {H}], got {advance}")
        if not self.config.warm_start or self._previous_plan is None:
            return np.zeros((H, self.action_dim), dtype=np.float32)
        return self._previous_plan[[min(step + advance, H - 1) for step in range(H)]]

    def initial_mean(self, advance: int = 1) -> np.ndarray:
        """(H, A): the mean the next plan() starts from, on the host (see `_initial_mean`)."""
        mean = self._initial_mean(advance)
        return mean.cpu().numpy() if isinstance(mean, torch.Tensor) else mean

    def sample_noise(self, plan_index: int) -> np.ndarray:
        """The noise (iterations, samples, H, A) that call number plan_index draws (colored when
        config.noise_beta > 0)."""
        c = self.config
        return rng.planner_noise(c.seed, plan_index, c.iterations, c.samples, c.horizon, self.action_dim, c.noise_beta)

    def _noise(self, noise: Any) -> Any:
        """The noise this plan uses: the given noise, else the colored Philox noise when
        config.noise_beta > 0, else None (the backend draws the white Philox noise itself)."""
        if noise is None and self.config.noise_beta > 0:
            return self.sample_noise(self.plan_index)
        return noise

    def _validate(
        self, z0: Any, z_goal: Any, previous_action: Any, noise: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
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

    def _check_trustworthy(self, cost: float, actions: PlanArray, z0: Any, z_goal: Any) -> None:
        """Raise PlanningError when finite inputs gave a non-finite cost or plan (float32 overflow)."""
        finite = torch.isfinite(actions).all() if isinstance(actions, torch.Tensor) else np.isfinite(actions).all()
        finite_actions = bool(finite)
        if math.isfinite(cost) and finite_actions:
            return
        largest = max(_largest_magnitude(z0), _largest_magnitude(z_goal))
        raise PlanningError(
            f"{self.method} plan on backend {self.backend_name}: cost {cost}"
            f"{'' if finite_actions else ', actions with NaN or Inf'} from finite inputs (largest |latent| "
            f"{largest:.3g}): the predictor's weights, the latents or the cost weights overflow float32"
        )

    def plan(
        self, z0: Any, z_goal: Any, *, previous_action: Any = None, noise: Any = None, advance: int = 1
    ) -> PlanResult:
        """Plan from z0 (D,) or (history, D) to z_goal (D,); numpy arrays or torch tensors.
        previous_action (A,): the action applied last (rate limit and smoothness start from it).
        advance: model steps of the previous plan executed since it was made (1 to horizon); the
        warm start skips them.
        noise (iterations, samples, H, A): standard normal noise to use instead of the Philox stream.
        With backend 'cuda' and z0 a CUDA array, the plan stays on the device and the result's
        arrays are torch CUDA tensors (see `CudaBackend.plan_device`)."""
        start = time.perf_counter()
        index = self.plan_index
        if isinstance(self.backend, CudaBackend) and is_cuda_array(z0):  # the backend checks device arrays
            raw = self.backend.plan_device(
                z0, z_goal, previous_action, self._initial_mean(advance), self._init_std, self._noise(noise), index
            )
        else:
            z0, z_goal, previous_action, noise = self._validate(z0, z_goal, previous_action, noise)
            raw = self.backend.plan(
                z0, z_goal, previous_action, self.initial_mean(advance), self._init_std, self._noise(noise), index
            )
        self._check_trustworthy(raw.cost, raw.mean, z0, z_goal)
        self._previous_plan = raw.mean
        result = PlanResult(
            raw.mean,
            raw.cost,
            time.perf_counter() - start,
            raw.std,
            raw.best_actions,
            raw.best_cost,
            self.backend.name,
            index,
            raw.std_history,
        )
        self.plan_index += 1
        return result


def _largest_magnitude(x: Any) -> float:
    if isinstance(x, torch.Tensor):
        return float(x.detach().abs().max()) if x.numel() else 0.0
    array = np.asarray(x, dtype=np.float64)
    return float(np.abs(array).max()) if array.size else 0.0


class CEMPlanner(_SamplingPlanner):
    """Cross-entropy method (iCEM with noise_beta > 0 and keep_elites_fraction > 0): refit mean and
    std to the top-`elites` samples each iteration."""

    method = "cem"


class MPPIPlanner(_SamplingPlanner):
    """MPPI (Williams et al. 2017): each iteration moves the mean to the importance-weighted mean of
    all samples, weights exp(-(cost - min cost) / (temperature * cost spread) - control_cost_weight *
    u^T Sigma^-1 eps), with a scheduled exploration std (init_std, times std_decay per iteration,
    default 0.8), never refit; `elites` is not used. See `backends.torch_backend.mppi_weights`."""

    method = "mppi"
