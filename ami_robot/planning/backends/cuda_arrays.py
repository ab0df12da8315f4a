"""Plans on device memory with the CUDA backend: torch CUDA tensors (or any object with
`__cuda_array_interface__`, e.g. CuPy) go in and torch CUDA tensors come out, with no trip through
the host and no libtorch in the extension (the core receives raw device pointers).

    result = planner.plan(z0_cuda, goal_cuda)   # planner built with backend="cuda"
    result.actions                              # torch.Tensor (H, A) on the same device
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch


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
        contiguous, step = [], 4
        for size in reversed(shape):
            contiguous.insert(0, step)
            step *= size
        if tuple(strides) != tuple(contiguous):
            raise ValueError(f"{name}: must be C-contiguous (strides {tuple(strides)})")
    return int(iface["data"][0])


def plan_cuda_arrays(planner: Any, z0: Any, z_goal: Any, previous_action: Any = None, noise: Any = None):
    """One plan() of a backend='cuda' CEMPlanner / MPPIPlanner with z0 a CUDA array. Same semantics
    as the host path (warm start, plan_index, Philox noise or injected noise); returns a PlanResult
    whose arrays are torch CUDA tensors. Inputs are read on the current torch stream of their
    device; unlike the host path they are not scanned for NaN (that would synchronise)."""
    from ami_robot.planning.api import PlanResult

    start = time.perf_counter()
    core = planner.backend.core_planner
    device = core.device
    dev = torch.device("cuda", device)
    c = planner.config
    H, A, D, k = c.horizon, planner.action_dim, planner.latent_dim, planner.history

    def on_device(x: Any) -> Any:  # host inputs beside CUDA ones are uploaded (small)
        if x is None or is_cuda_array(x):
            return x
        return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=dev)

    z_goal, previous_action, noise = on_device(z_goal), on_device(previous_action), on_device(noise)
    z0_ptr = cuda_pointer(z0, "z0", ((k, D),) + (((D,),) if k == 1 else ()), device)
    goal_ptr = cuda_pointer(z_goal, "z_goal", ((D,),), device)
    prev_ptr = 0 if previous_action is None else cuda_pointer(previous_action, "previous_action", ((A,),), device)
    if noise is None and c.noise_beta > 0:
        noise = torch.as_tensor(planner.sample_noise(planner.plan_index), dtype=torch.float32, device=dev).contiguous()
    noise_ptr = 0 if noise is None else cuda_pointer(noise, "noise", ((c.iterations, c.samples, H, A),), device)
    previous = planner._previous_plan
    if c.warm_start and previous is not None:
        previous = torch.as_tensor(previous, dtype=torch.float32, device=dev)
        init_mean = torch.cat([previous[1:], previous[-1:]]).contiguous()
    else:
        init_mean = torch.zeros((H, A), dtype=torch.float32, device=dev)
    init_std = torch.full((H, A), c.init_std, dtype=torch.float32, device=dev)
    out = torch.empty(3 * H * A + 2, dtype=torch.float32, device=dev)
    stream = torch.cuda.current_stream(dev).cuda_stream
    core.plan_device(
        z0_ptr,
        goal_ptr,
        prev_ptr,
        init_mean.data_ptr(),
        init_std.data_ptr(),
        noise_ptr,
        planner.plan_index,
        out.data_ptr(),
        stream,
    )
    mean, std, best = (out[i * H * A : (i + 1) * H * A].view(H, A) for i in range(3))
    costs = out[3 * H * A :].cpu().numpy().astype(np.float64)  # the two scalars; `out` is already complete
    planner._previous_plan = mean
    result = PlanResult(
        mean,
        float(costs[0]),
        time.perf_counter() - start,
        std,
        best,
        float(costs[1]),
        planner.backend.name,
        planner.plan_index,
    )
    planner.plan_index += 1
    return result
