"""Training windows from episode datasets, held in memory as uint8.

A window of length L = history + horizon starts at frame s of one episode and holds the frames
s, s+f, ..., s+(L-1)f (f = frameskip), the L-1 action blocks between them (block j = the f raw
actions from frame s+jf, concatenated, normalised) and the true states of the frames. Windows
never cross an episode boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ami_robot.data.episodes import DataSource, Episode, dataset_directories, episode_files, read_episode
from ami_robot.errors import DataError
from ami_robot.perception import resize_uint8


@dataclass
class Windows:
    """A batch of windows: observations (B, L, S, S, 3) uint8, actions (B, L-1, f*A) float32
    normalised, states (B, L, state_dim) float32."""

    observations: torch.Tensor
    actions: torch.Tensor
    states: torch.Tensor

    def to(self, device: torch.device | str) -> Windows:
        return Windows(
            self.observations.to(device, non_blocking=True),
            self.actions.to(device, non_blocking=True),
            self.states.to(device),
        )


@dataclass(frozen=True)
class ActionStats:
    """Per-dimension statistics of raw actions (A,) each."""

    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, actions: np.ndarray) -> ActionStats:
        std = actions.std(0)
        return cls(actions.mean(0), np.where(std > 1e-6, std, 1.0), actions.min(0), actions.max(0))


class EpisodeWindows:
    """Episodes concatenated in memory with an index of valid window starts."""

    def __init__(
        self, episodes: list[Episode], history: int, horizon: int, frameskip: int = 1, image_size: int | None = None
    ) -> None:
        if not episodes:
            raise DataError("no episodes to build windows from")
        if min(history, horizon, frameskip) < 1:
            raise ValueError(f"history, horizon and frameskip must be >= 1, got {history}, {horizon}, {frameskip}")
        self.history, self.horizon, self.frameskip = history, horizon, frameskip
        self.length = history + horizon
        shapes = {e.observations.shape[1:] for e in episodes} if image_size is None else set()
        if len(shapes) > 1:
            raise DataError(f"episodes have different image shapes {sorted(shapes)}; pass image_size to resize")
        action_dims = {e.actions.shape[1] for e in episodes}
        state_dims = {e.states.shape[1] if e.states.ndim == 2 else 0 for e in episodes}
        if len(action_dims) > 1 or len(state_dims) > 1:
            raise DataError(f"episodes disagree on action or state width: {action_dims}, {state_dims}")
        self.action_dim, self.state_dim = action_dims.pop(), state_dims.pop()
        frames = [resize_uint8(e.observations, image_size) if image_size else e.observations for e in episodes]
        self.observations = np.concatenate(frames)
        pad = np.zeros((1, self.action_dim), np.float32)
        self.raw_actions = np.concatenate([np.concatenate([e.actions, pad]) for e in episodes])
        self.states = np.concatenate([e.states.reshape(len(e.states), self.state_dim) for e in episodes])
        span = (self.length - 1) * frameskip
        starts, offset = [], 0
        for e in episodes:
            n_frames = len(e.observations)
            starts.append(np.arange(offset, offset + max(n_frames - span, 0)))
            offset += n_frames
        self.starts = np.concatenate(starts)
        self.n_episodes = len(episodes)
        self.action_stats = ActionStats.of(np.concatenate([e.actions for e in episodes]))
        self._mean = self.action_stats.mean
        self._std = self.action_stats.std

    def use_action_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Normalise actions with these statistics (the training split's) instead of this set's own."""
        self._mean, self._std = np.asarray(mean, np.float32), np.asarray(std, np.float32)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def n_frames(self) -> int:
        return len(self.observations)

    def windows(self, indices: np.ndarray) -> Windows:
        """Windows number `indices` (into the valid starts) as a batch."""
        s = self.starts[np.asarray(indices)]
        f = self.frameskip
        frames = s[:, None] + f * np.arange(self.length)[None, :]
        action_idx = frames[:, :-1, None] + np.arange(f)[None, None, :]
        actions = (self.raw_actions[action_idx] - self._mean) / self._std
        actions = actions.reshape(len(s), self.length - 1, f * self.action_dim).astype(np.float32)
        return Windows(
            observations=torch.from_numpy(self.observations[frames]),
            actions=torch.from_numpy(actions),
            states=torch.from_numpy(self.states[frames]),
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> Windows:
        return self.windows(rng.integers(0, len(self), size=batch_size))

    def frames(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Single frames by global frame index: (observations (N, S, S, 3) uint8, states (N, state_dim))."""
        return torch.from_numpy(self.observations[indices]), torch.from_numpy(self.states[indices])


@dataclass(frozen=True)
class DirectorySplit:
    """One dataset directory's episode files, split into training and validation."""

    directory: Path
    train: list[Path]
    val: list[Path]


def split_each_directory(source: DataSource, val_fraction: float, seed: int) -> list[DirectorySplit]:
    """Each directory of `source`, in order, split on its own by a seeded shuffle (as if alone); at
    least one episode of each part when possible. Raises DataError for a missing directory, one
    without episodes, or a bad `source`."""
    try:
        directories = dataset_directories(source)
    except ValueError as exc:
        raise DataError(str(exc)) from exc
    return [DirectorySplit(directory, *_split_directory(directory, val_fraction, seed)) for directory in directories]


def joined_files(splits: list[DirectorySplit]) -> tuple[list[Path], list[Path]]:
    """(train, validation) episode files of all `splits`, joined in order."""
    return [f for s in splits for f in s.train], [f for s in splits for f in s.val]


def split_episode_files(source: DataSource, val_fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """Episode files split into (train, validation): `split_each_directory`'s parts joined in order."""
    return joined_files(split_each_directory(source, val_fraction, seed))


def _split_directory(directory: Path, val_fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    try:
        files = episode_files(directory)
    except FileNotFoundError as exc:
        raise DataError(str(exc)) from exc
    if not files:
        raise DataError(f"{directory}: no episode_*.h5 files")
    order = np.random.default_rng(seed).permutation(len(files))
    n_val = round(val_fraction * len(files))
    n_val = min(max(n_val, 1 if val_fraction > 0 else 0), len(files) - 1)
    val = sorted(files[i] for i in order[:n_val])
    train = sorted(files[i] for i in order[n_val:])
    return train, val


def load_episodes(files: list[Path], max_frames: int = 0) -> list[Episode]:
    """Read episodes in order, stopping once `max_frames` observations are loaded (0: no cap).

    Raises DataError naming the file for an episode that cannot be read or trained on (NaN or
    Inf in its actions or states), before any training starts."""
    return list(iter_episodes(files, max_frames))


def iter_episodes(files: list[Path], max_frames: int = 0) -> Iterator[Episode]:
    """Read and check episodes one at a time, in order, stopping once `max_frames` observations
    have been yielded (0: no cap). Raises DataError naming the file, as `load_episodes`."""
    total = 0
    for path in files:
        if max_frames and total >= max_frames:
            return
        try:
            episode = read_episode(path)
        except (OSError, ValueError) as exc:
            raise DataError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from exc
        check_finite(episode, path)
        total += len(episode.observations)
        yield episode


def check_finite(episode: Episode, path: Path) -> None:
    """Raise DataError naming `path` and the first bad step when actions or states hold NaN or Inf."""
    for name, values in (("actions", episode.actions), ("states", episode.states)):
        bad = ~np.isfinite(values)
        if bad.any():
            step = int(np.argwhere(bad)[0][0])
            raise DataError(f"{path}: {name} hold NaN or Inf (first at step {step}); remove or re-record this episode")
