"""A tiny procedural world for tests and smoke runs: a dot moved by velocity commands.

State (x, y) in [0, 1]^2, action (vx, vy) in [-1, 1]^2, next state = clip(state + speed * action).
Observations are S x S RGB renderings of the dot on a plain background with a fixed coloured
border, so the state is recoverable from pixels and the dynamics depend on the action.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ami_robot.data.episodes import Episode, episode_name, write_episode, write_index


def render_dot(states: np.ndarray, image_size: int = 32, radius: float = 2.5) -> np.ndarray:
    """states (N, 2) in [0, 1] -> uint8 images (N, S, S, 3)."""
    coords = (np.arange(image_size) + 0.5) / image_size
    margin = (radius + 1) / image_size
    centre = margin + np.asarray(states, np.float64) * (1 - 2 * margin)
    dy = coords[None, :, None] - centre[:, 1, None, None]
    dx = coords[None, None, :] - centre[:, 0, None, None]
    inside = np.clip(radius + 0.5 - np.sqrt(dx**2 + dy**2) * image_size, 0, 1)
    images = np.empty((len(centre), image_size, image_size, 3), np.float64)
    images[...] = (40, 40, 60)
    images[:, :, :2] = (200, 80, 40)
    images = images * (1 - inside[..., None]) + np.array([250, 230, 60]) * inside[..., None]
    return images.round().astype(np.uint8)


def dot_episode(steps: int, rng: np.random.Generator, image_size: int = 32, speed: float = 0.08) -> Episode:
    """One episode of `steps` random, temporally correlated actions."""
    states = np.empty((steps + 1, 2), np.float32)
    states[0] = rng.uniform(0.1, 0.9, size=2)
    actions = np.empty((steps, 2), np.float32)
    action = rng.uniform(-1, 1, size=2)
    for t in range(steps):
        if rng.random() < 0.3:
            action = rng.uniform(-1, 1, size=2)
        actions[t] = action
        states[t + 1] = np.clip(states[t] + speed * action, 0.0, 1.0)
    return Episode(
        observations=render_dot(states, image_size),
        actions=actions,
        states=states,
        attrs={"env": "dot", "policy": "random"},
    )


def write_dot_dataset(
    directory: str | Path, episodes: int = 8, steps: int = 40, image_size: int = 32, seed: int = 0
) -> Path:
    """Write a dot-world episode dataset to `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(episodes):
        write_episode(directory / episode_name(i), dot_episode(steps, rng, image_size))
    write_index(directory, env="dot", image_size=image_size)
    return directory
