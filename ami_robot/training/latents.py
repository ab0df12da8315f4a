"""Episodes encoded once by a frozen world model: the data of the stages that train on latents
(the critic, the predictor ensemble)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ami_robot.data.windows import iter_episodes
from ami_robot.errors import DataError
from ami_robot.perception import resize_uint8
from ami_robot.training.metrics import encode_batched
from ami_robot.training.stage import Progress
from ami_robot.world_model.model import WorldModel


@dataclass
class LatentEpisodes:
    """Episodes encoded frame by frame: latents (F, D), normalised raw actions (F, env_action_dim)
    (row t: the action taken at frame t; zeros at an episode's last frame), states (F, S), and for
    every frame the global index of its episode's first and last frame (F,)."""

    latents: torch.Tensor
    actions: torch.Tensor
    states: np.ndarray
    first_frame: np.ndarray
    last_frame: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.latents)


@torch.no_grad()
def encode_episodes(
    model: WorldModel, files: list[Path], max_frames: int = 0, progress: bool = False
) -> LatentEpisodes:
    """Encode every frame of the episode `files` with the (frozen) model, one episode at a time
    (a progress bar over the episodes when `progress`)."""
    latents, actions, states, first, last = [], [], [], [], []
    total = 0
    with Progress(progress, len(files), 0, "encode", unit="episode") as bar:
        for episode in iter_episodes(files, max_frames):
            n = len(episode.observations)
            pixels = resize_uint8(episode.observations, model.image_size)
            latents.append(encode_batched(model, torch.from_numpy(pixels)))
            padded = np.concatenate([episode.actions, np.full((1, episode.actions.shape[1]), np.nan, np.float32)])
            actions.append(np.nan_to_num(model.normalize_actions(padded), nan=0.0))
            states.append(episode.states.reshape(n, -1))
            first.append(np.full(n, total))
            last.append(np.full(n, total + n - 1))
            total += n
            bar.advance()
    if not latents:
        raise DataError("no episodes to encode")
    return LatentEpisodes(
        torch.cat(latents),
        torch.from_numpy(np.concatenate(actions).astype(np.float32)),
        np.concatenate(states).astype(np.float32),
        np.concatenate(first),
        np.concatenate(last),
    )
