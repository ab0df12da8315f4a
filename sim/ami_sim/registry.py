"""Command-line names (tworoom, pusht, reacher) -> gymnasium ids, environments and their experts."""

from __future__ import annotations

import importlib
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
    for spec in SPECS.values():
        if spec.gym_id not in gym.registry:
            gym.register(spec.gym_id, entry_point=spec.env_entry_point, max_episode_steps=spec.max_episode_steps)
    for former in FORMER_VERSIONS.values():
        if former.gym_id not in gym.registry:
            gym.register(former.gym_id, entry_point=former.entry_point, max_episode_steps=former.max_episode_steps)


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


def make_expert(
    name: str,
    noise: float = 0.0,
    seed: int | None = None,
    env: gym.Env | None = None,
    repeat_probability: float = 0.0,
) -> ExpertPolicy:
    """The scripted expert of `name` with Gaussian action noise `noise` and action repeats with
    probability `repeat_probability`, for `env`'s geometry (the default geometry when `env` is None)."""
    s = spec(name)
    own_env = env is None
    env = make_env(name) if own_env else env
    controller = _load(s.expert_entry_point)(env.unwrapped.config)
    action_space = env.action_space
    if own_env:
        env.close()
    return ExpertPolicy(controller, action_space, noise=noise, seed=seed, repeat_probability=repeat_probability)


def make_random(name: str, seed: int | None = None, env: gym.Env | None = None) -> RandomPolicy:
    """Uniform random actions in the action box of `env` (of a default env of `name` when None)."""
    own_env = env is None
    env = make_env(name) if own_env else env
    action_space = env.action_space
    if own_env:
        env.close()
    return RandomPolicy(action_space, seed=seed)
