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


def check_expert_noise_model(noise: float, repeat_probability: float, max_action: float | None) -> None:
    """Raise ValueError for settings `ExpertPolicy` cannot follow: noise < 0, a repeat probability
    outside [0, 1], a pace (max_action) <= 0."""
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if not 0 <= repeat_probability <= 1:
        raise ValueError(f"repeat_probability must be in [0, 1], got {repeat_probability}")
    if max_action is not None and max_action <= 0:
        raise ValueError(f"max_action must be > 0, got {max_action}")


class ExpertPolicy:
    """A scripted controller plus the noise model of the published data collection: the controller's
    action scaled down to norm `max_action` when longer (the expert's pace; None: full pace), Gaussian
    action noise of std `noise` (action units), then, with probability `repeat_probability`, the
    previous action again instead; clipped to the action box."""

    def __init__(
        self,
        controller: Controller,
        action_space: gym.spaces.Box,
        noise: float = 0.0,
        seed: int | None = None,
        repeat_probability: float = 0.0,
        max_action: float | None = None,
    ):
        check_expert_noise_model(noise, repeat_probability, max_action)
        self.controller = controller
        self.action_space = action_space
        self.noise = noise
        self.repeat_probability = repeat_probability
        self.max_action = max_action
        self.rng = np.random.default_rng(seed)
        self._last_action: np.ndarray | None = None

    def reset(self, info: Mapping[str, Any]) -> None:
        self.controller.reset()
        self._last_action = None

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        action = np.asarray(self.controller.action(info["state"], info["goal_state"]), dtype=np.float64)
        if self.max_action is not None:
            norm = float(np.linalg.norm(action))
            if norm > self.max_action:
                action = action * (self.max_action / norm)
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, size=action.shape)
        if self.repeat_probability > 0 and self._last_action is not None:
            if self.rng.random() < self.repeat_probability:
                action = self._last_action
        action = np.clip(action, self.action_space.low, self.action_space.high).astype(np.float32)
        self._last_action = action
        return action


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
