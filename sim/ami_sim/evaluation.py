"""Goal-conditioned evaluation from held-out expert trajectories, the LeWorldModel protocol.

Start and goal are two states `goal_offset_steps` apart on held-out noisy-expert trajectories
(generated with the expert, its noise model and seeds from `held_out_seed` up, disjoint from the
collection seeds 0, 1, ...; or read from a dataset directory). The policy gets the start observation
and the goal image and has `step_budget` steps; an episode succeeds as soon as the environment's
success test holds after a step. The time of every `policy.act` call is the planning time.

Pairs are drawn one of two ways (`EvalProtocol.pair_sampling`):
- "frame", as stable-worldmodel's `eval_wm.py` does (TwoRoom): the start is a uniformly drawn frame,
  among all frames at least goal_offset_steps + 1 before their episode's end, the goal the frame
  goal_offset_steps later; starts already at the goal count like any other. From a dataset the
  frames are drawn without replacement; from generated trajectories each is kept with probability
  (its valid frames) / (the most any trajectory has), then one of its valid frames drawn, which is
  the same uniform draw over the frames of an unlimited held-out set.
- "episode" (PushT, Reacher for now): one pair per trajectory, the start uniform among its frames
  not already at the goal.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ami_robot.data import episodes as dataset
from ami_sim.policies import Policy
from ami_sim.registry import make_env, make_expert, spec

PairSampling = Literal["frame", "episode"]


@dataclass(frozen=True)
class EvalProtocol:
    """Start/goal pairs and budget of one environment.

    goal_offset_steps: steps between start and goal on the expert trajectory; step_budget: steps the
    policy gets; expert_noise, expert_repeat_probability: the noise model of the expert that makes the
    held-out trajectories (`ami_sim.policies.ExpertPolicy`); held_out_seed: first reset seed of those
    trajectories (collection uses seeds from 0 up); trajectory_steps: their length limit (None: the
    env's time limit); pair_sampling: see the module docstring.
    """

    name: str = "lewm"
    goal_offset_steps: int = 25
    step_budget: int = 50
    expert_noise: float = 0.2
    expert_repeat_probability: float = 0.0
    held_out_seed: int = 1_000_000
    trajectory_steps: int | None = None
    pair_sampling: PairSampling = "episode"

    def __post_init__(self) -> None:
        if self.goal_offset_steps < 1 or self.step_budget < 1:
            raise ValueError("goal_offset_steps and step_budget must be >= 1")
        if self.trajectory_steps is not None and self.trajectory_steps < self.goal_offset_steps:
            raise ValueError(
                f"trajectory_steps {self.trajectory_steps} leaves no pair {self.goal_offset_steps} steps apart"
            )
        if self.pair_sampling not in ("frame", "episode"):
            raise ValueError(f"pair_sampling must be 'frame' or 'episode', got {self.pair_sampling!r}")


# TwoRoom "lewm": stable-worldmodel's tworoom.yaml (goal 25 steps ahead, 50 allowed) on trajectories
# of its data collection (expert with action noise 2.0 and repeat probability 0.05, at most 100 steps,
# ended at the goal). "long": the long-horizon setting, goal 100 ahead, 150 allowed; trajectories of
# up to 300 steps, since one of 100 steps holds a single start 100 steps from its end.
# PushT: the DINO-WM / LeWorldModel setting, 25 ahead with 50 steps. Reacher: 15 steps (0.3 s),
# because the noisy expert reaches a random configuration in a median of 22 steps.
_TWOROOM_LEWM = EvalProtocol(
    "lewm",
    goal_offset_steps=25,
    step_budget=50,
    expert_noise=2.0,
    expert_repeat_probability=0.05,
    pair_sampling="frame",
)
PROTOCOL_VARIANTS: dict[str, dict[str, EvalProtocol]] = {
    "tworoom": {
        "lewm": _TWOROOM_LEWM,
        "long": dataclasses.replace(
            _TWOROOM_LEWM, name="long", goal_offset_steps=100, step_budget=150, trajectory_steps=300
        ),
    },
    "pusht": {"lewm": EvalProtocol("lewm", goal_offset_steps=25, step_budget=50, expert_noise=0.2)},
    "reacher": {"short": EvalProtocol("short", goal_offset_steps=15, step_budget=30, expert_noise=0.3)},
}
PROTOCOLS: dict[str, EvalProtocol] = {env: next(iter(named.values())) for env, named in PROTOCOL_VARIANTS.items()}
"""Each environment's default protocol: the first of its variants."""


def protocol_for(env_name: str, name: str | None = None) -> EvalProtocol:
    """The protocol called `name` of `env_name` (its default when None)."""
    variants = PROTOCOL_VARIANTS[spec(env_name).name]
    if name is None:
        return PROTOCOLS[spec(env_name).name]
    if name not in variants:
        raise ValueError(f"unknown protocol {name!r} for {env_name}; choose one of {', '.join(variants)}")
    return variants[name]


@dataclass
class EpisodeRecord:
    start_state: list[float]
    goal_state: list[float]
    success: bool
    steps: int
    final_distance: float
    plan_ms: float
    states: list[list[float]] = field(repr=False, default_factory=list)
    distances: list[float] = field(repr=False, default_factory=list)


@dataclass
class EvalResult:
    env: str
    policy: str
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    mean_steps_to_success: float | None
    mean_plan_ms: float
    protocol: EvalProtocol
    seed: int
    records: list[EpisodeRecord] = field(repr=False, default_factory=list)

    def to_dict(self, with_trajectories: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["ci95"] = list(self.ci95)
        if not with_trajectories:
            for record in data["records"]:
                record.pop("states")
                record.pop("distances")
        return data


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


def _trajectory_steps(env_name: str, protocol: EvalProtocol) -> int:
    return protocol.trajectory_steps or spec(env_name).max_episode_steps


def _trajectories_from_expert(env_name: str, protocol: EvalProtocol, env: Any) -> Iterator[np.ndarray]:
    """(T+1, S) states of noisy-expert episodes from `env.reset(seed)`, seeds counting up from
    held_out_seed, each ended at the goal or after the protocol's trajectory_steps."""
    expert = make_expert(
        env_name,
        noise=protocol.expert_noise,
        seed=protocol.held_out_seed,
        env=env,
        repeat_probability=protocol.expert_repeat_probability,
    )
    max_steps = _trajectory_steps(env_name, protocol)
    for seed in itertools.count(protocol.held_out_seed):
        observation, info = env.reset(seed=seed)
        expert.reset(info)
        states = [info["state"]]
        while len(states) <= max_steps and not info["success"]:
            observation, _, _, _, info = env.step(expert.act(observation, info))
            states.append(info["state"])
        yield np.stack(states)


def _trajectories_from_dataset(directory: Path, env_name: str) -> Iterator[np.ndarray]:
    index = dataset.read_index(directory)
    if index.get("env", env_name) != env_name:
        raise ValueError(f"{directory} holds {index['env']!r} episodes, not {env_name!r}")
    files = dataset.episode_files(directory)
    if not files:
        raise ValueError(f"{directory} holds no episodes")
    for path in files:
        yield dataset.read_episode(path).states


def _pair(states: np.ndarray, start: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    return states[start].astype(np.float64), states[start + offset].astype(np.float64)


def _frame_pairs_from_dataset(
    trajectories: Iterator[np.ndarray], episodes: int, offset: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`episodes` distinct frames drawn uniformly among all valid starts of all trajectories."""
    all_states = list(trajectories)
    starts = [(i, t) for i, states in enumerate(all_states) for t in range(len(states) - offset)]
    if len(starts) < episodes:
        raise ValueError(f"found only {len(starts)} start/goal pairs {offset} steps apart for {episodes} episodes")
    chosen = rng.choice(len(starts), size=episodes, replace=False)
    return [_pair(all_states[starts[k][0]], starts[k][1], offset) for k in chosen]


def _frame_pairs_from_stream(
    trajectories: Iterator[np.ndarray], episodes: int, offset: int, max_frames: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One uniform frame of each kept trajectory, a trajectory kept with probability valid starts /
    the most a trajectory of `max_frames` frames can have."""
    most_starts = max_frames - offset
    if most_starts <= 0:
        raise ValueError(f"trajectories of {max_frames} frames hold no start/goal pairs {offset} steps apart")
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for tried, states in enumerate(trajectories, start=1):
        valid_starts = len(states) - offset
        if valid_starts > 0 and rng.random() * most_starts < valid_starts:
            pairs.append(_pair(states, int(rng.integers(valid_starts)), offset))
            if len(pairs) == episodes:
                return pairs
        if tried >= 200 * episodes + 1000:
            break
    raise ValueError(f"found only {len(pairs)} start/goal pairs {offset} steps apart for {episodes} episodes")


def _episode_pairs(
    trajectories: Iterator[np.ndarray], episodes: int, offset: int, raw_env: Any, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One pair per trajectory, its start uniform among the frames not already at their goal."""
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for tried, states in enumerate(trajectories, start=1):
        if tried > 20 * episodes + 100:
            break
        candidates = [t for t in range(len(states) - offset) if not raw_env.is_success(states[t], states[t + offset])]
        if candidates:
            pairs.append(_pair(states, int(rng.choice(candidates)), offset))
            if len(pairs) == episodes:
                return pairs
    raise ValueError(f"found only {len(pairs)} start/goal pairs {offset} steps apart for {episodes} episodes")


def start_goal_pairs(
    env_name: str,
    episodes: int,
    protocol: EvalProtocol,
    seed: int,
    env: Any,
    dataset_dir: str | Path | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`episodes` (start_state, goal_state) pairs `goal_offset_steps` apart on held-out trajectories
    (generated, or from the episodes in `dataset_dir`), drawn as `protocol.pair_sampling` says."""
    rng = np.random.default_rng(seed)
    offset = protocol.goal_offset_steps
    if dataset_dir:
        source = _trajectories_from_dataset(Path(dataset_dir), spec(env_name).name)
    else:
        source = _trajectories_from_expert(env_name, protocol, env)
    try:
        if protocol.pair_sampling == "episode":
            return _episode_pairs(source, episodes, offset, env.unwrapped, rng)
        if dataset_dir:
            return _frame_pairs_from_dataset(source, episodes, offset, rng)
        return _frame_pairs_from_stream(source, episodes, offset, _trajectory_steps(env_name, protocol) + 1, rng)
    except ValueError as exc:
        raise ValueError(f"{exc}{f' in {dataset_dir}' if dataset_dir else ''}") from None


def evaluate(
    env_name: str,
    policy: Policy,
    episodes: int = 50,
    goal_offset_steps: int | None = None,
    step_budget: int | None = None,
    seed: int = 0,
    dataset_dir: str | Path | None = None,
    video_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    policy_name: str = "policy",
    image_size: int = 64,
    video_episodes: int = 8,
    protocol_name: str | None = None,
) -> EvalResult:
    """Run `policy` on `episodes` start/goal pairs of `env_name` (LeWorldModel protocol, see module doc).

    protocol_name picks one of `PROTOCOL_VARIANTS[env_name]` (default: the env's first);
    goal_offset_steps / step_budget override its values. Writes an MP4 (observation
    beside goal, first `video_episodes` episodes) and a PNG (trajectories and goal distance) when asked.
    """
    protocol = protocol_for(env_name, protocol_name)
    if goal_offset_steps is not None:
        protocol = dataclasses.replace(protocol, goal_offset_steps=goal_offset_steps)
    if step_budget is not None:
        protocol = dataclasses.replace(protocol, step_budget=step_budget)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    time_limit = max(protocol.step_budget, _trajectory_steps(env_name, protocol))
    env = make_env(env_name, image_size=image_size, max_episode_steps=time_limit)
    raw = env.unwrapped
    pairs = start_goal_pairs(env_name, episodes, protocol, seed, env, dataset_dir)
    records: list[EpisodeRecord] = []
    frames: list[list[np.ndarray]] = []
    plan_times: list[float] = []
    for i, (start, goal) in enumerate(pairs):
        observation, info = env.reset(seed=seed + i, options={"start_state": start, "goal_state": goal})
        policy.reset(info)
        states, distances = [info["state"]], [raw.goal_distance(info["state"], goal)]
        filmed = video_path is not None and i < video_episodes
        episode_frames = [side_by_side(observation, info["goal_observation"])] if filmed else []
        episode_plan: list[float] = []
        success, steps = False, protocol.step_budget
        for step in range(protocol.step_budget):
            tic = time.perf_counter()
            action = policy.act(observation, info)
            episode_plan.append(time.perf_counter() - tic)
            observation, _, _, _, info = env.step(action)
            states.append(info["state"])
            distances.append(raw.goal_distance(info["state"], goal))
            if episode_frames:
                episode_frames.append(side_by_side(observation, info["goal_observation"]))
            if info["success"]:
                success, steps = True, step + 1
                break
        plan_times.extend(episode_plan)
        frames.append(episode_frames)
        records.append(
            EpisodeRecord(
                start_state=start.tolist(),
                goal_state=goal.tolist(),
                success=success,
                steps=steps,
                final_distance=float(distances[-1]),
                plan_ms=1e3 * float(np.mean(episode_plan)),
                states=np.asarray(states, dtype=np.float64).tolist(),
                distances=[float(d) for d in distances],
            )
        )
    env.close()
    successes = sum(r.success for r in records)
    to_success = [r.steps for r in records if r.success]
    result = EvalResult(
        env=env_name,
        policy=policy_name,
        episodes=len(records),
        successes=successes,
        success_rate=successes / len(records),
        ci95=wilson_interval(successes, len(records)),
        mean_steps_to_success=float(np.mean(to_success)) if to_success else None,
        mean_plan_ms=1e3 * float(np.mean(plan_times)),
        protocol=protocol,
        seed=seed,
        records=records,
    )
    if plot_path:
        plot_episodes(result, raw, plot_path)
    if video_path:
        write_video([f for f in frames if f], video_path)
    return result


def side_by_side(observation: np.ndarray, goal_observation: np.ndarray, scale: int = 4) -> np.ndarray:
    """One video frame: observation | white bar | goal, both (H, W, 3) uint8, enlarged `scale` times."""
    import cv2

    panel = np.concatenate(
        [observation, np.full((observation.shape[0], 2, 3), 255, np.uint8), goal_observation], axis=1
    )
    return cv2.resize(panel, (panel.shape[1] * scale, panel.shape[0] * scale), interpolation=cv2.INTER_NEAREST)


def write_video(episodes: list[list[np.ndarray]], path: str | Path, fps: int = 10) -> Path:
    """MP4 (H.264) of the episodes one after another, each ending on a short hold."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1, quality=8) as writer:
        for frames in episodes:
            for frame in frames + [frames[-1]] * (fps // 2):
                writer.append_data(frame)
    return path


def plot_episodes(result: EvalResult, env: Any, path: str | Path) -> Path:
    """PNG: trajectories over the map (start o, goal *, green success / red failure) and the goal
    distance over time against the success threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_map, ax_cost) = plt.subplots(1, 2, figsize=(11, 5))
    x0, x1, y0, y1 = env.map_extent
    background = getattr(env, "background", None)
    if background is not None:
        ax_map.imshow(background, extent=(x0, x1, y0, y1), alpha=0.35)
    for record in result.records:
        color = "tab:green" if record.success else "tab:red"
        xy = env.trajectory_xy(np.asarray(record.states))
        goal = env.trajectory_xy(np.asarray([record.goal_state]))[0]
        ax_map.plot(xy[:, 0], xy[:, 1], color=color, alpha=0.6, lw=1)
        ax_map.plot(xy[0, 0], xy[0, 1], "o", color=color, ms=3)
        ax_map.plot(goal[0], goal[1], "*", color="k", ms=6)
        ax_cost.plot(record.distances, color=color, alpha=0.5, lw=1)
    ax_map.set_xlim(x0, x1)
    ax_map.set_ylim(y0, y1)
    ax_map.set_aspect("equal")
    ax_map.set_title(f"{result.env}: trajectories (o start, * goal)")
    ax_cost.axhline(env.success_threshold, color="k", ls="--", lw=1, label="success threshold")
    ax_cost.set_xlabel("step")
    ax_cost.set_ylabel("goal distance")
    ax_cost.set_title(
        f"{result.policy}: {result.successes}/{result.episodes} "
        f"({100 * result.success_rate:.0f}%, 95% CI {100 * result.ci95[0]:.0f}-{100 * result.ci95[1]:.0f}%)"
    )
    ax_cost.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
