"""What every ami_sim environment offers beyond gymnasium's API, and the helpers they share.

Every environment:
- observes uint8 RGB pixels (H, W, 3), `image_size` x `image_size` (64 by default), without the goal
  drawn in (the goal comes as its own image, `info["goal_observation"]`);
- takes float32 actions in [-1, 1]^A (units per environment, in its docstring);
- accepts `reset(seed=..., options={"start_state": s, "goal_state": g})`, either key optional;
- puts `state` (the true low-dimensional state), `goal_state`, `goal_observation` and `success`
  in `info` at every reset and step;
- offers `render_state(state) -> uint8 image`, `is_success(state, goal_state) -> bool`,
  `goal_distance(state, goal_state) -> float` (the quantity the success test thresholds),
  `success_threshold`, and `trajectory_xy(states) -> (T, 2)` / `map_extent` for plots.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np


class GoalEnv(Protocol):
    """The goal-conditioned interface of an ami_sim environment (on `env.unwrapped`)."""

    state_dim: int
    success_threshold: float
    map_extent: tuple[float, float, float, float]

    def render_state(self, state: np.ndarray) -> np.ndarray: ...

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool: ...

    def goal_distance(self, state: np.ndarray, goal_state: np.ndarray) -> float: ...

    def trajectory_xy(self, states: np.ndarray) -> np.ndarray: ...


def goal_info(state: np.ndarray, goal_state: np.ndarray, goal_observation: np.ndarray, success: bool) -> dict[str, Any]:
    """The `info` every environment returns: true state, goal state and image, success (twice: gymnasium's
    `is_success` convention and ours)."""
    return {
        "state": state.astype(np.float32),
        "goal_state": goal_state.astype(np.float32),
        "goal_observation": goal_observation.copy(),
        "success": success,
        "is_success": success,
    }


def option_state(options: Mapping[str, Any] | None, key: str, state_dim: int) -> np.ndarray | None:
    """`options[key]` as a float64 (state_dim,) array, or None when absent; raises on a bad shape."""
    if not options or options.get(key) is None:
        return None
    state = np.asarray(options[key], dtype=np.float64).reshape(-1)
    if state.shape != (state_dim,) or not np.all(np.isfinite(state)):
        raise ValueError(f"options[{key!r}] must be {state_dim} finite numbers, got {options[key]!r}")
    return state


def check_image_size(image_size: int) -> int:
    if not isinstance(image_size, int) or not 16 <= image_size <= 1024:
        raise ValueError(f"image_size must be an integer in [16, 1024], got {image_size!r}")
    return image_size


def wrap_angle(angle: np.ndarray | float) -> np.ndarray | float:
    """Angle(s) wrapped to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi
