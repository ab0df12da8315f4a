"""The training loop: encoder and predictor end to end in latent space (LeWorldModel recipe).

Per step: encode every frame of a batch of windows, predict each next latent from the `history`
before it and the action block (teacher forcing, or the model's own rollout with `rollout`), and
minimise the `Objective`. One process, or many under torchrun. Batches, SIGReg directions and the
learning rate are pure functions of (seed, rank, step), so a resumed run retraces the
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ami_robot.config import ConfigError, to_dict
from ami_robot.data.episodes import DataSource, dataset_directories, dataset_provenance
from ami_robot.data.windows import EpisodeWindows, Windows, load_episodes, split_episode_files
from ami_robot.errors import DataError
from ami_robot.training.config import TrainConfig, learning_rate
from ami_robot.training.distributed import average_buffers, init_distributed, rank_device
from ami_robot.training.metrics import evaluate, probe_frames
from ami_robot.training.objective import Objective
from ami_robot.training.stage import Progress, adamw, json_ready, optimisation_step, restore, write_metrics
from ami_robot.world_model.checkpoint import (
    TrainState,
    has_train_state,
    load_checkpoint,
    load_train_state,
    save_checkpoint,
)
from ami_robot.world_model.model import WorldModel, WorldModelConfig

logger = logging.getLogger(__name__)


def _model_config_for_data(config: TrainConfig, train: EpisodeWindows) -> WorldModelConfig:
    stats = train.action_stats
    return dataclasses.replace(
        config.model,
        env_action_dim=train.action_dim,
        action_mean=tuple(float(x) for x in stats.mean),
        action_std=tuple(float(x) for x in stats.std),
        action_low=tuple(float(x) for x in stats.low),
        action_high=tuple(float(x) for x in stats.high),
    )


@dataclass
class _Data:
    train: EpisodeWindows
    val_windows: Windows
    val_episodes: int
    probe_train: tuple[torch.Tensor, torch.Tensor]


def _prepare_data(data_dir: DataSource, config: TrainConfig) -> _Data:
    """Training windows, a fixed set of validation windows from held-out episodes, probe frames."""
    train_files, val_files = split_episode_files(data_dir, config.val_fraction, config.seed)
    m = config.model
    train_set = EpisodeWindows(
        load_episodes(train_files, config.max_frames), m.history, config.horizon, m.frameskip, m.image_size
    )
    val_set = (
        EpisodeWindows(load_episodes(val_files), m.history, config.horizon, m.frameskip, m.image_size)
        if val_files
        else train_set
    )
    val_set.use_action_normalisation(train_set.action_stats.mean, train_set.action_stats.std)
    if len(train_set) == 0 or len(val_set) == 0:
        directories = ", ".join(map(str, dataset_directories(data_dir)))
        raise DataError(
            f"{directories}: episodes too short for windows of {m.history}+{config.horizon} frames "
            f"at frameskip {m.frameskip}"
        )
    rng = np.random.default_rng([config.seed, 1])
    val_windows = val_set.windows(
        np.sort(rng.choice(len(val_set), size=min(config.val_windows, len(val_set)), replace=False))
    )
    return _Data(train_set, val_windows, len(val_files), probe_frames(train_set, config.probe_frames, config.seed))


def train(
    data_dir: DataSource,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    resume: bool = False,
    json_path: str | Path | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Train a world model on the episodes in `data_dir` (one dataset directory or several),
    checkpointing into `out_dir`.

    Returns the final validation metrics (also written to `json_path` on rank 0). `stop_at`
    ends the run early at that step with a resumable checkpoint, as an interruption would.
    """
    config = config or TrainConfig()
    out_dir = Path(out_dir)
    device_kind = (
        "cuda" if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()) else "cpu"
    )
    ddp = init_distributed(device_kind)
    device = rank_device(config.device, ddp.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)

    data = _prepare_data(data_dir, config)
    train_set = data.train
    start_step, history_log = 0, []
    model_config = _model_config_for_data(config, train_set)
    state: TrainState | None = None
    if resume and has_train_state(out_dir):
        state = load_train_state(out_dir)
        model = load_checkpoint(out_dir)
        if dataclasses.replace(model.config, critic=None) != model_config:
            raise ConfigError(
                f"{out_dir}: the checkpoint's model config differs from this run's; "
                "resume with the same config and data"
            )
        start_step, history_log = state.step, state.history
    else:
        if (out_dir / "config.json").exists() and not resume:
            raise FileExistsError(
                f"{out_dir} already holds a checkpoint; pass --resume to continue it or choose another --out"
            )
        torch.manual_seed(config.seed)
        model = WorldModel(model_config)
    model.to(device).train()
    optimizer = adamw(model, config)
    restore(optimizer, state)

    objective: nn.Module = Objective(model, config)
    if ddp.world_size > 1:
        objective = nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None
        )

    data_source = {
        **dataset_provenance(data_dir),
        "train_episodes": train_set.n_episodes,
        "val_episodes": data.val_episodes,
        "train_frames": train_set.n_frames,
    }

    def checkpoint(step: int, metrics: dict[str, Any]) -> None:
        if ddp.main:
            state = TrainState(step, optimizer.state_dict(), to_dict(config), torch.get_rng_state(), history_log)
            save_checkpoint(out_dir, model, state, json_ready({**metrics, "data": data_source}))

    last_step = config.steps if stop_at is None else min(stop_at, config.steps)
    metrics: dict[str, Any] = dict(history_log[-1]) if history_log else {}
    started = time.perf_counter()
    running = {"loss": float("nan"), "pred": float("nan"), "reg": float("nan")}
    with Progress(progress and ddp.main, config.steps, start_step, "train") as bar:
        for step in range(start_step, last_step):
            lr = learning_rate(config, step)
            batch = train_set.sample(config.batch_size, np.random.default_rng([config.seed, ddp.rank, step])).to(device)
            losses = objective(batch.observations, batch.actions, step)
            optimisation_step(optimizer, losses["loss"], model.parameters(), lr, config.grad_clip)
            running = {k: float(v.detach()) for k, v in losses.items()}
            bar.advance(loss=f"{running['loss']:.4f}", pred=f"{running['pred']:.4f}", reg=f"{running['reg']:.3f}")
            done = step + 1
            if done % config.eval_every == 0 or done == last_step:
                average_buffers(model, ddp.world_size)
                metrics = evaluate(
                    model, data.val_windows.to(device), data.probe_train, config.sigreg, config.probe_ridge
                )
                metrics.update(
                    step=done,
                    train_loss=running["loss"],
                    train_pred_loss=running["pred"],
                    train_reg=running["reg"],
                    lr=lr,
                )
                history_log.append(json_ready(metrics))
                if ddp.main:
                    probe = "n/a" if metrics["probe_r2"] is None else f"{metrics['probe_r2']:.3f}"
                    bar.report(
                        f"step {done}: val pred {metrics['pred_loss']:.4f} (copy {metrics['copy_baseline_loss']:.4f}), "
                        f"rank {metrics['effective_rank']:.1f}, sigreg {metrics['sigreg']:.2f}, probe R2 {probe}"
                    )
                checkpoint(done, metrics)
    if not metrics:
        metrics = evaluate(model, data.val_windows.to(device), data.probe_train, config.sigreg, config.probe_ridge)
        metrics.update(step=start_step)
    result = json_ready(
        {
            **metrics,
            "elapsed_s": time.perf_counter() - started,
            "world_size": ddp.world_size,
            "train_episodes": train_set.n_episodes,
            "val_episodes": data.val_episodes,
            "train_frames": train_set.n_frames,
            "checkpoint": str(out_dir),
        }
    )
    if json_path is not None and ddp.main:
        write_metrics(json_path, result, history_log)
    if ddp.world_size > 1:
        dist.barrier()
    return result
