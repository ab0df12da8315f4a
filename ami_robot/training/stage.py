"""What every training stage (the world model, then the critic and the ensemble) shares: the AdamW
set-up and its resumed state, one optimisation step, the progress bar with its validation lines, the
frozen world model of the later stages, and the final metrics written as strict JSON."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch import nn

from ami_robot.config import ConfigError
from ami_robot.training.config import OptimiserConfig
from ami_robot.world_model.checkpoint import TrainState, has_train_state, load_train_state
from ami_robot.world_model.model import WorldModel

logger = logging.getLogger(__name__)


def adamw(module: nn.Module, config: OptimiserConfig) -> torch.optim.Optimizer:
    """AdamW over `module`'s parameters at `config.lr`, decaying (by `config.weight_decay`) only
    weight matrices and kernels (dim >= 2), not biases and norm scales."""
    decay = [p for p in module.parameters() if p.dim() >= 2]
    no_decay = [p for p in module.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )


def restore(optimizer: torch.optim.Optimizer, state: TrainState | None) -> None:
    """Load a resumed run's optimizer state and torch RNG state (nothing for a fresh run)."""
    if state is None:
        return
    optimizer.load_state_dict(state.optimizer)
    if state.rng_state is not None:
        torch.set_rng_state(state.rng_state)


def optimisation_step(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    parameters: Iterable[nn.Parameter],
    lr: float,
    grad_clip: float,
) -> None:
    """One AdamW step on the scalar `loss` at learning rate `lr`, gradient norm clipped to
    `grad_clip` (0: no clipping)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()


class Progress:
    """A counter of `unit`s on stderr (tqdm) when `enabled`, with validation lines written above it;
    without it the lines go to the log. Use as a context manager: the bar closes on exit."""

    def __init__(self, enabled: bool, total: int, initial: int, desc: str, unit: str = "step") -> None:
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)

    def advance(self, **postfix: str) -> None:
        """Count one unit and show `postfix` (name -> formatted value) beside the bar."""
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(**postfix)

    def report(self, line: str) -> None:
        """A validation line: above the bar when there is one, else logged at INFO."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            logger.info(line)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.close()


def json_ready(value: Any) -> Any:
    """`value` with every non-finite float (nested in dicts and lists) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return value


def write_metrics(path: str | Path, result: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Write the final `result` and the validation `history` to `path` as strict JSON (NaN and
    Inf as null), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_ready({**result, "history": history}), indent=2, allow_nan=False))


def frozen(model: WorldModel) -> WorldModel:
    """`model` in eval mode with its encoder and predictor frozen (the later stages train beside them)."""
    model.eval()
    for parameter in [*model.encoder.parameters(), *model.predictor.parameters()]:
        parameter.requires_grad_(False)
    return model


def resumed_stage_state(
    out_dir: Path, state_name: str, resume: bool, held: bool, matches: bool, part: str
) -> TrainState | None:
    """The train state (files `state_name`.*) a later stage continues from; None: start afresh.
    `held`: the checkpoint already has the stage's `part`; `matches`: it has the architecture this
    run asks for. Raises ConfigError when resuming a `part` that differs, FileExistsError when
    starting afresh over one without `resume`."""
    if resume and has_train_state(out_dir, state_name):
        if not matches:
            raise ConfigError(
                f"{out_dir}: the checkpoint's {part} differs from this run's; resume with the same config"
            )
        return load_train_state(out_dir, state_name)
    if held:
        raise FileExistsError(f"{out_dir} already holds a {part}; pass --resume to continue it or choose another --out")
    return None


def stage_result(
    metrics: dict[str, Any],
    started: float,
    frames: dict[str, int],
    out_dir: Path,
    json_path: str | Path | None,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """A later stage's result: its last validation `metrics` with the seconds since `started`
    (time.perf_counter), the `frames` counts and the checkpoint, also written with the validation
    `history` to `json_path` when given."""
    result = json_ready({**metrics, "elapsed_s": time.perf_counter() - started, **frames, "checkpoint": str(out_dir)})
    if json_path is not None:
        write_metrics(json_path, result, history)
    return result
