"""Health metrics of a world model, computed on held-out windows.

pred_loss            one-step prediction MSE (teacher forcing) in latent space
copy_baseline_loss   MSE of predicting z_{t+1} = z_t; a useful predictor is well below it
rollout_loss         MSE of the autoregressive rollout over the horizon (horizon > 1 only)
effective_rank       exp(entropy) of the normalised singular values of centred embeddings
                     (RankMe); 1 means collapse to a line, latent_dim is the maximum
std_min/mean/max     per-dimension standard deviation of the embeddings
sigreg               SIGReg statistic of the embeddings (about 1 for N(0, I), grows with N under collapse)
probe_r2             R^2 of a ridge regression from z to the true state, fit on training
                     frames and scored on validation frames (None without states)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ami_robot.data.windows import EpisodeWindows, Windows
from ami_robot.training.losses import copy_baseline_mse
from ami_robot.world_model.model import WorldModel
from ami_robot.world_model.sigreg import SIGRegConfig, sigreg


def effective_rank(z: torch.Tensor) -> float:
    """RankMe effective rank of embeddings z (N, D)."""
    s = torch.linalg.svdvals((z - z.mean(0)).double())
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return float(torch.exp(entropy))


def ridge_probe_r2(
    z_train: torch.Tensor, y_train: torch.Tensor, z_val: torch.Tensor, y_val: torch.Tensor, ridge: float = 1e-3
) -> float:
    """Fit y = [z, 1] W by ridge regression on train, return mean R^2 over the state dims on val."""
    z_mean, z_std = z_train.mean(0), z_train.std(0).clamp_min(1e-6)

    def features(z: torch.Tensor) -> torch.Tensor:
        z = ((z - z_mean) / z_std).double()
        return torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], dim=1)

    x = features(z_train)
    gram = x.T @ x + ridge * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
    w = torch.linalg.solve(gram, x.T @ y_train.double())
    residual = y_val.double() - features(z_val) @ w
    total = y_val.double() - y_val.double().mean(0)
    varying = total.square().sum(0) > 1e-12
    if not bool(varying.any()):
        return float("nan")
    r2 = 1 - residual.square().sum(0)[varying] / total.square().sum(0)[varying]
    return float(r2.mean())


@torch.no_grad()
def encode_batched(model: WorldModel, observations: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """uint8 (N, S, S, 3) -> z (N, D) on CPU, in chunks."""
    return torch.cat(
        [model.encode(observations[i : i + batch_size]).float().cpu() for i in range(0, len(observations), batch_size)]
    )


@torch.no_grad()
def evaluate(
    model: WorldModel,
    val: Windows,
    probe_train: tuple[torch.Tensor, torch.Tensor] | None = None,
    sigreg_config: SIGRegConfig | None = None,
    probe_ridge: float = 1e-3,
) -> dict[str, float | None]:
    """Health metrics on validation windows; `probe_train` = (observations, states) for the probe."""
    was_training = model.training
    model.eval()
    b, length = val.observations.shape[:2]
    k = model.history
    z = encode_batched(model, val.observations.flatten(0, 1)).view(b, length, -1)
    actions = val.actions.to(z.dtype)
    device = model.device
    predictions = torch.stack(
        [model.predict(z[:, j - k : j].to(device), actions[:, j - 1].to(device)).cpu() for j in range(k, length)], 1
    )
    metrics: dict[str, float | None] = {
        "pred_loss": float(F.mse_loss(predictions, z[:, k:])),
        "copy_baseline_loss": float(copy_baseline_mse(z[:, k - 1 : -1], z[:, k:])),
    }
    if length - k > 1:
        rolled = model.rollout(z[:, :k].to(device), actions[:, k - 1 :].to(device)).cpu()
        metrics["rollout_loss"] = float(F.mse_loss(rolled, z[:, k:]))
    frames = z[:, 0]
    std = frames.std(0)
    metrics.update(
        effective_rank=effective_rank(frames),
        std_min=float(std.min()),
        std_mean=float(std.mean()),
        std_max=float(std.max()),
        sigreg=float(sigreg(frames, step=0, config=sigreg_config or SIGRegConfig(), reduce_across_processes=False)),
        probe_r2=None,
    )
    if probe_train is not None and val.states.shape[-1] > 0:
        train_obs, train_states = probe_train
        r2 = ridge_probe_r2(encode_batched(model, train_obs), train_states, frames, val.states[:, 0], probe_ridge)
        metrics["probe_r2"] = None if math.isnan(r2) else r2
    model.train(was_training)
    return metrics


def probe_frames(windows: EpisodeWindows, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random subset of `count` training frames (observations, states) for the probe."""
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(windows.n_frames, size=min(count, windows.n_frames), replace=False))
    return windows.frames(indices)
