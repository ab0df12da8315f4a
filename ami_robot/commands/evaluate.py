"""`ami-robot eval`: goal-conditioned evaluation (LeWorldModel protocol, `ami_sim.evaluation`) of a
policy in a simulated robot: success rate with a 95% Wilson interval, steps to success, planning time.

Policies come from `POLICIES`: name -> PolicyFactory(build, add_arguments). A new one (for instance
`--policy planner --checkpoint CKPT`) registers itself with `register_policy` and adds its options.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ami_robot.errors import AmiRobotError, ConfigError
from ami_sim.registry import ENV_NAMES


@dataclass(frozen=True)
class PolicyFactory:
    """build(args, env_name) -> ami_sim.policies.Policy; add_arguments adds the options it reads."""

    build: Callable[[argparse.Namespace, str], Any]
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None


POLICIES: dict[str, PolicyFactory] = {}


def register_policy(name: str, factory: PolicyFactory) -> None:
    if name in POLICIES:
        raise ValueError(f"policy {name!r} is already registered")
    POLICIES[name] = factory


def _expert(args: argparse.Namespace, env_name: str) -> Any:
    from ami_sim.registry import make_expert

    return make_expert(env_name, noise=args.noise, seed=args.seed)


def _random(args: argparse.Namespace, env_name: str) -> Any:
    from ami_sim.registry import make_random

    return make_random(env_name, seed=args.seed)


def _expert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--noise", type=float, default=0.0, help="expert: action noise std, in action units")


register_policy("expert", PolicyFactory(_expert, "the scripted expert (reads the true state)", _expert_arguments))
register_policy("random", PolicyFactory(_random, "uniform random actions"))


def _planner(args: argparse.Namespace, env_name: str) -> Any:
    """The brain (world model + planner, no ROS) with the checkpoint's planning settings."""
    from ami_robot.brain import Brain, BrainPolicy
    from ami_robot.checkpoints import checkpoint_for
    from ami_robot.configurator import Configurator, load_brain_settings, settings_from_flat

    checkpoint = checkpoint_for(env_name, args.checkpoint)
    settings = load_brain_settings(args.settings, checkpoint)
    changes = {name: getattr(args, name) for name in ("backend", "method") if getattr(args, name) is not None}
    if args.params is not None:
        from ami_robot.ros.params import settings_in_params_file

        changes = {**settings_in_params_file(args.params), **changes}
    settings = settings_from_flat({**changes, **dict(args.set)}, settings)
    return BrainPolicy(Brain(Configurator(settings)))


def setting_assignment(text: str) -> tuple[str, Any]:
    """One --set: NAME=VALUE -> (NAME, value), e.g. planner.samples=300 -> ("planner.samples", 300). The
    value is read as YAML (numbers, true/false, [lists]); `settings_from_flat` checks name and value."""
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (a dotted brain setting), got {text!r}")
    try:
        return name.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"{name.strip()}: cannot read {value!r}: {exc}") from exc


def _planner_arguments(parser: argparse.ArgumentParser) -> None:
    from ami_robot.config import choices_of, help_of
    from ami_robot.configurator import BrainSettings

    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="planner: world-model checkpoint directory (default: the one shipped for --env)",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="planner: BrainSettings YAML (default: CHECKPOINT/brain.yaml, else built-in defaults)",
    )
    parser.add_argument(
        "--params",
        type=Path,
        default=None,
        help="planner: also the brain settings a ROS parameter file sets, as the ROS brain takes them "
        "(e.g. launch/params/brain_pusht.yaml: the PushT robot's real-time budget); --backend, --method "
        "and --set go over them",
    )
    for name in ("backend", "method"):
        parser.add_argument(
            f"--{name}",
            choices=choices_of(BrainSettings, name),
            default=None,
            help=f"planner: {help_of(BrainSettings, name)} (default: from the settings)",
        )
    parser.add_argument(
        "--set",
        type=setting_assignment,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="planner: change one brain setting over --settings, by its dotted name (repeatable), e.g. "
        "--set planner.samples=300 --set replan_every=5",
    )


register_policy(
    "planner",
    PolicyFactory(_planner, "the brain: plans through the world model from pixels (default)", _planner_arguments),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, choices=ENV_NAMES, help="simulated robot")
    parser.add_argument(
        "--policy",
        default="planner",
        choices=sorted(POLICIES),
        help="; ".join(f"{name}: {f.help}" for name, f in sorted(POLICIES.items())),
    )
    parser.add_argument("--episodes", type=int, default=50, help="start/goal pairs to evaluate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair choice and of the policy")
    from ami_sim.evaluation import PROTOCOL_VARIANTS

    variants = "; ".join(
        f"{env}: " + ", ".join(f"{p.name} ({p.goal_offset_steps}/{p.step_budget})" for p in named.values())
        for env, named in PROTOCOL_VARIANTS.items()
    )
    parser.add_argument(
        "--protocol",
        default=None,
        help=f"evaluation protocol, goal offset / step budget (default: the env's first): {variants}",
    )
    parser.add_argument(
        "--goal-offset", type=int, default=None, help="steps between start and goal (default: the protocol's)"
    )
    parser.add_argument("--budget", type=int, default=None, help="steps the policy gets (default: the protocol's)")
    parser.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="take start/goal pairs from this dataset's episodes "
        "(default: held-out expert trajectories generated with a fixed seed)",
    )
    parser.add_argument("--image-size", type=int, default=64, help="observation height and width in pixels")
    parser.add_argument("--json", type=Path, default=None, help="write the metrics to this JSON file")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG of trajectories and goal distance")
    parser.add_argument("--video", type=Path, default=None, help="write an MP4 of episodes (observation | goal)")
    parser.add_argument("--trajectories", action="store_true", help="include per-step states in the JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--record-episodes",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write every episode to this new dataset directory (the policy's own data, for `train`); "
        "each episode then runs its whole budget, success still counted at its first step at the goal",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --record-episodes: continue an interrupted recording (the same arguments); the episodes "
        "already in DIR are read back, not run again",
    )
    for factory in POLICIES.values():
        if factory.add_arguments is not None:
            factory.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ami_sim.evaluation import evaluate

    if args.resume and args.record_episodes is None:
        raise ConfigError("--resume continues a recording: it needs --record-episodes DIR")
    try:
        policy = POLICIES[args.policy].build(args, args.env)
        result = evaluate(
            args.env,
            policy,
            episodes=args.episodes,
            goal_offset_steps=args.goal_offset,
            step_budget=args.budget,
            seed=args.seed,
            dataset_dir=args.dataset,
            video_path=args.video,
            plot_path=args.plot,
            policy_name=args.policy,
            image_size=args.image_size,
            protocol_name=args.protocol,
            record_dir=args.record_episodes,
            progress=not args.no_progress,
            resume_recording=args.resume,
        )
    except AmiRobotError:
        raise
    except (ValueError, FileNotFoundError) as exc:  # the evaluation harness's checks of options and dataset
        raise ConfigError(str(exc)) from exc
    low, high = result.ci95
    steps = f"{result.mean_steps_to_success:.1f}" if result.mean_steps_to_success is not None else "-"
    protocol = result.protocol
    print(
        f"{result.env} / {result.policy} ({protocol.name}: goal {protocol.goal_offset_steps} steps ahead, "
        f"{protocol.step_budget} allowed): {result.successes}/{result.episodes} = {100 * result.success_rate:.1f}% "
        f"(95% CI {100 * low:.1f}-{100 * high:.1f}%), steps to success {steps}, "
        f"plan {result.mean_plan_ms:.3f} ms/step"
    )
    overruns = getattr(policy, "overruns", 0)
    if overruns:
        print(f"{overruns} plans overran the planning deadline (safety.deadline_s); each stopped the robot for a step")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        recorded = result.to_dict(with_trajectories=args.trajectories)
        if hasattr(policy, "overruns"):
            recorded["overruns"] = overruns
        args.json.write_text(json.dumps(recorded, indent=2))
    return 0
