"""Hard action limits that hold by construction: every action sequence is projected onto them.

ROS-free; works on numpy arrays and torch tensors alike. The C++/CUDA planner backends implement
the same projection (csrc/planner.cpp: project_sequence) with the same order of operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _vector(value: float | np.ndarray | list[float] | tuple[float, ...], dim: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0:
        arr = np.full(dim, float(arr), dtype=np.float32)
    if arr.shape != (dim,):
        raise ValueError(f"{name}: expected a scalar or shape ({dim},), got shape {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class ActionLimits:
    """Per-dimension bounds low <= a <= high and an optional rate limit |a_t - a_{t-1}| <= max_rate.

    low, high, max_rate: float32 arrays of shape (A,); max_rate None means no rate limit.
    """

    low: np.ndarray
    high: np.ndarray
    max_rate: np.ndarray | None = None

    def __post_init__(self) -> None:
        low = np.asarray(self.low, dtype=np.float32).reshape(-1)
        high = _vector(self.high, low.shape[0], "high")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if np.isnan(low).any() or np.isnan(high).any():
            raise ValueError("ActionLimits: low/high contain NaN")
        bad = np.nonzero(low > high)[0]
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"ActionLimits: low > high at index {i} ({low[i]} > {high[i]})")
        if self.max_rate is not None:
            rate = _vector(self.max_rate, low.shape[0], "max_rate")
            if np.isnan(rate).any() or (rate < 0).any():
                raise ValueError("ActionLimits: max_rate must be >= 0")
            object.__setattr__(self, "max_rate", rate)

    @classmethod
    def create(
        cls,
        action_dim: int,
        low: float | tuple[float, ...] | np.ndarray,
        high: float | tuple[float, ...] | np.ndarray,
        max_rate: float | tuple[float, ...] | np.ndarray | None = None,
    ) -> ActionLimits:
        """Limits for `action_dim` actions from scalars (broadcast) or per-dimension values."""
        return cls(
            _vector(low, action_dim, "low"),
            _vector(high, action_dim, "high"),
            None if max_rate is None else _vector(max_rate, action_dim, "max_rate"),
        )

    @property
    def action_dim(self) -> int:
        return int(self.low.shape[0])

    def project(self, actions: ArrayT, previous_action: ArrayT | np.ndarray | None = None) -> ArrayT:
        """Clip actions (..., H, A) to [low, high] and, with a rate limit, each a_t to
        a_{t-1} +- max_rate, where a_{-1} is `previous_action` (A,) clipped to the bounds.
        Returns a new array or tensor of the same type, dtype and device."""
        if actions.shape[-1] != self.action_dim:
            raise ValueError(f"actions: last dimension must be {self.action_dim}, got shape {tuple(actions.shape)}")
        if isinstance(actions, torch.Tensor):
            low = torch.as_tensor(self.low, dtype=actions.dtype, device=actions.device)
            high = torch.as_tensor(self.high, dtype=actions.dtype, device=actions.device)
            out = torch.minimum(torch.maximum(actions, low), high)
            if self.max_rate is None:
                return out
            rate = torch.as_tensor(self.max_rate, dtype=actions.dtype, device=actions.device)
            prev = None
            if previous_action is not None:
                prev = torch.as_tensor(previous_action, dtype=actions.dtype, device=actions.device)
            steps = list(out.unbind(-2))
            for t in range(len(steps)):
                p = steps[t - 1] if t > 0 else prev
                if p is None:
                    continue
                p = torch.minimum(torch.maximum(p, low), high)
                lo, hi = torch.maximum(low, p - rate), torch.minimum(high, p + rate)
                steps[t] = torch.minimum(torch.maximum(steps[t], lo), hi)
            return torch.stack(steps, dim=-2)
        arr = np.asarray(actions)
        out = np.minimum(np.maximum(arr, self.low.astype(arr.dtype)), self.high.astype(arr.dtype))
        if self.max_rate is None:
            return out
        low, high, rate = (v.astype(arr.dtype) for v in (self.low, self.high, self.max_rate))
        prev = None if previous_action is None else np.asarray(previous_action, dtype=arr.dtype)
        for t in range(out.shape[-2]):
            p = out[..., t - 1, :] if t > 0 else prev
            if p is None:
                continue
            p = np.minimum(np.maximum(p, low), high)
            lo, hi = np.maximum(low, p - rate), np.minimum(high, p + rate)
            out[..., t, :] = np.minimum(np.maximum(out[..., t, :], lo), hi)
        return out
