"""Command-line names (tworoom, pusht, reacher) -> gymnasium ids, environments and their experts."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from ami_sim.policies import ExpertPolicy, RandomPolicy


@dataclass(frozen=True)
class SimSpec:
    """One simulated robot: gymnasium id, `module:Class` of its env and of its scripted expert."""

    name: str
    gym_id: str
    env_entry_point: str
    expert_entry_point: str
    max_episode_steps: int


SPECS: dict[str, SimSpec] = {
    spec.name: spec
    for spec in (
        SimSpec("tworoom", "ami_sim/TwoRoom-v1", "ami_sim.tworoom:TwoRoomEnv", "ami_sim.tworoom:TwoRoomExpert", 100),
        SimSpec("pusht", "ami_sim/PushT-v1", "ami_sim.pusht:PushTEnv", "ami_sim.pusht:PushTExpert", 200),
        SimSpec("reacher", "ami_sim/Reacher-v1", "ami_sim.reacher:ReacherEnv", "ami_sim.reacher:ReacherExpert", 200),
    )
}
ENV_NAMES: tuple[str, ...] = tuple(SPECS)


@dataclass(frozen=True)
class FormerVersion:
    """An earlier version of an environment, kept under its gymnasium id for models trained on it."""

    gym_id: str
    entry_point: str
    max_episode_steps: int


FORMER_VERSIONS: dict[str, FormerVersion] = {
    former.gym_id: former
    for former in (
        FormerVersion("ami_sim/TwoRoom-v0", "ami_sim.tworoom:make_tworoom_v0", 100),
        FormerVersion("ami_sim/PushT-v0", "ami_sim.pusht:make_pusht_v0", 200),
        FormerVersion("ami_sim/Reacher-v0", "ami_sim.reacher:make_reacher_v0", 100),
    )
}


def register_envs() -> None:
    """Register every ami_sim environment with gymnasium (idempotent)."""
    registrations = [(s.gym_id, s.env_entry_point, s.max_episode_steps) for s in SPECS.values()]
    registrations += [(f.gym_id, f.entry_point, f.max_episode_steps) for f in FORMER_VERSIONS.values()]
    for gym_id, entry_point, max_episode_steps in registrations:
        if gym_id not in gym.registry:
            gym.register(gym_id, entry_point=entry_point, max_episode_steps=max_episode_steps)


def spec(name: str) -> SimSpec:
    if name not in SPECS:
        raise ValueError(f"unknown environment {name!r}; choose one of {', '.join(ENV_NAMES)}")
    return SPECS[name]


def make_env(name: str, **kwargs: Any) -> gym.Env:
    """`gymnasium.make` of the env called `name`; kwargs go to the env (image_size, config fields)
    or to gymnasium (max_episode_steps, disable_env_checker)."""
    register_envs()
    return gym.make(spec(name).gym_id, **kwargs)


def _load(entry_point: str) -> Any:
    module, attr = entry_point.split(":")
    return getattr(importlib.import_module(module), attr)


@contextlib.contextmanager
def _env_or_default(name: str, env: gym.Env | None) -> Iterator[gym.Env]:
    """`env`, or while the block runs a default env of `name` (closed after it)."""
    if env is not None:
        yield env
        return
    default = make_env(name)
    try:
        yield default
    finally:
        default.close()


def make_expert(
    name: str,
    noise: float = 0.0,
    seed: int | None = None,
    env: gym.Env | None = None,
    repeat_probability: float = 0.0,
    max_action: float | None = None,
) -> ExpertPolicy:
    """The scripted expert of `name` at pace `max_action` (None: full), with Gaussian action noise
    `noise` and action repeats with probability `repeat_probability` (`ExpertPolicy`), for `env`'s
    geometry (the default geometry when `env` is None)."""
    with _env_or_default(name, env) as geometry:
        controller = _load(spec(name).expert_entry_point)(geometry.unwrapped.config)
        action_space = geometry.action_space
    return ExpertPolicy(
        controller, action_space, noise=noise, seed=seed, repeat_probability=repeat_probability, max_action=max_action
    )


def make_random(name: str, seed: int | None = None, env: gym.Env | None = None) -> RandomPolicy:
    """Uniform random actions in the action box of `env` (of a default env of `name` when None)."""
    with _env_or_default(name, env) as geometry:
        action_space = geometry.action_space
    return RandomPolicy(action_space, seed=seed)
