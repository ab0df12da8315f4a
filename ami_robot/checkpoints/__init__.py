"""World models trained by this project's own commands and shipped with it, one folder per
simulated robot (model.safetensors + config.json, and brain.yaml: the planning settings they
were evaluated with). The recipes in `ami_robot/recipes/` name the commands that made them."""

from __future__ import annotations

from pathlib import Path

CHECKPOINTS = Path(__file__).resolve().parent


def shipped_envs() -> list[str]:
    """Names of the simulated robots that ship a world model, sorted."""
    return sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "config.json").is_file())


def shipped_checkpoint(env_name: str) -> Path:
    """The shipped checkpoint directory for `env_name` (tworoom, pusht, reacher)."""
    path = CHECKPOINTS / env_name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no shipped world model for {env_name!r} (shipped: {', '.join(shipped_envs()) or 'none'}); "
            f"train one with `ami-robot train` and pass --checkpoint DIR"
        )
    return path
