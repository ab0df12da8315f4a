"""The `cuda` backend: the C++ core's CUDA planner, on host arrays (`plan`) or on device memory
(`plan_device`): torch CUDA tensors (or any object with `__cuda_array_interface__`, e.g. CuPy)
go in and torch CUDA tensors come out, with no trip through the host and no libtorch in the
extension (the core receives raw device pointers).

    planner = CEMPlanner(dynamics, config, backend="cuda")
    result = planner.plan(z0_cuda, goal_cuda)   # result.actions: torch.Tensor (H, A) on the device
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ami_robot.cost.limits import ActionLimits
from ami_robot.errors import BackendUnavailableError
from ami_robot.planning.backends import cuda_unavailable_reason
from ami_robot.planning.backends.base import RawPlan
from ami_robot.planning.backends.native import CoreBackend, core_problem
from ami_robot.planning.config import PlannerConfig
from ami_robot.planning.dynamics import MLPDynamics
from ami_robot.world_model.critic import Critic


def is_cuda_array(x: Any) -> bool:
    """True for a torch CUDA tensor or an object exposing __cuda_array_interface__."""
    if isinstance(x, torch.Tensor):
        return x.is_cuda
    return hasattr(x, "__cuda_array_interface__")


def _interface(x: Any, name: str) -> dict[str, Any]:
    if isinstance(x, torch.Tensor):
        x = x.detach()
    try:
        return x.__cuda_array_interface__
    except AttributeError:
        raise TypeError(
            f"{name}: expected a CUDA array (torch CUDA tensor or __cuda_array_interface__), got {type(x).__name__}"
        ) from None


def cuda_pointer(x: Any, name: str, shapes: tuple[tuple[int, ...], ...], device: int) -> int:
    """Device pointer of a C-contiguous float32 CUDA array whose shape is one of `shapes`."""
    if isinstance(x, torch.Tensor) and x.device.index != device:
        raise ValueError(f"{name}: tensor is on {x.device}, the planner on cuda:{device}")
    iface = _interface(x, name)
    if iface["typestr"] != "<f4":
        raise TypeError(f"{name}: expected float32 (typestr '<f4'), got {iface['typestr']!r}")
    shape = tuple(int(s) for s in iface["shape"])
    if shape not in shapes:
        want = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{name}: expected shape {want}, got {shape}")
    strides = iface.get("strides")
    if strides is not None:
        contiguous: list[int] = []
        step = 4
        for size in reversed(shape):
            contiguous.insert(0, step)
            step *= size
        if tuple(strides) != tuple(contiguous):
            raise ValueError(f"{name}: must be C-contiguous (strides {tuple(strides)})")
    return int(iface["data"][0])


class CudaBackend(CoreBackend):
    """The CUDA planner of the C++ core, in config.cuda_precision, on CUDA device `device`; critic:
    the trained critic when config.cost weighs it."""

    def __init__(
        self,
        dynamics: MLPDynamics,
        config: PlannerConfig,
        limits: ActionLimits,
        method: str,
        device: int = 0,
        critic: Critic | None = None,
    ) -> None:
        why = cuda_unavailable_reason()
        if why is not None:
            raise BackendUnavailableError(f"backend 'cuda': no CUDA GPU: {why}")
        from ami_robot import _core

        core_planner = _core.cuda_planner(
            *core_problem(dynamics, config, limits, method, critic), device=device, precision=config.cuda_precision
        )
        super().__init__("cuda", core_planner)
        self.config = config
        self.action_dim, self.latent_dim, self.history = dynamics.action_dim, dynamics.latent_dim, dynamics.history
        self.device: int = core_planner.device
        self.precision: str = core_planner.precision

    def _on_device(self, x: Any) -> Any:
        """x itself when it is a CUDA array (or None), else a float32 copy on this device, queued on
        the current stream (a copy from pageable memory has read its source when it returns)."""
        if x is None or is_cuda_array(x):
            return x
        host = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return host.to(torch.device("cuda", self.device), non_blocking=True)

    def plan_device(
        self,
        z0: Any,
        goal: Any,
        previous_action: Any,
        init_mean: Any,
        init_std: Any,
        noise: Any,
        plan_index: int,
    ) -> RawPlan:
        """`plan` on device memory. z0 (k, D) (or (D,) when k = 1) is a CUDA array; the others are
        CUDA arrays, or host arrays (copied to the device). Returns mean, std and best_actions as
        torch CUDA tensors (H, A), std_history (iterations, H, A) likewise, the costs as float.

        Runs on the current torch stream of this device; unlike `plan`, the inputs are not scanned
        for NaN (that would synchronise). The one synchronisation is reading the two costs back."""
        H, A, D, k = self.config.horizon, self.action_dim, self.latent_dim, self.history
        c = self.config
        goal, previous_action, init_mean, init_std, noise = map(
            self._on_device, (goal, previous_action, init_mean, init_std, noise)
        )
        z0_shapes = ((k, D), (D,)) if k == 1 else ((k, D),)
        pointers = (
            cuda_pointer(z0, "z0", z0_shapes, self.device),
            cuda_pointer(goal, "z_goal", ((D,),), self.device),
            0 if previous_action is None else cuda_pointer(previous_action, "previous_action", ((A,),), self.device),
            cuda_pointer(init_mean, "init_mean", ((H, A),), self.device),
            cuda_pointer(init_std, "init_std", ((H, A),), self.device),
            0 if noise is None else cuda_pointer(noise, "noise", ((c.iterations, c.samples, H, A),), self.device),
        )
        dev = torch.device("cuda", self.device)
        HA = H * A
        out = torch.empty((3 + c.iterations) * HA + 2, dtype=torch.float32, device=dev)
        stream = torch.cuda.current_stream(dev).cuda_stream
        self._planner.plan_device(*pointers, plan_index, out.data_ptr(), stream)
        mean, std, best = (out[i * HA : (i + 1) * HA].view(H, A) for i in range(3))
        std_history = out[3 * HA + 2 :].view(c.iterations, H, A)
        cost, best_cost = out[3 * HA : 3 * HA + 2].cpu().tolist()  # waits for `out`
        return RawPlan(mean, std, float(cost), best, float(best_cost), std_history)
