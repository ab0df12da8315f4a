"""World-model checkpoints: a directory of safetensors weights and JSON, never pickle.

    DIR/model.safetensors       WorldModel.state_dict() (the critic's tensors, if any, prefixed "critic.",
                                the predictor ensemble's "ensemble.members.<m>.")
    DIR/config.json             {"format", "world_model": WorldModelConfig, "metrics", "sha256"}
    DIR/train_state.safetensors optimizer tensors and RNG state        (only for resuming)
    DIR/train_state.json        step, optimizer hyper-parameters, training config, history
    DIR/critic_train_state.*    the same for the critic stage (a second stage on a frozen world model)
    DIR/ensemble_train_state.*  the same for the ensemble stage (another stage on the frozen world model)

config.json records the SHA-256 of model.safetensors, so a corrupted or swapped weight file is
reported instead of loaded. Loading checks config.json's sizes and the weight file's tensor shapes
against each other before the model is allocated, and refuses NaN or Inf weights. Each file is
written to a temporary name and renamed.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ami_robot.config import from_dict, to_dict
from ami_robot.digests import file_sha256
from ami_robot.errors import CheckpointError, ConfigError
from ami_robot.world_model.model import WorldModel, WorldModelConfig

FORMAT = "ami_robot.world_model/1"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAIN_STATE = "train_state"
CRITIC_TRAIN_STATE = "critic_train_state"
ENSEMBLE_TRAIN_STATE = "ensemble_train_state"
TRAIN_TENSORS_FILE = f"{TRAIN_STATE}.safetensors"
TRAIN_JSON_FILE = f"{TRAIN_STATE}.json"
LARGEST_SIZE = 1 << 16
"""No integer in a world-model config (a width, depth, image side) is larger: a bigger one is an
edited or corrupt config.json, refused before anything is allocated."""


@dataclass
class TrainState:
    """What resuming needs besides the weights. optimizer: a torch optimizer state_dict."""

    step: int
    optimizer: dict[str, Any]
    train_config: dict[str, Any]
    rng_state: torch.Tensor | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def _replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
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


def _recorded_sha256(data: dict[str, Any], file_name: str, json_path: Path) -> str | None:
    """The SHA-256 (64 hex digits) that `data["sha256"]` records for `file_name`; None when none is."""
    recorded = data.get("sha256", {})
    if not isinstance(recorded, dict):
        raise CheckpointError(f"{json_path}: sha256 must map file names to SHA-256 digests, got {recorded!r}")
    digest = recorded.get(file_name)
    if digest is not None and not (isinstance(digest, str) and re.fullmatch("[0-9a-f]{64}", digest)):
        raise CheckpointError(f"{json_path}: sha256.{file_name} must be 64 hexadecimal digits, got {digest!r}")
    return digest


def _check_sizes(value: Any, where: str, path: Path) -> None:
    """Raise CheckpointError naming the first integer in the JSON `value` above LARGEST_SIZE."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_sizes(item, f"{where}.{key}", path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_sizes(item, f"{where}[{index}]", path)
    elif isinstance(value, int) and not isinstance(value, bool) and value > LARGEST_SIZE:
        raise CheckpointError(f"{path}: {where} = {value} is larger than any model size ({LARGEST_SIZE})")


def _expected_shapes(config: WorldModelConfig, path: Path) -> dict[str, torch.Size]:
    """The shape of every tensor of a WorldModel(config), found without allocating it (meta device)."""
    try:
        with torch.device("meta"):
            skeleton = WorldModel(config)
    except (ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: world_model describes no buildable model: {exc}") from exc
    return {name: tensor.shape for name, tensor in skeleton.state_dict().items()}


def _check_finite(weights: dict[str, torch.Tensor], path: Path) -> None:
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: tensor {name!r} contains NaN or Inf")


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
    train_state_name: str = TRAIN_STATE,
) -> Path:
    """Write `model` (and optionally the state to resume training, as files `train_state_name`.*)
    into directory `path_dir`."""
    directory = Path(path_dir)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    model_path = directory / MODEL_FILE
    _replace_atomically(model_path, lambda tmp: save_file(weights, str(tmp), metadata={"format": FORMAT}))
    config = {
        "format": FORMAT,
        "world_model": to_dict(model.config),
        "metrics": metrics or {},
        "sha256": {MODEL_FILE: file_sha256(model_path)},
    }
    _write_json(directory / CONFIG_FILE, config)
    if train_state is not None:
        _save_train_state(directory, train_state, train_state_name)
    return directory


def read_config(path_dir: str | Path) -> tuple[WorldModelConfig, dict[str, Any]]:
    """(WorldModelConfig, metrics) from a checkpoint's config.json."""
    path = Path(path_dir) / CONFIG_FILE
    data = _read_json(path)
    if data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {data.get('format')!r}, expected {FORMAT!r}")
    _check_sizes(data.get("world_model"), "world_model", path)
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
    expected = _recorded_sha256(_read_json(directory / CONFIG_FILE), MODEL_FILE, directory / CONFIG_FILE)
    if not model_path.is_file():
        raise CheckpointError(f"{model_path}: missing")
    if expected is not None and file_sha256(model_path) != expected:
        raise CheckpointError(
            f"{model_path}: contents do not match the SHA-256 recorded in {CONFIG_FILE} (corrupt or replaced)"
        )
    weights = _read_tensors(model_path, map_location)
    wanted = _expected_shapes(config, directory / CONFIG_FILE)
    missing = sorted(set(wanted) - set(weights))
    unexpected = sorted(set(weights) - set(wanted))
    mismatched = [
        f"{k}: file {tuple(weights[k].shape)} vs config {tuple(wanted[k])}"
        for k in sorted(set(wanted) & set(weights))
        if weights[k].shape != wanted[k]
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
    _check_finite(weights, model_path)
    model = WorldModel(config)
    model.load_state_dict(weights)
    return model.to(map_location)


def _save_train_state(directory: Path, state: TrainState, stem: str) -> None:
    tensors_file, json_file = f"{stem}.safetensors", f"{stem}.json"
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
    _replace_atomically(directory / tensors_file, lambda tmp: save_file(tensors, str(tmp), metadata={"format": FORMAT}))
    _write_json(
        directory / json_file,
        {
            "format": FORMAT,
            "step": state.step,
            "param_groups": state.optimizer["param_groups"],
            "optimizer_scalars": scalars,
            "train_config": state.train_config,
            "history": state.history,
            "sha256": {tensors_file: file_sha256(directory / tensors_file)},
        },
    )


def has_train_state(path_dir: str | Path, name: str = TRAIN_STATE) -> bool:
    return (Path(path_dir) / f"{name}.json").is_file()


def load_train_state(path_dir: str | Path, name: str = TRAIN_STATE) -> TrainState:
    """The TrainState saved with a checkpoint (files `name`.*, default the world model's); raises
    CheckpointError when absent or damaged."""
    directory = Path(path_dir)
    tensors_file, json_file = f"{name}.safetensors", f"{name}.json"
    meta = _read_json(directory / json_file)
    tensor_path = directory / tensors_file
    expected = _recorded_sha256(meta, tensors_file, directory / json_file)
    if tensor_path.is_file() and expected is not None and file_sha256(tensor_path) != expected:
        raise CheckpointError(f"{tensor_path}: contents do not match the SHA-256 recorded in {json_file}")
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
        raise CheckpointError(f"{directory / json_file}: malformed train state ({exc})") from exc


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
