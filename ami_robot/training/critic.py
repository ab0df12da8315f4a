"""The critic stage: train the cost module's critic C(z, g) on a frozen world model.

Every frame of the episodes is encoded once by the frozen encoder. A training pair is an input
state at model step t of an episode (the encoded frame when r = 0, else the frozen predictor's
rollout of the r true action blocks since frame t - r: the latents a planner sees) and a goal,
the encoded frame k model steps after t, with target k (r <= rollout_steps, k <= max_offset, both
inside the episode). Batches and the learning rate are pure functions of (seed, step), so a
resumed run retraces the uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import itertools
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
from ami_robot.data.windows import split_episode_files
from ami_robot.errors import DataError
from ami_robot.training.config import CriticTrainConfig, TrainConfig, learning_rate
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
    CRITIC_TRAIN_STATE,
    TrainState,
    load_checkpoint,
    read_config,
    save_checkpoint,
)
from ami_robot.world_model.critic import Critic
from ami_robot.world_model.model import WorldModel
from ami_robot.world_model.rollout import autoregressive_rollout

logger = logging.getLogger(__name__)

STATE_DISTANCE_BINS = 10


@dataclass
class Pairs:
    """A batch of pairs: input history (B, k, D) and rollout action blocks (B, R, f*A) (rollout
    from the history's newest frame, `rollout_steps` (B,) of them used), goal latents (B, D),
    target steps (B,) and the frame indices (B,) of the input state and the goal."""

    history: torch.Tensor
    actions: torch.Tensor
    rollout_steps: torch.Tensor
    goal: torch.Tensor
    steps: torch.Tensor
    input_frame: np.ndarray
    goal_frame: np.ndarray

    def to(self, device: torch.device) -> Pairs:
        return dataclasses.replace(
            self,
            history=self.history.to(device),
            actions=self.actions.to(device),
            rollout_steps=self.rollout_steps.to(device),
            goal=self.goal.to(device),
            steps=self.steps.to(device),
        )


class PairSampler:
    """Draws `Pairs` from `LatentEpisodes` for a model of `history` frames and `frameskip`."""

    def __init__(self, episodes: LatentEpisodes, history: int, frameskip: int, config: CriticTrainConfig) -> None:
        self.episodes = episodes
        self.history, self.frameskip = history, frameskip
        self.rollout_steps, self.max_offset = config.rollout_steps, config.max_offset
        frames = np.arange(episodes.n_frames)
        has_history = frames - (history - 1) * frameskip >= episodes.first_frame
        has_next = frames + frameskip <= episodes.last_frame
        self.anchors = frames[has_history & has_next]
        if len(self.anchors) == 0:
            raise DataError(
                f"episodes too short for a history of {history} frames and one step at frameskip {frameskip}"
            )

    def sample(self, batch_size: int, rng: np.random.Generator) -> Pairs:
        """`batch_size` pairs: anchor frame a (the rollout's start), r in [0, rollout_steps], k in
        [0, max_offset], uniform, both shortened to fit in the anchor's episode."""
        e, f = self.episodes, self.frameskip
        anchor = self.anchors[rng.integers(0, len(self.anchors), size=batch_size)]
        steps_left = (e.last_frame[anchor] - anchor) // f  # >= 1
        r = rng.integers(0, np.minimum(self.rollout_steps, steps_left - 1) + 1)
        k = rng.integers(0, np.minimum(self.max_offset, steps_left - r) + 1)
        input_frame = anchor + r * f
        goal_frame = input_frame + k * f
        history_frames = anchor[:, None] - f * np.arange(self.history - 1, -1, -1)[None, :]
        R = max(self.rollout_steps, 1)
        action_frames = anchor[:, None, None] + f * np.arange(R)[None, :, None] + np.arange(f)[None, None, :]
        action_frames = np.minimum(action_frames, e.n_frames - 1)  # steps past r are computed, never used
        return Pairs(
            history=e.latents[torch.from_numpy(history_frames)],
            actions=e.actions[torch.from_numpy(action_frames)].flatten(2),
            rollout_steps=torch.from_numpy(r),
            goal=e.latents[torch.from_numpy(goal_frame)],
            steps=torch.from_numpy(k).float(),
            input_frame=input_frame,
            goal_frame=goal_frame,
        )


@torch.no_grad()
def input_states(model: WorldModel, pairs: Pairs) -> torch.Tensor:
    """The input latent of each pair (B, D): the history's newest frame rolled out through the
    frozen predictor for `rollout_steps` of the pair's true action blocks."""
    newest = pairs.history[:, -1]
    if pairs.actions.shape[1] == 0 or int(pairs.rollout_steps.max()) == 0:
        return newest
    rolled = autoregressive_rollout(model.predictor, pairs.history, pairs.actions)  # (B, R, D)
    predicted = torch.cat([newest[:, None], rolled], dim=1)
    return predicted[torch.arange(len(newest), device=newest.device), pairs.rollout_steps]


def critic_loss(critic: Critic, z: torch.Tensor, pairs: Pairs, config: CriticTrainConfig) -> torch.Tensor:
    """The critic's loss on input states z (B, D) and `pairs` (a scalar; see `CriticObjective`)."""
    embedded, embedded_goal = critic.embed(z), critic.embed(pairs.goal)
    predicted = critic.distance(embedded, embedded_goal)
    if config.objective == "regression":
        return F.mse_loss(torch.log1p(predicted), torch.log1p(pairs.steps))
    shuffled_goal = embedded_goal.roll(1, dims=0)
    random_pairs = critic.distance(embedded, shuffled_goal)
    push = F.softplus(config.quasimetric_cap - random_pairs).mean() / config.quasimetric_cap
    violation = torch.relu(predicted - pairs.steps).square().mean()
    return push + config.constraint_weight * violation


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman rank correlation of two (N,) tensors (ties ranked by order)."""

    def ranks(v: torch.Tensor) -> torch.Tensor:
        r = torch.empty_like(v, dtype=torch.float64)
        r[v.argsort()] = torch.arange(len(v), dtype=torch.float64)
        return r

    rx, ry = ranks(x.flatten()), ranks(y.flatten())
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(rx.norm() * ry.norm())
    return float((rx * ry).sum()) / denominator if denominator > 0 else float("nan")


@dataclass
class CriticValidation:
    """Fixed held-out pairs (episode pairs and random frame pairs) and the metrics on them."""

    pairs: Pairs
    inputs: torch.Tensor
    random_a: np.ndarray
    random_b: np.ndarray
    episodes: LatentEpisodes

    @classmethod
    def build(
        cls, model: WorldModel, sampler: PairSampler, count: int, seed: int, device: torch.device
    ) -> CriticValidation:
        rng = np.random.default_rng([seed, 3])
        pairs = sampler.sample(count, rng).to(device)
        n = sampler.episodes.n_frames
        return cls(
            pairs, input_states(model, pairs), rng.integers(0, n, count), rng.integers(0, n, count), sampler.episodes
        )

    @torch.no_grad()
    def metrics(self, critic: Critic) -> dict[str, Any]:
        """critic_spearman_steps (and _predicted: inputs from rollouts only), critic_mae_steps,
        the latent-L2 baseline, and over random frame pairs the rank correlation with the true
        state distance and mean C and |z - g|^2 in equal bins of state distance (monotone over the
        whole space, or flat where latent L2 saturates)."""
        was_training = critic.training
        critic.eval()
        device = self.inputs.device
        predicted = critic(self.inputs, self.pairs.goal).cpu()
        steps = self.pairs.steps.cpu()
        latent_l2 = (self.inputs - self.pairs.goal).square().sum(-1).cpu()
        from_rollout = (self.pairs.rollout_steps > 0).cpu()
        z = self.episodes.latents
        a, b = torch.from_numpy(self.random_a), torch.from_numpy(self.random_b)
        critic_random = critic(z[a].to(device), z[b].to(device)).cpu()
        l2_random = (z[a] - z[b]).square().sum(-1)
        state_distance = torch.from_numpy(
            np.linalg.norm(self.episodes.states[self.random_a] - self.episodes.states[self.random_b], axis=-1)
        )
        metrics: dict[str, Any] = {
            "critic_spearman_steps": spearman(predicted, steps),
            "critic_spearman_steps_predicted": spearman(predicted[from_rollout], steps[from_rollout])
            if int(from_rollout.sum()) > 1
            else None,
            "critic_mae_steps": float((predicted - steps).abs().mean()),
            "latent_l2_spearman_steps": spearman(latent_l2, steps),
        }
        if self.episodes.states.shape[-1] > 0:
            metrics["critic_spearman_state_distance"] = spearman(critic_random, state_distance)
            metrics["latent_l2_spearman_state_distance"] = spearman(l2_random, state_distance)
            metrics["by_state_distance"] = _binned(state_distance, critic_random, l2_random)
        critic.train(was_training)
        return metrics


def _binned(distance: torch.Tensor, critic: torch.Tensor, latent_l2: torch.Tensor) -> list[dict[str, float]]:
    """Mean critic and latent L2 in STATE_DISTANCE_BINS equal-width bins of true state distance."""
    edges = torch.linspace(0, float(distance.max()) + 1e-9, STATE_DISTANCE_BINS + 1, dtype=distance.dtype)
    rows = []
    for low, high in itertools.pairwise(edges.tolist()):
        inside = (distance >= low) & (distance < high)
        if int(inside.sum()) > 0:
            rows.append(
                {
                    "state_distance": float((low + high) / 2),
                    "pairs": int(inside.sum()),
                    "critic": float(critic[inside].mean()),
                    "latent_l2": float(latent_l2[inside].mean()),
                }
            )
    return rows


def train_critic(
    data_dir: DataSource,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    resume: bool = False,
    json_path: str | Path | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Train the critic of the world model in `out_dir` (frozen) on the episodes in `data_dir`
    (the same held-out split as the world model's training), writing it into the same checkpoint.

    Returns the final validation metrics (also written to `json_path`, with their history).
    `stop_at` ends early at that critic step with a resumable checkpoint. One process."""
    config = config or TrainConfig()
    c = config.critic
    if c.steps < 1:
        raise ConfigError("the critic stage needs critic.steps >= 1 (--critic-steps)")
    out_dir = Path(out_dir)
    device = rank_device(config.device, 0)
    model = frozen(load_checkpoint(out_dir, map_location=device))
    critic_config = dataclasses.replace(c.model, latent_dim=model.latent_dim)
    held, matches = model.critic is not None, model.config.critic == critic_config
    state = resumed_stage_state(out_dir, CRITIC_TRAIN_STATE, resume, held, matches, "critic")
    start_step, history_log = (state.step, state.history) if state is not None else (0, [])
    if state is None:
        torch.manual_seed(config.seed)
        model.attach_critic(Critic(critic_config))
    critic = model.critic
    assert critic is not None
    critic.to(device).train()
    optimizer = adamw(critic, c)
    restore(optimizer, state)

    train_files, val_files = split_episode_files(data_dir, config.val_fraction, config.seed)
    sampler = PairSampler(
        encode_episodes(model, train_files, config.max_frames, progress), model.history, model.frameskip, c
    )
    val_sampler = (
        PairSampler(encode_episodes(model, val_files), model.history, model.frameskip, c) if val_files else sampler
    )
    validation = CriticValidation.build(model, val_sampler, c.val_pairs, config.seed, device)
    _, world_model_metrics = read_config(out_dir)
    critic_data = {**dataset_provenance(data_dir), "train_frames": sampler.episodes.n_frames}

    def checkpoint(step: int, metrics: dict[str, Any]) -> None:
        state = TrainState(step, optimizer.state_dict(), to_dict(config), torch.get_rng_state(), history_log)
        recorded = {**world_model_metrics, "critic": metrics, "critic_data": critic_data}
        save_checkpoint(out_dir, model, state, json_ready(recorded), train_state_name=CRITIC_TRAIN_STATE)

    last_step = c.steps if stop_at is None else min(stop_at, c.steps)
    metrics: dict[str, Any] = dict(history_log[-1]) if history_log else {}
    started = time.perf_counter()
    with Progress(progress, c.steps, start_step, "critic") as bar:
        for step in range(start_step, last_step):
            lr = learning_rate(c, step)
            pairs = sampler.sample(c.batch_size, np.random.default_rng([config.seed, 2, step])).to(device)
            loss = critic_loss(critic, input_states(model, pairs), pairs, c)
            optimisation_step(optimizer, loss, critic.parameters(), lr, c.grad_clip)
            loss_value = float(loss.detach())
            bar.advance(loss=f"{loss_value:.4f}")
            done = step + 1
            if done % c.eval_every == 0 or done == last_step:
                metrics = json_ready({**validation.metrics(critic), "step": done, "train_loss": loss_value, "lr": lr})
                history_log.append(metrics)
                bar.report(_validation_line(metrics))
                checkpoint(done, metrics)
    if not metrics:
        metrics = json_ready({**validation.metrics(critic), "step": start_step})
    frames = {"train_frames": sampler.episodes.n_frames, "val_frames": validation.episodes.n_frames}
    return stage_result(metrics, started, frames, out_dir, json_path, history_log)


def _validation_line(metrics: dict[str, Any]) -> str:
    line = (
        f"critic step {metrics['step']}: spearman vs steps {metrics['critic_spearman_steps']:.3f} "
        f"(latent L2 {metrics['latent_l2_spearman_steps']:.3f}), MAE {metrics['critic_mae_steps']:.2f} steps"
    )
    if "critic_spearman_state_distance" in metrics:
        line += (
            f", spearman vs state distance {metrics['critic_spearman_state_distance']:.3f} "
            f"(latent L2 {metrics['latent_l2_spearman_state_distance']:.3f})"
        )
    return line
