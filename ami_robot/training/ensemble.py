"""The ensemble stage: train M predictors on the frozen world model's latents, for the planner.

Every frame of the episodes is encoded once by the frozen encoder. A training window is a history
of k encoded frames, the next `horizon` true action blocks and the encoded frames they lead to;
each member is trained on its own rollout of the whole horizon (the planner's use of it), from its
own initialisation and batch order, one member after the other. Batches and the learning rate are
pure functions of (seed, member, step), so a resumed run retraces the uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ami_robot.config import ConfigError, to_dict
from ami_robot.data.episodes import DataSource, dataset_provenance
from ami_robot.data.windows import DirectorySplit, joined_files, split_each_directory
from ami_robot.errors import DataError
from ami_robot.training.config import TrainConfig, learning_rate
from ami_robot.training.distributed import rank_device
from ami_robot.training.latents import LatentEpisodes, encode_episodes
from ami_robot.training.stage import (
    Progress,
    adamw,
    frozen,
    json_ready,
    optimisation_step,
    restore,
    resumed_stage_state,
    stage_result,
)
from ami_robot.world_model.checkpoint import (
    ENSEMBLE_TRAIN_STATE,
    TrainState,
    load_checkpoint,
    read_config,
    save_checkpoint,
)
from ami_robot.world_model.ensemble import PredictorEnsemble
from ami_robot.world_model.model import WorldModel, build_predictor
from ami_robot.world_model.rollout import autoregressive_rollout

logger = logging.getLogger(__name__)


@dataclass
class LatentWindows:
    """A batch of windows: history (B, k, D), action blocks (B, H, f*A) and targets (B, H, D)."""

    history: torch.Tensor
    actions: torch.Tensor
    targets: torch.Tensor

    def to(self, device: torch.device) -> LatentWindows:
        return LatentWindows(self.history.to(device), self.actions.to(device), self.targets.to(device))


class WindowSampler:
    """Draws `LatentWindows` of `horizon` model steps from `LatentEpisodes`."""

    def __init__(
        self, episodes: LatentEpisodes, history: int, frameskip: int, horizon: int, frames: range | None = None
    ) -> None:
        """Windows anchored at any frame of `episodes`, or only at those in `frames` (global indices)."""
        self.episodes = episodes
        self.history, self.frameskip, self.horizon = history, frameskip, horizon
        candidates = np.arange(episodes.n_frames)[slice(None) if frames is None else slice(frames.start, frames.stop)]
        has_history = candidates - (history - 1) * frameskip >= episodes.first_frame[candidates]
        has_future = candidates + horizon * frameskip <= episodes.last_frame[candidates]
        self.anchors = candidates[has_history & has_future]
        if len(self.anchors) == 0:
            raise DataError(
                f"episodes too short for a history of {history} frames and {horizon} steps at frameskip {frameskip}"
            )

    def sample(self, batch_size: int, rng: np.random.Generator) -> LatentWindows:
        """`batch_size` windows whose newest history frame is uniform over the valid anchors."""
        e, f, k, H = self.episodes, self.frameskip, self.history, self.horizon
        anchor = self.anchors[rng.integers(0, len(self.anchors), size=batch_size)]
        history_frames = anchor[:, None] - f * np.arange(k - 1, -1, -1)[None, :]
        action_frames = anchor[:, None, None] + f * np.arange(H)[None, :, None] + np.arange(f)[None, None, :]
        target_frames = anchor[:, None] + f * np.arange(1, H + 1)[None, :]
        return LatentWindows(
            e.latents[torch.from_numpy(history_frames)],
            e.actions[torch.from_numpy(action_frames)].flatten(2),
            e.latents[torch.from_numpy(target_frames)],
        )


@torch.no_grad()
def rollout_errors(predictor: torch.nn.Module | PredictorEnsemble, windows: LatentWindows) -> list[float]:
    """Mean squared error per latent dimension at each rollout step (H,): of one predictor, or of an
    ensemble's mean prediction."""
    if isinstance(predictor, PredictorEnsemble):
        predicted = predictor.rollout(windows.history, windows.actions).mean(0)
    else:
        predicted = autoregressive_rollout(predictor, windows.history, windows.actions)
    return [float(v) for v in (predicted - windows.targets).square().mean((0, 2))]


@dataclass
class DatasetValidation:
    """The held-out windows of one dataset directory of several (named by the directory)."""

    name: str
    windows: LatentWindows


def _validation_by_dataset(
    episodes: LatentEpisodes,
    splits: list[DirectorySplit],
    model: WorldModel,
    horizon: int,
    count: int,
    seed: int,
    device: torch.device,
) -> list[DatasetValidation]:
    """`count` held-out windows of each directory in `splits`, drawn from its own episodes in
    `episodes` (the validation files of all `splits`, encoded in order); a directory whose held-out
    episodes are too short for a window is left out, with a warning."""
    starts = np.unique(episodes.first_frame)
    bounds = np.cumsum([0] + [len(s.val) for s in splits])
    ends = [*starts.tolist(), episodes.n_frames]
    validations = []
    for i, split in enumerate(splits):
        if bounds[i] == bounds[i + 1]:
            continue
        frames = range(ends[bounds[i]], ends[bounds[i + 1]])
        try:
            sampler = WindowSampler(episodes, model.history, model.frameskip, horizon, frames)
        except DataError as exc:
            logger.warning("%s: no validation of its own (%s)", split.directory.name, exc)
            continue
        rng = np.random.default_rng([seed, 5, i])
        validations.append(DatasetValidation(split.directory.name, sampler.sample(count, rng).to(device)))
    return validations


def _new_ensemble(model: WorldModel, members: int, seed: int) -> PredictorEnsemble:
    predictors = []
    for member in range(members):
        torch.manual_seed(seed * 1000 + member + 1)
        predictors.append(build_predictor(model.config))
    return PredictorEnsemble(predictors)


def train_ensemble(
    data_dir: DataSource,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    resume: bool = False,
    json_path: str | Path | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Train the predictor ensemble of the world model in `out_dir` (frozen) on the training split of
    the episodes in `data_dir` (the world model's data, or more of the same robot: one dataset
    directory or several), writing it into the same checkpoint.

    Returns the final validation metrics (also written to `json_path`, with their history).
    `stop_at` ends early at that step (counted over all members) with a resumable checkpoint."""
    config = config or TrainConfig()
    c = config.ensemble
    if c.members < 2:
        raise ConfigError("the ensemble stage needs ensemble.members >= 2 (--ensemble-members)")
    out_dir = Path(out_dir)
    device = rank_device(config.device, 0)
    model = frozen(load_checkpoint(out_dir, map_location=device))
    held, matches = model.ensemble is not None, model.config.ensemble == c.members
    state = resumed_stage_state(out_dir, ENSEMBLE_TRAIN_STATE, resume, held, matches, "predictor ensemble")
    start_step, history_log = (state.step, state.history) if state is not None else (0, [])
    if state is None:
        model.attach_ensemble(_new_ensemble(model, c.members, config.seed))
    ensemble = model.ensemble
    assert ensemble is not None
    ensemble.to(device).train()

    splits = split_each_directory(data_dir, config.val_fraction, config.seed)
    train_files, val_files = joined_files(splits)
    sampler = WindowSampler(
        encode_episodes(model, train_files, config.max_frames, progress), model.history, model.frameskip, c.horizon
    )
    by_dataset: list[DatasetValidation] = []
    if val_files:
        val_episodes = encode_episodes(model, val_files)
        val_sampler = WindowSampler(val_episodes, model.history, model.frameskip, c.horizon)
        if len(splits) > 1:
            by_dataset = _validation_by_dataset(
                val_episodes, splits, model, c.horizon, c.val_windows, config.seed, device
            )
    else:
        val_sampler = sampler
    validation = val_sampler.sample(c.val_windows, np.random.default_rng([config.seed, 5])).to(device)
    joint_errors = rollout_errors(model.predictor, validation)
    joint_by_dataset = [rollout_errors(model.predictor, d.windows) for d in by_dataset]
    _, recorded = read_config(out_dir)
    ensemble_data = {**dataset_provenance(data_dir), "train_frames": sampler.episodes.n_frames}
    total = c.members * c.steps
    last_step = total if stop_at is None else min(stop_at, total)
    metrics: dict[str, Any] = dict(history_log[-1]) if history_log else {}
    started = time.perf_counter()
    with Progress(progress, total, start_step, "ensemble") as bar:
        step = start_step
        while step < last_step:
            index, first = divmod(step, c.steps)
            member = ensemble.members[index]
            optimizer = adamw(member, c)
            restore(optimizer, state if first > 0 else None)
            state = None
            for member_step in range(first, min(c.steps, last_step - index * c.steps)):
                rng = np.random.default_rng([config.seed, 4, index, member_step])
                windows = sampler.sample(c.batch_size, rng).to(device)
                loss = F.mse_loss(autoregressive_rollout(member, windows.history, windows.actions), windows.targets)
                optimisation_step(optimizer, loss, member.parameters(), learning_rate(c, member_step), c.grad_clip)
                bar.advance(member=str(index), loss=f"{float(loss.detach()):.4f}")
                step += 1
                if (member_step + 1) % c.eval_every == 0 or member_step + 1 == c.steps or step == last_step:
                    trained = PredictorEnsemble(list(ensemble.members[: index + 1])) if index >= 1 else member
                    metrics = {
                        "step": step,
                        "member": index,
                        "member_step": member_step + 1,
                        "member_rollout_mse": rollout_errors(member, validation),
                        "ensemble_rollout_mse": rollout_errors(trained, validation),
                        "joint_predictor_rollout_mse": joint_errors,
                        "train_loss": float(loss.detach()),
                    }
                    if by_dataset:
                        metrics["datasets"] = [
                            {
                                "name": d.name,
                                "ensemble_rollout_mse": rollout_errors(trained, d.windows),
                                "joint_predictor_rollout_mse": joint,
                            }
                            for d, joint in zip(by_dataset, joint_by_dataset, strict=True)
                        ]
                    history_log.append(json_ready(metrics))
                    bar.report(_validation_line(metrics))
                    train_state = TrainState(
                        step, optimizer.state_dict(), to_dict(config), torch.get_rng_state(), history_log
                    )
                    save_checkpoint(
                        out_dir,
                        model,
                        train_state,
                        json_ready({**recorded, "ensemble": metrics, "ensemble_data": ensemble_data}),
                        train_state_name=ENSEMBLE_TRAIN_STATE,
                    )
    frames = {"train_frames": sampler.episodes.n_frames, "val_frames": val_sampler.episodes.n_frames}
    return stage_result(metrics, started, frames, out_dir, json_path, history_log)


def _validation_line(metrics: dict[str, Any]) -> str:
    def last(errors: list[float]) -> str:
        return f"{errors[-1]:.4f}"

    datasets = "".join(
        f"; {d['name']}: {last(d['ensemble_rollout_mse'])} (joint {last(d['joint_predictor_rollout_mse'])})"
        for d in metrics.get("datasets", [])
    )
    return (
        f"ensemble member {metrics['member']} step {metrics['member_step']}: rollout MSE at the last step "
        f"{last(metrics['member_rollout_mse'])} (mean of the members so far {last(metrics['ensemble_rollout_mse'])}, "
        f"joint predictor {last(metrics['joint_predictor_rollout_mse'])}){datasets}"
    )
