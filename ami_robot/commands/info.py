"""`ami-robot info CHECKPOINT`: what a checkpoint holds, in one screen.

ami-robot info ami_robot/checkpoints/tworoom [--json PATH]

The model, its parameter counts (from the safetensors header, without loading a tensor), the
critic and the predictor ensemble, the action bounds and normalisation, the training metrics, the
data it was trained on as far as the checkpoint records it, whether training can resume, the brain
settings beside it and how they plan here (the search, and the backend `auto` picks on this
machine for this model), and the checksum state: the full load of
`ami_robot.world_model.load_checkpoint` (SHA-256 against config.json, tensor names and shapes
against the config, finite weights). Exit code 0 when the checkpoint loads, 2 when it does not
(the reason is printed in the checksum line).
"""

from __future__ import annotations

import argparse
import json
import struct
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
METRIC_LABELS = {
    "pred_loss": "val pred",
    "copy_baseline_loss": "copy baseline",
    "rollout_loss": "rollout",
    "effective_rank": "effective rank",
    "probe_r2": "probe R2",
    "sigreg": "sigreg",
}
DATA_KEYS = ("data", "critic_data", "ensemble_data")
"""The checkpoint's records of the datasets its world model, its critic and its ensemble learned from
(`ami_robot.data.episodes.dataset_provenance`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="checkpoint directory (config.json + model.safetensors)")
    parser.add_argument("--json", type=Path, help="also write what is shown here as JSON")


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file: tensor name -> {"dtype", "shape", "data_offsets"}."""
    with path.open("rb") as stream:
        (length,) = struct.unpack("<Q", stream.read(8))
        header = json.loads(stream.read(length))
    header.pop("__metadata__", None)
    return header


def parameter_counts(header: dict[str, Any]) -> tuple[Counter[str], int]:
    """Parameters per top-level module (encoder, projector, predictor, critic, ...) and bytes in all."""
    counts: Counter[str] = Counter()
    size = 0
    for name, tensor in header.items():
        elements = 1
        for side in tensor["shape"]:
            elements *= side
        counts[name.split(".", 1)[0]] += elements
        size += elements * DTYPE_BYTES.get(tensor["dtype"], 4)
    return counts, size


def checksum_state(directory: Path) -> tuple[bool, str]:
    """(loads, what was checked or why it failed), by the checkpoint code's own full load."""
    from ami_robot.errors import CheckpointError
    from ami_robot.world_model import load_checkpoint

    recorded = json.loads((directory / "config.json").read_text()).get("sha256", {}).get("model.safetensors")
    try:
        load_checkpoint(directory)
    except CheckpointError as exc:
        return False, f"FAILED: {' '.join(str(exc).split())}"
    if recorded is None:
        return True, "loads; no SHA-256 recorded in config.json (weights not verified)"
    return True, f"OK: SHA-256 {recorded[:12]}... matches config.json; tensors match the config; all finite"


def describe(directory: Path) -> dict[str, Any]:
    """Everything `info` shows, as plain data."""
    from ami_robot.world_model.checkpoint import read_config

    config, metrics = read_config(directory)
    counts, size = parameter_counts(safetensors_header(directory / "model.safetensors"))
    loads, checksum = checksum_state(directory)
    train_state = directory / "train_state.json"
    resume = json.loads(train_state.read_text()) if train_state.is_file() else None
    return {
        "checkpoint": str(directory),
        "model": asdict(config),
        "parameters": dict(counts),
        "weights_bytes": size,
        "metrics": metrics,
        "data": {key: metrics[key] for key in DATA_KEYS if isinstance(metrics.get(key), dict)},
        "train_state": None if resume is None else {"step": resume.get("step"), "config": resume.get("train_config")},
        "settings_file": str(directory / "brain.yaml") if (directory / "brain.yaml").is_file() else None,
        "planner": planner_summary(directory, config),
        "loads": loads,
        "checksum": checksum,
    }


def planner_summary(directory: Path, config: Any) -> dict[str, Any]:
    """How the brain settings beside the checkpoint (or the defaults) plan with this model here: the
    search, and the backend (`backend_here`: what `auto` picks on this machine for this predictor)."""
    from ami_robot.config import load_yaml
    from ami_robot.configurator.settings import BrainSettings
    from ami_robot.errors import AmiRobotError
    from ami_robot.planning.backends import auto_backend

    path = directory / "brain.yaml"
    try:
        settings = load_yaml(BrainSettings, path) if path.is_file() else BrainSettings()
    except (AmiRobotError, ValueError) as exc:
        return {"error": str(exc)}
    s = settings.planner
    native, ensemble = config.predictor.kind == "mlp", config.ensemble > 0
    here = auto_backend(native, ensemble) if settings.backend == "auto" else settings.backend
    return {
        "method": settings.method,
        "samples": s.samples,
        "iterations": s.iterations,
        "elites": s.elites,
        "horizon": s.horizon,
        "replan_every": settings.replan_every,
        "backend": settings.backend,
        "backend_here": here,
    }


def _encoder_shape(encoder: dict[str, Any]) -> str:
    if encoder["kind"] == "vit":
        return f" dim {encoder['vit_dim']}"
    keypoints = f", {encoder['keypoints']} keypoints" if encoder["kind"] == "keypoints" else ""
    return f" channels {tuple(encoder['cnn_channels'])}{keypoints}"


def _data_line(record: dict[str, Any]) -> str:
    """A dataset record on one line, its digest cut to 12 hex digits (`--json` has it whole); of a
    record of several datasets, each one's name, episodes and digest; of a fine-tuned ensemble, the
    checkpoint it started from."""
    shown = []
    for key, value in record.items():
        if key == "sha256" and isinstance(value, str):
            value = value[:12]
        elif key == "datasets" and isinstance(value, list):
            value = "[" + "; ".join(_data_part(part) for part in value if isinstance(part, dict)) + "]"
        elif key == "fine_tuned_from" and isinstance(value, dict):
            before = value.get("ensemble_data")
            learned = f" (its ensemble learned from {before.get('name')})" if isinstance(before, dict) else ""
            value = f"{value.get('checkpoint')}{learned}"
        shown.append(f"{key} {value}")
    return ", ".join(shown)


def _data_part(record: dict[str, Any]) -> str:
    digest = record.get("sha256")
    return f"{record.get('name')}: {record.get('episodes')} episodes" + (
        f", sha256 {digest[:12]}" if isinstance(digest, str) else ""
    )


def _last_rollout_errors(record: Any) -> tuple[int, float, float] | None:
    """(rollout steps, members' mean MSE at the last step, joint predictor's) from an ensemble
    validation record; None when it does not hold both lists of numbers."""
    if not isinstance(record, dict):
        return None
    errors = [record.get(f"{k}_rollout_mse") for k in ("ensemble", "joint_predictor")]
    if not all(isinstance(e, list) and e and _is_number(e[-1]) for e in errors):
        return None
    return len(errors[0]), errors[0][-1], errors[1][-1]


def _numbers(values: Any) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]" if values else "not recorded"


def render(info: dict[str, Any]) -> str:
    """The one-screen text of `describe`'s result."""
    model, params, metrics = info["model"], info["parameters"], info["metrics"]
    encoder, predictor, critic = model["encoder"], model["predictor"], model["critic"]
    lines = [
        f"checkpoint  {info['checkpoint']}",
        f"model       latent {model['latent_dim']}, image {model['image_size']} px, history {model['history']}, "
        f"action dim {model['env_action_dim']}, frameskip {model['frameskip']}",
        f"  encoder   {encoder['kind']}{_encoder_shape(encoder)}"
        + f", feature {encoder['feature_dim']}: {params.get('encoder', 0) + params.get('projector', 0):,} params",
        f"  predictor {predictor['kind']} {predictor['hidden_dim']} x {predictor['depth']}, {predictor['activation']}: "
        f"{params.get('predictor', 0):,} params",
        "  critic    none"
        if critic is None
        else f"  critic    {critic['hidden_dim']} x {critic['depth']} -> {critic['embed_dim']}: "
        f"{params.get('critic', 0):,} params",
        f"  ensemble  {model['ensemble']} predictors: {params.get('ensemble', 0):,} params"
        if model.get("ensemble")
        else "  ensemble  none",
        f"  total     {sum(params.values()):,} params, {info['weights_bytes'] / 1e6:.1f} MB",
        f"actions     low {_numbers(model['action_low'])}, high {_numbers(model['action_high'])}; "
        f"mean {_numbers(model['action_mean'])}, std {_numbers(model['action_std'])}",
    ]
    shown = [f"{label} {metrics[key]:.4g}" for key, label in METRIC_LABELS.items() if _is_number(metrics.get(key))]
    step = f"step {metrics['step']}: " if "step" in metrics else ""
    lines.append(f"metrics     {step}{', '.join(shown) or 'none recorded'}")
    if isinstance(metrics.get("critic"), dict):
        critic_metrics = [f"{k} {v:.4g}" for k, v in metrics["critic"].items() if _is_number(v)][:6]
        lines.append(f"  critic    {', '.join(critic_metrics)}")
    if isinstance(metrics.get("ensemble"), dict):
        pooled = _last_rollout_errors(metrics["ensemble"])
        if pooled is not None:
            steps, members, joint = pooled
            lines.append(
                f"  ensemble  rollout MSE at step {steps}: members' mean {members:.4g}, joint predictor {joint:.4g}"
            )
        datasets = metrics["ensemble"].get("datasets")
        for record in datasets if isinstance(datasets, list) else []:
            errors = _last_rollout_errors(record)
            if errors is not None:
                _, members, joint = errors
                lines.append(
                    f"            on {record.get('name')}: members' mean {members:.4g}, joint predictor {joint:.4g}"
                )
    sources = {key: _data_line(record) for key, record in info["data"].items()}
    lines.append(f"data        {sources.get('data') or 'not recorded in this checkpoint'}")
    if "critic_data" in sources:
        lines.append(f"  critic    {sources['critic_data']}")
    if "ensemble_data" in sources:
        lines.append(f"  ensemble  {sources['ensemble_data']}")
    resume = info["train_state"]
    lines.append(f"training    {'resumable from step ' + str(resume['step']) if resume else 'final (no train state)'}")
    lines.append(f"settings    {info['settings_file'] or 'none (the built-in BrainSettings defaults)'}")
    p = info["planner"]
    if "error" in p:
        lines.append(f"  planner   settings not readable: {p['error']}")
    else:
        auto = f": {p['backend_here']} here" if p["backend"] == "auto" else ""
        lines.append(
            f"  planner   {p['method']} {p['samples']} x {p['iterations']}, top {p['elites']}, horizon {p['horizon']}, "
            f"replan every {p['replan_every']}; backend {p['backend']}{auto}"
        )
    lines.append(f"checksum    {info['checksum']}")
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def run(args: argparse.Namespace) -> int:
    from ami_robot.errors import CheckpointError

    directory = args.checkpoint.expanduser().resolve()
    if not (directory / "config.json").is_file() or not (directory / "model.safetensors").is_file():
        raise CheckpointError(f"{directory}: not a checkpoint (expected config.json and model.safetensors)")
    info = describe(directory)
    print(render(info))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(info, indent=2, default=str))
    return 0 if info["loads"] else 2
