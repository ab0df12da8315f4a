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
    CONFIG_FILE,
    ENSEMBLE_TRAIN_STATE,
    TrainState,
    has_train_state,
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

    def fields(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.history, self.actions, self.targets

    def to(self, device: torch.device) -> LatentWindows:
        return LatentWindows(*(t.to(device) for t in self.fields()))


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


def directory_frames(episodes: LatentEpisodes, files_per_directory: list[int]) -> list[range]:
    """The global frame range of each directory's episodes in `episodes`, which holds those
    directories' files (`files_per_directory` of each, one episode per file) encoded in order; empty
    for files past the end of `episodes` (a `max_frames` cap)."""
    starts = np.unique(episodes.first_frame)
    bounds = np.minimum(np.cumsum([0, *files_per_directory]), len(starts))
    ends = [*starts.tolist(), episodes.n_frames]
    return [range(ends[bounds[i]], ends[bounds[i + 1]]) for i in range(len(files_per_directory))]


class MixtureSampler:
    """Draws each batch from several `WindowSampler`s, a multinomial share of it from each by `weights`."""

    def __init__(self, samplers: list[WindowSampler], weights: tuple[float, ...]) -> None:
        total = float(sum(weights))
        self.samplers = samplers
        self.weights = np.asarray(weights, dtype=np.float64) / total

    def sample(self, batch_size: int, rng: np.random.Generator) -> LatentWindows:
        counts = rng.multinomial(batch_size, self.weights)
        parts = [sampler.sample(int(n), rng) for sampler, n in zip(self.samplers, counts, strict=True) if n > 0]
        return LatentWindows(*(torch.cat(tensors) for tensors in zip(*(w.fields() for w in parts), strict=True)))


def _weighted_sampler(
    episodes: LatentEpisodes, splits: list[DirectorySplit], model: WorldModel, horizon: int, weights: tuple[float, ...]
) -> MixtureSampler:
    """Training windows of the directories in `splits` (their training files, encoded in order in
    `episodes`) mixed by `weights`, one per directory."""
    if len(weights) != len(splits):
        names = ", ".join(s.directory.name for s in splits)
        raise ConfigError(f"ensemble.dataset_weights: {len(weights)} weights for {len(splits)} directories ({names})")
    samplers, kept = [], []
    for split, frames, weight in zip(splits, directory_frames(episodes, [len(s.train) for s in splits]), weights):
        if weight == 0:
            continue
        if not frames:
            raise DataError(f"{split.directory.name}: none of its training episodes was encoded (max_frames?)")
        try:
            samplers.append(WindowSampler(episodes, model.history, model.frameskip, horizon, frames))
        except DataError as exc:
            raise DataError(f"{split.directory.name}: {exc}") from exc
        kept.append(weight)
    return MixtureSampler(samplers, tuple(kept))


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
    validations = []
    for i, (split, frames) in enumerate(zip(splits, directory_frames(episodes, [len(s.val) for s in splits]))):
        if not frames:
            continue
        try:
            sampler = WindowSampler(episodes, model.history, model.frameskip, horizon, frames)
        except DataError as exc:
            logger.warning("%s: no validation of its own (%s)", split.directory.name, exc)
            continue
        rng = np.random.default_rng([seed, 5, i])
        validations.append(DatasetValidation(split.directory.name, sampler.sample(count, rng).to(device)))
    return validations


def _fine_tune_start(
    source: Path, out_dir: Path, members: int, device: torch.device
) -> tuple[WorldModel, dict[str, Any], dict[str, Any]]:
    """The model of checkpoint `source`, frozen, whose ensemble of `members` the stage goes on training
    into `out_dir`; its recorded metrics; and what the new checkpoint records of where it started."""
    if (out_dir / CONFIG_FILE).exists():
        raise FileExistsError(
            f"{out_dir} already holds a checkpoint (and no fine-tune to resume); fine-tune into a new --out"
        )
    model = frozen(load_checkpoint(source, map_location=device))
    if model.ensemble is None or len(model.ensemble) != members:
        held = 0 if model.ensemble is None else len(model.ensemble)
        raise ConfigError(f"{source}: holds an ensemble of {held} predictors, not the {members} to fine-tune")
    _, recorded = read_config(source)
    logger.info("fine-tuning the %d-member ensemble of %s into %s", members, source, out_dir)
    return model, recorded, {"checkpoint": source.resolve().name, "ensemble_data": recorded.get("ensemble_data")}


def _check_same_start(out_dir: Path, source: Path, fine_tuned_from: dict[str, Any] | None) -> None:
    """A resumed fine-tune must name the checkpoint it started from (or none)."""
    started = (fine_tuned_from or {}).get("checkpoint")
    if started != source.resolve().name:
        raise ConfigError(
            f"{out_dir}: its ensemble was {f'fine-tuned from {started}' if started else 'trained afresh'}, not from "
            f"{source}; resume it with the --ensemble-from it started with (or none)"
        )


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
    init_from: str | Path | None = None,
) -> dict[str, Any]:
    """Train the predictor ensemble of the world model in `out_dir` (frozen) on the training split of
    the episodes in `data_dir` (the world model's data, or more of the same robot: one dataset
    directory or several, mixed by `ensemble.dataset_weights` when given), writing it into the same
    checkpoint.

    `init_from`: a checkpoint whose ensemble the members start from (fine-tuning it on `data_dir`);
    its model is copied into `out_dir`, which must not hold a checkpoint yet (unless resuming).
    Returns the final validation metrics (also written to `json_path`, with their history).
    `stop_at` ends early at that step (counted over all members) with a resumable checkpoint."""
    config = config or TrainConfig()
    c = config.ensemble
    if c.members < 2:
        raise ConfigError("the ensemble stage needs ensemble.members >= 2 (--ensemble-members)")
    out_dir = Path(out_dir)
    device = rank_device(config.device, 0)
    fine_tune_start = init_from is not None and not (resume and has_train_state(out_dir, ENSEMBLE_TRAIN_STATE))
    history_log: list[dict[str, Any]]
    fine_tuned_from: dict[str, Any] | None
    if fine_tune_start:
        assert init_from is not None
        model, recorded, fine_tuned_from = _fine_tune_start(Path(init_from), out_dir, c.members, device)
        state, start_step, history_log = None, 0, []
    else:
        model = frozen(load_checkpoint(out_dir, map_location=device))
        held, matches = model.ensemble is not None, model.config.ensemble == c.members
        state = resumed_stage_state(out_dir, ENSEMBLE_TRAIN_STATE, resume, held, matches, "predictor ensemble")
        start_step, history_log = (state.step, state.history) if state is not None else (0, [])
        if state is None:
            model.attach_ensemble(_new_ensemble(model, c.members, config.seed))
        _, recorded = read_config(out_dir)
        fine_tuned_from = (recorded.get("ensemble_data") or {}).get("fine_tuned_from") if state is not None else None
        if init_from is not None and state is not None:
            _check_same_start(out_dir, Path(init_from), fine_tuned_from)
    ensemble = model.ensemble
    assert ensemble is not None
    ensemble.to(device).train()

    splits = split_each_directory(data_dir, config.val_fraction, config.seed)
    train_files, val_files = joined_files(splits)
    sampler = WindowSampler(
        encode_episodes(model, train_files, config.max_frames, progress), model.history, model.frameskip, c.horizon
    )
    batches: WindowSampler | MixtureSampler = sampler
    if c.dataset_weights:
        batches = _weighted_sampler(sampler.episodes, splits, model, c.horizon, c.dataset_weights)
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
    ensemble_data = {**dataset_provenance(data_dir), "train_frames": sampler.episodes.n_frames}
    if c.dataset_weights:
        ensemble_data["dataset_weights"] = list(c.dataset_weights)
    if fine_tuned_from is not None:
        ensemble_data["fine_tuned_from"] = fine_tuned_from
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
                windows = batches.sample(c.batch_size, rng).to(device)
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
