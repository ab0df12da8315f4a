"""Episode datasets on disk: one HDF5 file per episode plus a `dataset.json` index.

HDF5 because it is a long-kept, self-describing, language-neutral format that stores large
uint8 image arrays compressed and chunked, and h5py/HDF5 tools read it anywhere. One file per
episode, written to a temporary name and renamed when complete, means an interrupted
collection never corrupts or loses a finished episode.

Layout of `DIR/episode_NNNNNN.h5` (T steps, T+1 observations):
    observations  (T+1, H, W, 3) uint8   RGB pixels, observations[t] before actions[t]
    actions       (T, A)         float32
    states        (T+1, S)       float32 true low-dimensional state (info["state"])
    rewards       (T,)           float32
    goal_observation (H, W, 3)   uint8   (optional)
    goal_state    (S,)           float32 (optional)
    attrs: env, seed, success (bool), policy (and noise, from ami_sim.collect)
`DIR/dataset.json`: {"format": "ami_robot.episodes/1", "env": ..., "episodes": [file names], ...}.
Training reads one dataset directory or several of one robot (a `DataSource`), as one set.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ami_robot.digests import feed_file

FORMAT = "ami_robot.episodes/1"
INDEX = "dataset.json"

DataSource = str | Path | Sequence[str | Path]
"""One dataset directory, or several trained on as one set (in this order)."""


@dataclass
class Episode:
    """One episode. Shapes: observations (T+1, H, W, 3) uint8, actions (T, A), states (T+1, S)."""

    observations: np.ndarray
    actions: np.ndarray
    states: np.ndarray
    rewards: np.ndarray | None = None
    goal_observation: np.ndarray | None = None
    goal_state: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.observations = np.asarray(self.observations)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        self.states = np.asarray(self.states, dtype=np.float32)
        t = len(self.actions)
        if self.observations.dtype != np.uint8 or self.observations.ndim != 4 or self.observations.shape[-1] != 3:
            raise ValueError(
                f"observations must be uint8 (T+1, H, W, 3), got {self.observations.dtype} {self.observations.shape}"
            )
        if self.actions.ndim != 2:
            raise ValueError(f"actions must be (T, A), got {self.actions.shape}")
        if len(self.observations) != t + 1 or len(self.states) != t + 1:
            raise ValueError(
                f"need T+1 observations and states for T={t} actions, "
                f"got {len(self.observations)} and {len(self.states)}"
            )
        if self.rewards is None:
            self.rewards = np.zeros(t, dtype=np.float32)
        self.rewards = np.asarray(self.rewards, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.actions)


def write_episode(path: str | Path, episode: Episode) -> Path:
    """Write `episode` to `path` atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with h5py.File(tmp, "w") as f:
        chunk = (1, *episode.observations.shape[1:])
        f.create_dataset(
            "observations", data=episode.observations, chunks=chunk, compression="gzip", compression_opts=4
        )
        f.create_dataset("actions", data=episode.actions)
        f.create_dataset("states", data=episode.states)
        f.create_dataset("rewards", data=episode.rewards)
        if episode.goal_observation is not None:
            f.create_dataset("goal_observation", data=np.asarray(episode.goal_observation, dtype=np.uint8))
        if episode.goal_state is not None:
            f.create_dataset("goal_state", data=np.asarray(episode.goal_state, dtype=np.float32))
        for key, value in episode.attrs.items():
            f.attrs[key] = value
    os.replace(tmp, path)
    return path


def read_episode(path: str | Path) -> Episode:
    """Read one episode file written by `write_episode`."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            return Episode(
                observations=f["observations"][()],
                actions=f["actions"][()],
                states=f["states"][()],
                rewards=f["rewards"][()] if "rewards" in f else None,
                goal_observation=f["goal_observation"][()] if "goal_observation" in f else None,
                goal_state=f["goal_state"][()] if "goal_state" in f else None,
                attrs={k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()},
            )
    except (OSError, KeyError) as exc:
        raise ValueError(f"{path}: not a readable ami_robot episode file ({exc})") from exc


def episode_name(index: int) -> str:
    return f"episode_{index:06d}.h5"


def episode_files(directory: str | Path) -> list[Path]:
    """The complete episode files of a dataset directory, in order (temporary files excluded)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"dataset directory {directory} does not exist")
    return sorted(directory.glob("episode_*.h5"))


def write_index(directory: str | Path, **info: Any) -> Path:
    """(Re)write `dataset.json` listing the episode files now present, plus `info`."""
    directory = Path(directory)
    index = {"format": FORMAT, **info, "episodes": [p.name for p in episode_files(directory)]}
    tmp = directory / f".{INDEX}.tmp"
    tmp.write_text(json.dumps(index, indent=2))
    os.replace(tmp, directory / INDEX)
    return directory / INDEX


def read_index(directory: str | Path) -> dict[str, Any]:
    """`dataset.json` of a dataset directory, or a minimal index from the files if it is missing."""
    directory = Path(directory)
    path = directory / INDEX
    if path.exists():
        index = json.loads(path.read_text())
        if index.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown dataset format {index.get('format')!r}, expected {FORMAT!r}")
        return index
    return {"format": FORMAT, "episodes": [p.name for p in episode_files(directory)]}


def dataset_digest(directory: str | Path) -> str:
    """SHA-256 (64 hex digits) of a dataset's episode files, each file's name and contents in order:
    two directories with the same digest hold the same episodes, wherever they lie."""
    digest = hashlib.sha256()
    for path in episode_files(directory):
        digest.update(path.name.encode())
        feed_file(digest, path)
    return digest.hexdigest()


def dataset_directories(source: DataSource) -> list[Path]:
    """The directories of `source`, in order. Raises ValueError for none, for one given twice, and
    for directories whose `dataset.json` names different robots (env)."""
    directories = [Path(source)] if isinstance(source, (str, Path)) else [Path(d) for d in source]
    if not directories:
        raise ValueError("no dataset directory given")
    resolved = [d.resolve() for d in directories]
    twice = sorted({str(d) for d, r in zip(directories, resolved) if resolved.count(r) > 1})
    if twice:
        raise ValueError(f"dataset directory given more than once: {', '.join(twice)}")
    if len(directories) > 1:
        envs = {str(d): read_index(d).get("env") for d in directories if (d / INDEX).is_file()}
        if len({env for env in envs.values() if env is not None}) > 1:
            raise ValueError(f"datasets of different robots cannot be trained on together: {envs}")
    return directories


def dataset_provenance(source: DataSource) -> dict[str, Any]:
    """What a model trained on the dataset `source` records of it: the directory's name (not its
    local path), the digest of its episodes (`dataset_digest`), their number and how they were made
    (`dataset.json` without its file list: env, policy, noise, seed, or a bag's source and topics).
    Several directories: their names joined by "+", the number of episodes in all, and each one's
    record under "datasets"."""
    directories = dataset_directories(source)
    if len(directories) > 1:
        parts = [dataset_provenance(directory) for directory in directories]
        return {
            "name": "+".join(part["name"] for part in parts),
            "episodes": sum(part["episodes"] for part in parts),
            "datasets": parts,
        }
    directory = directories[0]
    index = read_index(directory)
    made = {key: value for key, value in index.items() if key not in ("format", "episodes") and value is not None}
    return {
        "name": directory.resolve().name,
        "sha256": dataset_digest(directory),
        "episodes": len(index["episodes"]),
        **made,
    }


def iter_episodes(directory: str | Path) -> Iterator[Episode]:
    """Episodes of a dataset directory, in file order."""
    for path in episode_files(directory):
        yield read_episode(path)
