"""Training the encoder and predictor end to end in latent space (LeWorldModel recipe).

Per step: encode every frame of a batch of windows, predict each next latent from the `history`
before it and the action block (teacher forcing, or the model's own rollout with `rollout`),
and minimise

    loss = MSE(predicted z, encoded z) + reg_weight * SIGReg(z)   (or VICReg(z))

with gradients through both sides: no stop-gradient, no EMA teacher; SIGReg alone keeps the
embeddings from collapsing. One process, or many under torchrun (DDP; gloo on CPU, nccl on
GPU). Batches, SIGReg directions and the learning rate are pure functions of (seed, rank,
step), so a resumed run retraces the uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ami_robot.config import ConfigError, load_yaml, to_dict
from ami_robot.world_model.checkpoint import TrainState, has_train_state, load_checkpoint, load_train_state, save_checkpoint
from ami_robot.world_model.data import EpisodeWindows, Windows, load_episodes, split_episode_files
from ami_robot.world_model.losses import vicreg
from ami_robot.world_model.metrics import evaluate, probe_frames
from ami_robot.world_model.model import WorldModel, WorldModelConfig
from ami_robot.world_model.sigreg import SIGRegConfig, sigreg


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; `model` is the architecture (its action statistics are filled from the data).

    reg_weight is the one weight to tune: loss = prediction + reg_weight * regulariser.
    """

    model: WorldModelConfig = field(default_factory=WorldModelConfig)
    steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    min_lr_fraction: float = 0.1
    grad_clip: float = 1.0
    horizon: int = 1
    rollout: bool = False
    regularizer: Literal["sigreg", "vicreg"] = "sigreg"
    reg_weight: float = 0.02
    sigreg: SIGRegConfig = field(default_factory=SIGRegConfig)
    eval_every: int = 500
    val_fraction: float = 0.1
    val_windows: int = 512
    probe_frames: int = 2048
    probe_ridge: float = 1e-3
    max_frames: int = 0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "horizon", "eval_every", "val_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.regularizer not in ("sigreg", "vicreg"):
            raise ValueError(f"regularizer must be 'sigreg' or 'vicreg', got {self.regularizer!r}")


def load_train_config(path: str | Path | None, **overrides: Any) -> TrainConfig:
    """TrainConfig from a YAML file (or defaults), then `overrides` that are not None."""
    config = load_yaml(TrainConfig, path) if path else TrainConfig()
    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid training option: {exc}") from exc


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to min_lr_fraction * lr at `steps`."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    floor = config.min_lr_fraction
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class Objective(nn.Module):
    """The training loss of a WorldModel on a batch of windows (the module DDP wraps)."""

    def __init__(self, model: WorldModel, config: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config

    def forward(self, observations: torch.Tensor, actions: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """observations (B, L, S, S, 3) uint8, actions (B, L-1, A) -> {"loss", "pred", "reg"} scalars."""
        b, length = observations.shape[:2]
        k = self.model.history
        z = self.model.encode(observations.flatten(0, 1)).view(b, length, -1)
        targets = z[:, k:]
        if self.config.rollout:
            predictions = self.model.rollout(z[:, :k], actions[:, k - 1 :])
        else:
            predictions = torch.stack([self.model.predict(z[:, j - k : j], actions[:, j - 1]) for j in range(k, length)], 1)
        pred = F.mse_loss(predictions, targets)
        if self.config.regularizer == "sigreg":
            reg = torch.stack([sigreg(z[:, j], step, self.config.sigreg) for j in range(length)]).mean()
        else:
            reg = torch.stack([vicreg(z[:, j]) for j in range(length)]).mean()
        return {"loss": pred + self.config.reg_weight * reg, "pred": pred.detach(), "reg": reg.detach()}


@dataclass
class _Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_kind: str) -> _Distributed:
    """Join the process group that torchrun describes in the environment (WORLD_SIZE > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return _Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def leave_process_group() -> None:
    """Leave the process group (if any) once every rank is past its last collective.

    Gloo aborts a rank whose peer closes its connection while a message is still on the way, which
    a barrier followed by teardown can do under load (pytorch/gloo#155). The ranks first meet in
    the rendezvous store, which carries no gloo traffic; rank 0 leaves last.
    """
    if not dist.is_initialized():
        return
    rank, world_size = dist.get_rank(), dist.get_world_size()
    if world_size > 1:
        store = dist.distributed_c10d._get_default_store()
        store.set(f"ami_robot/past_last_collective/{rank}", "1")
        store.wait([f"ami_robot/past_last_collective/{r}" for r in range(world_size)])
        if rank != 0:
            store.set(f"ami_robot/leaving/{rank}", "1")
        else:
            store.wait([f"ami_robot/leaving/{r}" for r in range(1, world_size)])
    dist.destroy_process_group()


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def _average_buffers(model: nn.Module, world_size: int) -> None:
    """Average BatchNorm running statistics over processes (DDP keeps each rank's own)."""
    if world_size <= 1:
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            buffer.div_(world_size)


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


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=config.lr
    )


def _json_ready(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


@dataclass
class _Data:
    train: EpisodeWindows
    val_windows: Windows
    val_episodes: int
    probe_train: tuple[torch.Tensor, torch.Tensor]


def _prepare_data(data_dir: str | Path, config: TrainConfig) -> _Data:
    """Training windows, a fixed set of validation windows from held-out episodes, probe frames."""
    train_files, val_files = split_episode_files(data_dir, config.val_fraction, config.seed)
    m = config.model
    train_set = EpisodeWindows(load_episodes(train_files, config.max_frames), m.history, config.horizon, m.frameskip, m.image_size)
    val_set = EpisodeWindows(load_episodes(val_files), m.history, config.horizon, m.frameskip, m.image_size) if val_files else train_set
    val_set.use_action_normalisation(train_set.action_stats.mean, train_set.action_stats.std)
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError(f"{data_dir}: episodes too short for windows of {m.history}+{config.horizon} frames at frameskip {m.frameskip}")
    rng = np.random.default_rng([config.seed, 1])
    val_windows = val_set.windows(np.sort(rng.choice(len(val_set), size=min(config.val_windows, len(val_set)), replace=False)))
    return _Data(train_set, val_windows, len(val_files), probe_frames(train_set, config.probe_frames, config.seed))


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    resume: bool = False,
    json_path: str | Path | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Train a world model on the episode dataset `data_dir`, checkpointing into `out_dir`.

    Returns the final validation metrics (also written to `json_path` on rank 0). `stop_at`
    ends the run early at that step with a resumable checkpoint, as an interruption would.
    """
    out_dir = Path(out_dir)
    device_kind = "cuda" if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()) else "cpu"
    ddp = _init_distributed(device_kind)
    device = _device(config.device, ddp.local_rank)
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
        if model.config != model_config:
            raise ConfigError(f"{out_dir}: the checkpoint's model config differs from this run's; resume with the same config and data")
        start_step, history_log = state.step, state.history
    else:
        if (out_dir / "config.json").exists() and not resume:
            raise FileExistsError(f"{out_dir} already holds a checkpoint; pass --resume to continue it or choose another --out")
        torch.manual_seed(config.seed)
        model = WorldModel(model_config)
    model.to(device).train()
    optimizer = _optimizer(model, config)
    if state is not None:
        optimizer.load_state_dict(state.optimizer)
        if state.rng_state is not None:
            torch.set_rng_state(state.rng_state)

    objective: nn.Module = Objective(model, config)
    if ddp.world_size > 1:
        objective = nn.parallel.DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)

    def checkpoint(step: int, metrics: dict[str, Any]) -> None:
        if ddp.main:
            state = TrainState(step, optimizer.state_dict(), to_dict(config), torch.get_rng_state(), history_log)
            save_checkpoint(out_dir, model, state, _json_ready(metrics))

    bar = None
    if progress and ddp.main:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True, file=sys.stderr)
    last_step = config.steps if stop_at is None else min(stop_at, config.steps)
    metrics: dict[str, Any] = dict(history_log[-1]) if history_log else {}
    started = time.perf_counter()
    running = {"loss": float("nan"), "pred": float("nan"), "reg": float("nan")}
    for step in range(start_step, last_step):
        lr = learning_rate(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = train_set.sample(config.batch_size, np.random.default_rng([config.seed, ddp.rank, step])).to(device)
        losses = objective(batch.observations, batch.actions, step)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        running = {k: float(v.detach()) for k, v in losses.items()}
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{running['loss']:.4f}", pred=f"{running['pred']:.4f}", reg=f"{running['reg']:.3f}")
        done = step + 1
        if done % config.eval_every == 0 or done == last_step:
            _average_buffers(model, ddp.world_size)
            metrics = evaluate(model, data.val_windows.to(device), data.probe_train, config.sigreg, config.probe_ridge)
            metrics.update(step=done, train_loss=running["loss"], train_pred_loss=running["pred"], train_reg=running["reg"], lr=lr)
            history_log.append(_json_ready(metrics))
            if ddp.main:
                probe = "n/a" if metrics["probe_r2"] is None else f"{metrics['probe_r2']:.3f}"
                line = (f"step {done}: val pred {metrics['pred_loss']:.4f} (copy {metrics['copy_baseline_loss']:.4f}), "
                        f"rank {metrics['effective_rank']:.1f}, sigreg {metrics['sigreg']:.2f}, probe R2 {probe}")
                if bar is not None:
                    bar.write(line, file=sys.stderr)
                else:
                    print(line, file=sys.stderr, flush=True)
            checkpoint(done, metrics)
    if bar is not None:
        bar.close()
    if not metrics:
        metrics = evaluate(model, data.val_windows.to(device), data.probe_train, config.sigreg, config.probe_ridge)
        metrics.update(step=start_step)
    result = _json_ready({**metrics, "elapsed_s": time.perf_counter() - started, "world_size": ddp.world_size,
                          "train_episodes": train_set.n_episodes, "val_episodes": data.val_episodes,
                          "train_frames": train_set.n_frames, "checkpoint": str(out_dir)})
    if json_path is not None and ddp.main:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({**result, "history": history_log}, indent=2))
    if ddp.world_size > 1:
        dist.barrier()
    return result
