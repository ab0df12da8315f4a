"""Ring buffers of recent latents, actions and one-step predictions.

The world model's history input comes from here, and so does the violation-of-expectation signal:
after the robot acted with a_t from z_t, the model predicted ẑ_{t+1}; when z_{t+1} is observed,

    surprise_{t+1} = ||z_{t+1} - ẑ_{t+1}||² / D

(the mean squared prediction error per latent dimension, D = latent_dim). Zero means the world
behaved exactly as predicted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def surprise(z_observed: np.ndarray, z_predicted: np.ndarray) -> float:
    """||z_observed - z_predicted||² / D for latents of shape (D,)."""
    z_observed = np.asarray(z_observed, dtype=np.float64)
    z_predicted = np.asarray(z_predicted, dtype=np.float64)
    if z_observed.shape != z_predicted.shape or z_observed.ndim != 1:
        raise ValueError(f"latents must both be (D,), got {z_observed.shape} and {z_predicted.shape}")
    return float(np.mean((z_observed - z_predicted) ** 2))


class _Ring:
    """Fixed-capacity FIFO of equally shaped float32 vectors, oldest first."""

    def __init__(self, capacity: int, dim: int) -> None:
        self._data = np.zeros((capacity, dim), dtype=np.float32)
        self._count = 0
        self._head = 0

    def push(self, value: np.ndarray) -> None:
        self._data[self._head] = value
        self._head = (self._head + 1) % len(self._data)
        self._count = min(self._count + 1, len(self._data))

    def last(self, n: int) -> np.ndarray:
        """The last `n` entries (n <= len), oldest first: (n, dim)."""
        if not 0 <= n <= self._count:
            raise ValueError(f"asked for the last {n} entries of a buffer holding {self._count}")
        idx = (self._head - n + np.arange(n)) % len(self._data)
        return self._data[idx].copy()

    def clear(self) -> None:
        self._count = 0
        self._head = 0

    def __len__(self) -> int:
        return self._count


class ShortTermMemory:
    """The last `capacity` latents (D,), actions (A,) and one-step predictions (D,).

    Call `observe(z)` for each new latent, `acted(a, z_predicted)` once an action is commanded with
    the model's prediction of the next latent; `observe` then returns the surprise of the new latent.
    """

    def __init__(self, latent_dim: int, action_dim: int, capacity: int = 32) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.latent_dim = latent_dim
        self.action_dim = action_dim
        self.capacity = capacity
        self._latents = _Ring(capacity, latent_dim)
        self._actions = _Ring(capacity, action_dim)
        self._surprises = _Ring(capacity, 1)
        self._pending_prediction: np.ndarray | None = None
        self.last_surprise: float | None = None

    def observe(self, z: np.ndarray) -> float | None:
        """Store latent z (D,); return its surprise if a prediction for it was pending, else None."""
        z = self._check(z, self.latent_dim, "latent")
        self._latents.push(z)
        if self._pending_prediction is None:
            return None
        self.last_surprise = surprise(z, self._pending_prediction)
        self._surprises.push(np.array([self.last_surprise], dtype=np.float32))
        self._pending_prediction = None
        return self.last_surprise

    def acted(self, action: np.ndarray, z_predicted: np.ndarray | None = None) -> None:
        """Store the commanded action (A,) and, if given, the predicted next latent (D,)."""
        self._actions.push(self._check(action, self.action_dim, "action"))
        self._pending_prediction = (
            None if z_predicted is None else self._check(z_predicted, self.latent_dim, "prediction")
        )

    def begin_model_step(
        self, z: np.ndarray, block: np.ndarray, predict_next: Callable[[np.ndarray], np.ndarray], history: int
    ) -> float | None:
        """A model step starts at the observed latent z (D,) with the action `block` (A,): `observe(z)`
        (its surprise is returned), then `acted(block, predict_next(latent_history(history)))`, the
        latent (D,) the model expects after the block from the newest `history` latents (history, D)."""
        surprise = self.observe(z)
        self.acted(block, predict_next(self.latent_history(history)))
        return surprise

    def latest_latent(self) -> np.ndarray | None:
        return self._latents.last(1)[0] if len(self._latents) else None

    def latent_history(self, k: int) -> np.ndarray:
        """The last k latents (k, D), oldest first; the oldest is repeated while fewer are stored."""
        if len(self._latents) == 0:
            raise ValueError("no latent observed yet")
        have = self._latents.last(min(k, len(self._latents)))
        if len(have) < k:
            have = np.concatenate([np.repeat(have[:1], k - len(have), axis=0), have])
        return have

    def last_actions(self, n: int) -> np.ndarray:
        """The last min(n, stored) actions, oldest first: (n', A)."""
        return self._actions.last(min(n, len(self._actions)))

    def recent_surprises(self) -> np.ndarray:
        """All stored surprises, oldest first: (n,)."""
        return self._surprises.last(len(self._surprises))[:, 0]

    def reset(self) -> None:
        """Forget everything (a new episode or a new model)."""
        for ring in (self._latents, self._actions, self._surprises):
            ring.clear()
        self._pending_prediction = None
        self.last_surprise = None

    def __len__(self) -> int:
        return len(self._latents)

    @staticmethod
    def _check(value: np.ndarray, dim: int, what: str) -> np.ndarray:
        value = np.asarray(value, dtype=np.float32).reshape(-1)
        if value.shape != (dim,):
            raise ValueError(f"{what} must have {dim} values, got {value.size}")
        return value
