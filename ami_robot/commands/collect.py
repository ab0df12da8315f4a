"""`ami-robot collect`: roll out a scripted or random policy in a simulated robot, in parallel, into
an episode dataset (one HDF5 file per episode + dataset.json, see `ami_robot.data.episodes`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ami_robot.errors import AmiRobotError, ConfigError
from ami_sim.registry import ENV_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, choices=ENV_NAMES, help="simulated robot")
    parser.add_argument("--episodes", type=int, required=True, help="number of episodes in the dataset")
    parser.add_argument(
        "--policy",
        choices=("expert", "random", "mixed"),
        default="expert",
        help="expert, random, or mixed (each episode expert or random with probability 1/2)",
    )
    parser.add_argument("--out", type=Path, required=True, help="dataset directory (re-running resumes it)")
    parser.add_argument("--noise", type=float, default=0.1, help="expert action noise std, in action units")
    parser.add_argument(
        "--repeat-probability",
        type=float,
        default=0.0,
        help="chance that the expert repeats its previous action (TwoRoom's published data: --noise 2.0 "
        "--repeat-probability 0.05)",
    )
    parser.add_argument(
        "--max-action",
        type=float,
        default=None,
        help="the expert's pace: its action scaled down to this norm when longer, before the noise (default: "
        "full pace; PushT at the published expert set's pace: 0.25)",
    )
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: one per core)")
    parser.add_argument("--image-size", type=int, default=64, help="observation height and width in pixels")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="episode length cap (default: the env's time limit)"
    )
    parser.add_argument(
        "--chain-goals",
        action="store_true",
        help="on reaching a goal, go on to a new one until --max-steps (long trajectories for the critic)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write collection metrics to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ami_sim.collect import CollectConfig, collect

    try:
        config = CollectConfig(
            env=args.env,
            episodes=args.episodes,
            out=args.out,
            policy=args.policy,
            noise=args.noise,
            repeat_probability=args.repeat_probability,
            max_action=args.max_action,
            seed=args.seed,
            workers=args.workers,
            image_size=args.image_size,
            max_steps=args.max_steps,
            chain_goals=args.chain_goals,
        )
        summary = collect(config, progress=not args.no_progress)
    except AmiRobotError:
        raise
    except ValueError as exc:  # the simulation's checks of the options and of an existing dataset
        raise ConfigError(str(exc)) from exc
    metrics = {
        "env": config.env,
        "policy": config.policy,
        "out": str(config.out),
        "episodes": summary.episodes,
        "new_episodes": summary.new_episodes,
        "steps": summary.steps,
        "successes": summary.successes,
        "seconds": round(summary.seconds, 3),
        "steps_per_second": round(summary.steps_per_second, 1),
        "workers": config.num_workers,
        "interrupted": summary.interrupted,
    }
    print(
        f"{config.out}: {summary.episodes}/{config.episodes} episodes ({summary.new_episodes} new, "
        f"{summary.successes} of them successful), {summary.steps_per_second:.0f} steps/s"
        + (" - interrupted, finished episodes kept" if summary.interrupted else "")
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(metrics, indent=2))
    return 130 if summary.interrupted else 0
