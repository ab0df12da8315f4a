"""Parallel episode collection into an `ami_robot.data.episodes` directory.

Each worker process owns one environment; episode i is reset with seed `seed + i`, so a dataset is
reproducible whatever the number of workers. Workers write each finished episode atomically
(temporary file, then rename); the parent rewrites `dataset.json` as episodes finish (at most every
0.5 s) and at the end. On Ctrl-C or SIGTERM the workers are stopped, half-written temporary files
removed, and the index rewritten: every finished episode stays. Should the parent die without
cleaning up (SIGKILL, out of memory), the kernel stops the workers too (`die_with_parent`).
Running again into the same directory removes what is half-written, rebuilds the index from the
episode files, and collects only the missing ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import queue
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ami_robot.data import episodes as dataset
from ami_robot.runtime import StopFlag, die_with_parent, stop_on_signals
from ami_sim.base import check_image_size
from ami_sim.policies import Policy, check_expert_noise_model
from ami_sim.registry import ENV_NAMES, make_env, make_expert, make_random, spec

PolicyName = Literal["expert", "random", "mixed"]
INDEX_PERIOD_S = 0.5  # dataset.json is rewritten at most this often while collecting, and at the end


@dataclass(frozen=True)
class CollectConfig:
    """What to collect. `noise`: expert action noise std; `repeat_probability`: chance that the expert
    repeats its previous action; `max_action`: the expert's pace (`ami_sim.policies.ExpertPolicy`,
    None: full); `mixed`: each episode is expert or random with probability 1/2 (drawn
    from the episode seed); `max_steps`: None = the env's time limit; `chain_goals`: on reaching a goal,
    draw the next one from where the robot stands and go on until `max_steps` (long trajectories
    for a critic that must learn far temporal distances)."""

    env: str
    episodes: int
    out: Path
    policy: PolicyName = "expert"
    noise: float = 0.1
    seed: int = 0
    workers: int = 0
    image_size: int = 64
    max_steps: int | None = None
    repeat_probability: float = 0.0
    chain_goals: bool = False
    max_action: float | None = None

    def __post_init__(self) -> None:
        if self.env not in ENV_NAMES:
            raise ValueError(f"unknown environment {self.env!r}; choose one of {', '.join(ENV_NAMES)}")
        if self.policy not in ("expert", "random", "mixed"):
            raise ValueError(f"policy must be expert, random or mixed, got {self.policy!r}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        check_image_size(self.image_size)
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        check_expert_noise_model(self.noise, self.repeat_probability, self.max_action)

    @property
    def num_workers(self) -> int:
        return max(1, min(self.workers or (os.cpu_count() or 1), self.episodes))


@dataclass(frozen=True)
class CollectSummary:
    episodes: int
    new_episodes: int
    steps: int
    successes: int
    seconds: float
    interrupted: bool

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0


def run_episode(env: Any, policy: Policy, seed: int, max_steps: int, chain_goals: bool = False) -> dataset.Episode:
    """Roll `policy` out in `env` from `reset(seed=seed)` until termination, truncation or `max_steps`.
    With `chain_goals`, reaching a goal instead resets the env with option `keep_state` (the robot stays,
    a new goal is drawn from the env's generator; the trajectory goes on without a seam) until `max_steps`."""
    observation, info = env.reset(seed=seed)
    policy.reset(info)
    observations, states, actions, rewards = [observation], [info["state"]], [], []
    goals_reached = 0
    for _ in range(max_steps):
        action = policy.act(observation, info)
        observation, reward, terminated, truncated, info = env.step(action)
        observations.append(observation)
        states.append(info["state"])
        actions.append(action)
        rewards.append(reward)
        goals_reached += bool(info["success"])
        if chain_goals and terminated and not truncated:
            reached = info["state"]
            observation, info = env.reset(options={"keep_state": True})
            if not np.array_equal(info["state"], reached):
                raise ValueError(f"{env.spec.id if env.spec else env} cannot chain goals (reset moved the robot)")
            policy.reset(info)
        elif terminated or truncated:
            break
    return dataset.Episode(
        observations=np.stack(observations),
        actions=np.stack(actions),
        states=np.stack(states),
        rewards=np.asarray(rewards, dtype=np.float32),
        goal_observation=info["goal_observation"],
        goal_state=info["goal_state"],
        attrs={"seed": seed, "success": goals_reached > 0, "goals_reached": goals_reached},
    )


class _Worker:
    """One environment and its policies, living in a worker process."""

    def __init__(self, config: CollectConfig):
        self.config = config
        self.max_steps = config.max_steps or spec(config.env).max_episode_steps
        self.env = make_env(config.env, image_size=config.image_size, max_episode_steps=self.max_steps)

    def policy_for(self, seed: int) -> tuple[str, Policy]:
        name = self.config.policy
        if name == "mixed":
            name = "expert" if np.random.default_rng([seed, 1]).random() < 0.5 else "random"
        if name == "expert":
            return name, make_expert(
                self.config.env,
                noise=self.config.noise,
                seed=seed,
                env=self.env,
                repeat_probability=self.config.repeat_probability,
                max_action=self.config.max_action,
            )
        return name, make_random(self.config.env, seed=seed, env=self.env)

    def __call__(self, index: int) -> tuple[int, int, bool]:
        seed = self.config.seed + index
        policy_name, policy = self.policy_for(seed)
        episode = run_episode(self.env, policy, seed, self.max_steps, self.config.chain_goals)
        noise = self.config.noise if policy_name == "expert" else 0.0
        episode.attrs.update(env=self.config.env, policy=policy_name, noise=noise)
        if policy_name == "expert" and self.config.max_action is not None:
            episode.attrs["max_action"] = self.config.max_action
        dataset.write_episode(self.config.out / dataset.episode_name(index), episode)
        return index, len(episode), bool(episode.attrs["success"])


def _worker_main(config: CollectConfig, indices: list[int], results: Any, parent_pid: int) -> None:
    """Worker process: collect `indices`, report each episode on `results`, then "done" (or "error").
    Ends when the parent process `parent_pid` dies."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the workers
    try:
        worker = _Worker(config)
        for index in indices:
            results.put(("episode", worker(index)))
        worker.env.close()
        results.put(("done", None))
    except BaseException:
        results.put(("error", traceback.format_exc()))


class _WorkerProcesses:
    """Worker processes with a static share of the episodes each (episode k*n + i to worker i); on exit
    any still running is terminated (SIGTERM, then SIGKILL), so stopping never waits on a worker."""

    def __init__(self, config: CollectConfig, todo: list[int]):
        context = mp.get_context("spawn")
        self.queue = context.Queue()
        n = config.num_workers
        self.processes = [
            context.Process(
                target=_worker_main,
                args=(config, todo[k::n], self.queue, os.getpid()),
                daemon=True,
                name=f"collect-{k}",
            )
            for k in range(n)
        ]

    def __enter__(self) -> _WorkerProcesses:
        for process in self.processes:
            process.start()
        return self

    def results(self, stop: StopFlag) -> Iterator[tuple[int, int, bool]]:
        """Finished episodes as the workers report them, until all are done or `stop` is set."""
        running = len(self.processes)
        while running and not stop.is_set():
            try:
                kind, payload = self.queue.get(timeout=0.1)
            except queue.Empty:
                if not any(p.is_alive() for p in self.processes):
                    raise RuntimeError("collect workers exited without reporting (crashed?)") from None
                continue
            if kind == "error":
                raise RuntimeError(f"a collect worker failed:\n{payload}")
            if kind == "done":
                running -= 1
            else:
                yield payload

    def __exit__(self, *exc: Any) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout=5.0)
            if process.is_alive():
                process.kill()
                process.join()
        self.queue.close()


def index_info(config: CollectConfig) -> dict[str, Any]:
    info = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("out", "workers")}
    info.update(env_id=spec(config.env).gym_id, episodes_requested=info.pop("episodes"))
    return info


def remove_partial_files(out: Path) -> None:
    for tmp in out.glob(".episode_*.tmp*"):
        tmp.unlink(missing_ok=True)


def collect(
    config: CollectConfig,
    progress: bool = True,
    on_episode: Callable[[int, int, bool], None] | None = None,
) -> CollectSummary:
    """Collect `config.episodes` episodes into `config.out` (see the module docstring)."""
    from tqdm import tqdm

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_partial_files(out)
    existing = dataset.read_index(out) if (out / dataset.INDEX).exists() else None
    if existing is not None and existing.get("env") not in (None, config.env):
        raise ValueError(f"{out} holds a {existing.get('env')!r} dataset, not {config.env!r}")
    done = {p.name for p in dataset.episode_files(out)}
    todo = [i for i in range(config.episodes) if dataset.episode_name(i) not in done]
    info = index_info(config)
    dataset.write_index(out, **info)
    steps = successes = 0
    start = time.perf_counter()
    already = config.episodes - len(todo)
    bar = tqdm(total=config.episodes, initial=already, desc=f"collect {config.env}", unit="ep", disable=not progress)
    # Ctrl-C and SIGTERM only set `stop`, checked between episodes (and restored once the index is written).
    with stop_on_signals() as stop:
        workers = contextlib.ExitStack()  # closing it stops the workers, before the final index is written
        try:
            if config.num_workers == 1:
                worker = _Worker(config)
                workers.callback(worker.env.close)
                results: Iterator[tuple[int, int, bool]] = map(worker, todo)
            else:
                results = workers.enter_context(_WorkerProcesses(config, todo)).results(stop)
            last_index_write = time.monotonic()
            for index, length, success in results:
                steps += length
                successes += success
                if time.monotonic() - last_index_write > INDEX_PERIOD_S:
                    dataset.write_index(out, **info)
                    last_index_write = time.monotonic()
                bar.update(1)
                bar.set_postfix(success=f"{successes}/{bar.n - already}")
                if on_episode is not None:
                    on_episode(index, length, success)
                if stop.is_set():
                    break
        finally:
            workers.close()
            bar.close()
            remove_partial_files(out)
            dataset.write_index(out, **info)
    total = len(dataset.episode_files(out))
    return CollectSummary(total, total - len(done), steps, successes, time.perf_counter() - start, stop.is_set())
