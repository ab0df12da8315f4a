"""World-model checkpoints: a directory of safetensors weights and JSON, never pickle.

    DIR/model.safetensors       WorldModel.state_dict()
    DIR/config.json             {"format", "world_model": WorldModelConfig, "metrics", "sha256"}
    DIR/train_state.safetensors optimizer tensors and RNG state        (only for resuming)
    DIR/train_state.json        step, optimizer hyper-parameters, training config, history

config.json records the SHA-256 of model.safetensors, so a corrupted or swapped weight file is
reported instead of loaded. Each file is written to a temporary name and renamed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ami_robot.config import from_dict, to_dict
from ami_robot.errors import CheckpointError, ConfigError
from ami_robot.world_model.model import WorldModel, WorldModelConfig

FORMAT = "ami_robot.world_model/1"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAIN_TENSORS_FILE = "train_state.safetensors"
TRAIN_JSON_FILE = "train_state.json"


@dataclass
class TrainState:
    """What resuming needs besides the weights. optimizer: a torch optimizer state_dict."""

    step: int
    optimizer: dict[str, Any]
    train_config: dict[str, Any]
    rng_state: torch.Tensor | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _replace_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.chmod(tmp, 0o644)  # safetensors creates files readable by the owner only
    os.replace(tmp, path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _replace_atomically(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, allow_nan=False)))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a world-model checkpoint directory?)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def _read_tensors(path: Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return load_file(str(path), device=str(map_location))
    except Exception as exc:  # safetensors raises its own error types for bad headers/lengths
        raise CheckpointError(f"{path}: not a readable safetensors file, truncated or corrupt ({exc})") from exc


def save_checkpoint(
    path_dir: str | Path,
    model: WorldModel,
    train_state: TrainState | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write `model` (and optionally the state to resume training) into directory `path_dir`."""
    directory = Path(path_dir)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    model_path = directory / MODEL_FILE
    _replace_atomically(model_path, lambda tmp: save_file(weights, str(tmp), metadata={"format": FORMAT}))
    config = {
        "format": FORMAT,
        "world_model": to_dict(model.config),
        "metrics": metrics or {},
        "sha256": {MODEL_FILE: _sha256(model_path)},
    }
    _write_json(directory / CONFIG_FILE, config)
    if train_state is not None:
        _save_train_state(directory, train_state)
    return directory


def read_config(path_dir: str | Path) -> tuple[WorldModelConfig, dict[str, Any]]:
    """(WorldModelConfig, metrics) from a checkpoint's config.json."""
    path = Path(path_dir) / CONFIG_FILE
    data = _read_json(path)
    if data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {data.get('format')!r}, expected {FORMAT!r}")
    try:
        config = from_dict(WorldModelConfig, data.get("world_model"), where=f"{path.name}:world_model")
    except (ConfigError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid world_model config: {exc}") from exc
    return config, data.get("metrics", {})


def load_checkpoint(path_dir: str | Path, map_location: str | torch.device = "cpu") -> WorldModel:
    """Rebuild the WorldModel saved in `path_dir`; raises CheckpointError naming the bad file."""
    directory = Path(path_dir)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint directory does not exist")
    config, _ = read_config(directory)
    model_path = directory / MODEL_FILE
    expected = _read_json(directory / CONFIG_FILE).get("sha256", {}).get(MODEL_FILE)
    if not model_path.is_file():
        raise CheckpointError(f"{model_path}: missing")
    if expected is not None and _sha256(model_path) != expected:
        raise CheckpointError(
            f"{model_path}: contents do not match the SHA-256 recorded in {CONFIG_FILE} (corrupt or replaced)"
        )
    weights = _read_tensors(model_path, map_location)
    model = WorldModel(config)
    wanted = model.state_dict()
    missing = sorted(set(wanted) - set(weights))
    unexpected = sorted(set(weights) - set(wanted))
    mismatched = [
        f"{k}: file {tuple(weights[k].shape)} vs config {tuple(wanted[k].shape)}"
        for k in sorted(set(wanted) & set(weights))
        if weights[k].shape != wanted[k].shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            problems.append(f"unexpected tensors {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if mismatched:
            problems.append(f"shape mismatches {mismatched[:5]}{' ...' if len(mismatched) > 5 else ''}")
        raise CheckpointError(f"{model_path}: does not match {CONFIG_FILE}: " + "; ".join(problems))
    model.load_state_dict(weights)
    return model.to(map_location)


def _save_train_state(directory: Path, state: TrainState) -> None:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, param_state in state.optimizer["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    if state.rng_state is not None:
        tensors["rng.torch"] = state.rng_state.cpu()
    _replace_atomically(
        directory / TRAIN_TENSORS_FILE, lambda tmp: save_file(tensors, str(tmp), metadata={"format": FORMAT})
    )
    _write_json(
        directory / TRAIN_JSON_FILE,
        {
            "format": FORMAT,
            "step": state.step,
            "param_groups": state.optimizer["param_groups"],
            "optimizer_scalars": scalars,
            "train_config": state.train_config,
            "history": state.history,
            "sha256": {TRAIN_TENSORS_FILE: _sha256(directory / TRAIN_TENSORS_FILE)},
        },
    )


def has_train_state(path_dir: str | Path) -> bool:
    return (Path(path_dir) / TRAIN_JSON_FILE).is_file()


def load_train_state(path_dir: str | Path) -> TrainState:
    """The TrainState saved with a checkpoint; raises CheckpointError when absent or damaged."""
    directory = Path(path_dir)
    meta = _read_json(directory / TRAIN_JSON_FILE)
    tensor_path = directory / TRAIN_TENSORS_FILE
    expected = meta.get("sha256", {}).get(TRAIN_TENSORS_FILE)
    if tensor_path.is_file() and expected is not None and _sha256(tensor_path) != expected:
        raise CheckpointError(f"{tensor_path}: contents do not match the SHA-256 recorded in {TRAIN_JSON_FILE}")
    tensors = _read_tensors(tensor_path)
    try:
        optimizer_state: dict[Any, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                optimizer_state.setdefault(int(index), {})[name] = value
        for index, values in meta.get("optimizer_scalars", {}).items():
            optimizer_state.setdefault(int(index), {}).update(values)
        return TrainState(
            step=int(meta["step"]),
            optimizer={"state": optimizer_state, "param_groups": meta["param_groups"]},
            train_config=meta["train_config"],
            rng_state=tensors.get("rng.torch"),
            history=list(meta.get("history", [])),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{directory / TRAIN_JSON_FILE}: malformed train state ({exc})") from exc


@functools.lru_cache(maxsize=4)
def _cached_model(checkpoint: str, mtime_ns: int) -> WorldModel:
    model = load_checkpoint(checkpoint)
    model.eval()
    return model


def load_model(checkpoint: str | Path) -> WorldModel:
    """The world model in `checkpoint`, loaded once per process (nodes in one process share it)."""
    path = Path(checkpoint).resolve()
    config = path / "config.json"
    if not config.is_file():
        raise CheckpointError(f"no world-model checkpoint at {path} (expected config.json and model.safetensors)")
    return _cached_model(str(path), config.stat().st_mtime_ns)
