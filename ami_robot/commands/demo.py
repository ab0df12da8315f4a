"""`ami-robot demo`: a simulated robot driven by the brain over ROS 2 (DDS on this machine only).

Starts two processes on a fresh, random ROS domain restricted to localhost: the simulated robot
(`ami_sim.ros.robot_node`: camera, state, commands) and the brain (`ami_robot.ros.brain_node`: the
configurator, perception, planner and memory lifecycle nodes). This process is a third participant:
it resets the robot to start/goal pairs from held-out expert trajectories, watches it, and writes to --out

    demo.mp4    camera | goal, every episode (written as the frames arrive)
    demo.png    trajectories on the map and goal distance over time
    demo.json   episodes, successes, late steps, control_hz, reaction latency p50/p99 (camera stamp to the
                command from that image: all, replanning and queued ticks), encode and plan time, ...

With `--record BAG`, a recorder (`ami_robot.ros.recorder_node`) joins as one more child: the brain's
topics go into the ROS 2 bag directory BAG (MCAP), and demo.json gets the messages per topic.
The recorder starts first, the first episode waits until it has subscribed, and it stops last, so
the bag holds the whole run and the brain's stop command.
With `--foxglove [PORT]`, `ami_robot.ros.foxglove_node` serves the same topics live to the Foxglove app on
ws://127.0.0.1:PORT (8765; 0: any free port, named in its log), bound to this machine only.

Every child is stopped on exit, Ctrl-C included (`ami_robot.runtime.ChildProcesses`: SIGINT, then
SIGTERM, then SIGKILL; and the kernel kills them should this process die).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ami_robot.checkpoints import checkpoint_for
from ami_robot.errors import ConfigError
from ami_robot.planning.backends import BACKEND_CHOICES
from ami_robot.ros import executables
from ami_robot.ros.dds import apply_localhost_environment, pick_domain_id
from ami_robot.ros.executables import BRAIN_NODES, brain_params_file, node_command, params_dir, recorder_command
from ami_robot.runtime import ChildExitedError, ChildProcesses, TeardownWatchdog, stop_on_signals, stop_process_groups
from ami_sim.registry import ENV_NAMES

TEARDOWN_TIMEOUT_S = 25.0
RECORDER, FOXGLOVE = "recorder", "foxglove"
FOXGLOVE_HELP = "serve the brain's topics live to Foxglove on ws://127.0.0.1:PORT (default 8765; 0: any free)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--episodes", type=int, default=5, help="start/goal pairs to drive to")
    add("--out", type=Path, default=Path("runs/demo"), help="directory for the video, plot, JSON and logs")
    add("--json", type=Path, default=None, help="also write the summary here")
    add(
        "--checkpoint",
        type=Path,
        default=None,
        help="trained world model (directory; default: the one shipped for --env)",
    )
    add("--backend", default="auto", choices=BACKEND_CHOICES, help="planner backend")
    add("--env", default="tworoom", choices=ENV_NAMES, help="simulated robot")
    add("--rate", type=float, default=10.0, help="robot and control rate (Hz)")
    add("--seed", type=int, default=0, help="seed of the start/goal pairs")
    add(
        "--goal-offset",
        type=int,
        default=0,
        help="steps between start and goal on held-out expert trajectories (0: the evaluation protocol's; "
        "TwoRoom's published one is 25 steps ahead with 50 allowed)",
    )
    add("--budget", type=int, default=0, help="steps per episode (0: the evaluation protocol's)")
    add(
        "--plan-ahead",
        action="store_true",
        help="plan each model step while the previous block runs (answers at once at camera rates above 1/plan time; "
        "default: as the parameter file and the model's settings say)",
    )
    add(
        "--params",
        type=Path,
        default=None,
        help="brain parameter YAML (default: the package's brain_<env>.yaml, the real-time budget of the model "
        "shipped for --env, when the demo drives with it and one exists; else its brain.yaml)",
    )
    add("--separate-processes", action="store_true", help="run each brain node in its own process")
    add("--record", type=Path, default=None, metavar="BAG", help="also record the brain's topics into this bag")
    add("--foxglove", type=int, nargs="?", const=executables.FOXGLOVE_PORT, metavar="PORT", help=FOXGLOVE_HELP)


def demo_brain_params(args: argparse.Namespace) -> Path:
    """The brain's parameter YAML: --params, else the real-time budget of the model shipped for --env
    when the demo drives with it (`brain_params_file`)."""
    return args.params or brain_params_file(args.env if args.checkpoint is None else None)


def child_commands(args: argparse.Namespace, checkpoint: Path, brain_params: Path) -> dict[str, list[str]]:
    """The command lines of the recorder (--record), Foxglove view (--foxglove), simulated robot and brain
    (with the parameter file `brain_params`), by name."""
    robot = dict(env=args.env, episodes=args.episodes, seed=args.seed, rate_hz=float(args.rate))
    robot.update(step_budget=args.budget, goal_offset=args.goal_offset)
    brain: dict[str, object] = dict(checkpoint=checkpoint, backend=args.backend, control_rate_hz=float(args.rate))
    if args.plan_ahead:
        brain["plan_ahead"] = True
    commands = {RECORDER: recorder_command(args.record)} if args.record is not None else {}
    if args.foxglove is not None:
        commands[FOXGLOVE] = executables.foxglove_command(args.foxglove)
    commands["sim_robot"] = node_command("ami_sim.ros.robot_node", params_dir() / "sim_robot.yaml", **robot)
    for name in BRAIN_NODES if args.separate_processes else ("brain",):
        commands[name] = node_command(f"ami_robot.ros.{name}_node", brain_params, "--log-level", "warn", **brain)
    return commands


def check_arguments(args: argparse.Namespace) -> Path:
    """The world model the demo drives with (--checkpoint, else the one shipped for --env), once every
    argument is checked."""
    checkpoint = checkpoint_for(args.env, args.checkpoint)
    if args.episodes < 1:
        raise ConfigError("--episodes must be >= 1")
    if args.record is not None and args.record.exists():
        raise ConfigError(f"{args.record} exists already; a recording never overwrites one")
    if args.foxglove is not None and not 0 <= args.foxglove <= 65535:
        raise ConfigError(f"--foxglove must be a port in 0-65535 (0: any free port), got {args.foxglove}")
    return checkpoint


def run(args: argparse.Namespace) -> int:
    checkpoint, brain_params, out = check_arguments(args), demo_brain_params(args), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MUJOCO_GL", "egl")
    # a fresh domain for this run; this process and its children join it, before rclpy is imported
    domain_id = apply_localhost_environment(pick_domain_id())
    print(f"ami-robot demo: ROS 2 domain {domain_id} (localhost only), model {checkpoint}, logs in {out}")
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from ami_sim.ros.demo_episodes import DemoEpisodes, drive_episodes, summary_lines
    from ami_sim.ros.status import RobotMessageError

    recorder = (executables.recorder_taps_name(RECORDER),) if args.record is not None else ()
    plan = DemoEpisodes(args.env, args.episodes, float(args.rate), args.seed, args.goal_offset, args.budget, recorder)
    children = ChildProcesses(out, os.environ.copy())
    with stop_on_signals() as stop:  # Ctrl-C and SIGTERM: `check` raises KeyboardInterrupt

        def check() -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            children.check()

        rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
        try:
            for name, argv in child_commands(args, checkpoint, brain_params).items():
                children.start(name, argv)
            if args.foxglove is not None:
                url = executables.foxglove_url(args.foxglove) if args.foxglove else f"see {children.log(FOXGLOVE)}"
                print(f"live view: in Foxglove, Open connection -> Foxglove WebSocket -> {url}")
            node = rclpy.create_node("ami_robot_demo")
            summary = drive_episodes(node, plan, out, check)
            node.destroy_node()
            check()
        except KeyboardInterrupt:
            print("\nami-robot demo: interrupted, stopping the robot and the brain", file=sys.stderr)
            return 130
        except (ChildExitedError, TimeoutError, RobotMessageError) as exc:
            print(f"ami-robot demo: {exc} (logs in {out})", file=sys.stderr)
            return 1
        finally:
            with TeardownWatchdog(TEARDOWN_TIMEOUT_S, exit_code=130 if stop.is_set() else 1):
                stop_process_groups([p for name, p in children.processes.items() if name != RECORDER])
                children.stop()
                rclpy.try_shutdown()
    summary.update(domain_id=domain_id, checkpoint=str(checkpoint), params=str(brain_params), env=args.env)
    summary["separate_processes"] = bool(args.separate_processes)
    if args.record is not None:
        from ami_robot.data.bags import topic_message_counts

        summary["recording"] = {"bag": str(args.record.resolve()), "messages": topic_message_counts(args.record)}
    for path in (out / "demo.json", args.json):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(summary, indent=2))
    print("\n".join(summary_lines(summary)))
    print(f"wrote {out / 'demo.mp4'}, {out / 'demo.png'}, {out / 'demo.json'}")
    if args.record is not None:
        print(f"recorded {sum(summary['recording']['messages'].values())} messages into {args.record.resolve()}")
    return 0
