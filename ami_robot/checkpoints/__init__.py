"""World models trained by this project's own commands and shipped with it, one folder per
simulated robot (model.safetensors + config.json, and brain.yaml: the planning settings they
were evaluated with). The recipes in `ami_robot/recipes/` name the commands that made them."""

from __future__ import annotations

from pathlib import Path

from ami_robot.errors import CheckpointError

CHECKPOINTS = Path(__file__).resolve().parent


def shipped_envs() -> list[str]:
    """Names of the simulated robots that ship a world model, sorted."""
    return sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "config.json").is_file())


def shipped_checkpoint(env_name: str) -> Path:
    """The shipped checkpoint directory for `env_name` (tworoom, pusht, reacher); CheckpointError
    when none is shipped for it."""
    return checkpoint_for(env_name, None)


def checkpoint_for(env_name: str, checkpoint: Path | None) -> Path:
    """`checkpoint` when given, else the one shipped for `env_name`; resolved. CheckpointError when
    the directory holds no config.json."""
    path = CHECKPOINTS / env_name if checkpoint is None else checkpoint
    if not (path / "config.json").is_file():
        where = (
            f"no shipped world model for {env_name!r} (shipped: {', '.join(shipped_envs()) or 'none'})"
            if checkpoint is None
            else f"no trained world model at {path.resolve()} (expected config.json and model.safetensors)"
        )
        raise CheckpointError(
            f"{where}; train one with `ami-robot collect` and `ami-robot train`, then pass --checkpoint DIR"
        )
    return path.resolve()
