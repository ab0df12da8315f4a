"""Policies that drive the simulated robots: the protocol every policy or planner follows, the
scripted experts with adjustable noise, and a uniform random policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import gymnasium as gym
import numpy as np


class Policy(Protocol):
    """Anything that picks actions: scripted expert, random, or a world-model planner.

    `reset(info)` is called after each `env.reset` with its info; `act(observation, info)` gets the
    current observation (H, W, 3) uint8 and the info of the last reset/step, which holds
    `goal_observation` (H, W, 3) uint8, and also `state` / `goal_state` (privileged: only scripted
    experts may read them), and returns an action (A,) float32 in the env's action space.
    """

    def reset(self, info: Mapping[str, Any]) -> None: ...

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> np.ndarray: ...


class Controller(Protocol):
    """A scripted expert: an action from the true state and goal state; `reset()` clears its memory."""

    def reset(self) -> None: ...

    def action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray: ...


class ExpertPolicy:
    """A scripted controller plus Gaussian action noise of std `noise` (in action units), clipped to the box."""

    def __init__(
        self, controller: Controller, action_space: gym.spaces.Box, noise: float = 0.0, seed: int | None = None
    ):
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.controller = controller
        self.action_space = action_space
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def reset(self, info: Mapping[str, Any]) -> None:
        self.controller.reset()

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        action = np.asarray(self.controller.action(info["state"], info["goal_state"]), dtype=np.float64)
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, size=action.shape)
        return np.clip(action, self.action_space.low, self.action_space.high).astype(np.float32)


class RandomPolicy:
    """Actions drawn uniformly from the action box, independently at each step."""

    def __init__(self, action_space: gym.spaces.Box, seed: int | None = None):
        self.action_space = action_space
        self.rng = np.random.default_rng(seed)

    def reset(self, info: Mapping[str, Any]) -> None:
        pass

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        low, high = self.action_space.low, self.action_space.high
        return self.rng.uniform(low, high).astype(np.float32)
