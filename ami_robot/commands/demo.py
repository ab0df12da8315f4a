"""`ami-robot demo`: a simulated robot driven by the brain over ROS 2 (DDS on this machine only).

Starts two processes on a fresh, random ROS domain restricted to localhost: the simulated robot
(`ami_sim.ros.robot_node`: camera, state, commands) and the brain (`ami_robot.ros.brain_node`: the
configurator, perception, planner and memory lifecycle nodes). This process is a third participant:
it resets the robot to start/goal pairs from held-out expert trajectories, watches it, and writes to --out

    demo.mp4    camera | goal, every episode (written as the frames arrive)
    demo.png    trajectories on the map and goal distance over time
    demo.json   episodes, successes, control_hz, latency_ms_p50/p99 (camera stamp to command), transport, ...

With `--record BAG`, a recorder (`ami_robot.ros.recorder_node`) joins as one more child: the brain's
topics go into the ROS 2 bag directory BAG (MCAP), and demo.json gets the messages per topic.
The recorder starts first and stops last, so the bag holds the whole run and the brain's stop command.

Every child is stopped on exit, Ctrl-C included (`ami_robot.runtime.ChildProcesses`: SIGINT, then
SIGTERM, then SIGKILL; and the kernel kills them should this process die).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ami_robot.configurator.settings import DEFAULT_CHECKPOINT
from ami_robot.planning.backends import BACKEND_CHOICES
from ami_robot.ros.dds import apply_localhost_environment, pick_domain_id
from ami_robot.ros.executables import BRAIN_NODES, node_command, params_dir
from ami_robot.runtime import ChildExitedError, ChildProcesses, TeardownWatchdog, stop_on_signals, stop_process_groups
from ami_sim.registry import ENV_NAMES

STARTUP_TIMEOUT_S = 180.0
RESET_TIMEOUT_S = 60.0
TEARDOWN_TIMEOUT_S = 25.0
DEMO_GOAL_OFFSET = 0
DEMO_STEP_BUDGET = 0
"""The demo's goals are the evaluation protocol's (0: TwoRoom's published protocol, 25 steps ahead
with 50 allowed, where the shipped model reaches 98%); `--goal-offset N --budget M` set others."""
PLANNER_NUMBERS = {"control_hz": "rate_hz"} | {
    key: key for key in ("latency_ms_p50", "latency_ms_p99", "planning_ms_p50", "planning_ms_p99")
}
"""Summary entries from the planner's diagnostics: summary name -> diagnostic key."""
RECORDER = "recorder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=int, default=5, help="start/goal pairs to drive to")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/demo"), help="directory for the video, plot, JSON and logs"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="trained world model (directory)")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="planner backend")
    parser.add_argument("--env", default="tworoom", choices=ENV_NAMES, help="simulated robot")
    parser.add_argument("--rate", type=float, default=10.0, help="robot and control rate (Hz)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the start/goal pairs")
    parser.add_argument(
        "--goal-offset",
        type=int,
        default=DEMO_GOAL_OFFSET,
        help="steps between start and goal on held-out expert trajectories (0: the evaluation protocol's)",
    )
    parser.add_argument(
        "--budget", type=int, default=DEMO_STEP_BUDGET, help="steps per episode (0: the evaluation protocol's)"
    )
    parser.add_argument(
        "--params", type=Path, default=None, help="brain parameter YAML (default: the package's brain.yaml)"
    )
    parser.add_argument("--separate-processes", action="store_true", help="run each brain node in its own process")
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="BAG",
        help="also record the brain's topics into this bag directory",
    )


def child_commands(args: argparse.Namespace, checkpoint: Path) -> dict[str, list[str]]:
    """The command lines of the simulated robot and the brain, by name."""
    robot = node_command(
        "ami_sim.ros.robot_node",
        params_dir() / "sim_robot.yaml",
        env=args.env,
        episodes=args.episodes,
        seed=args.seed,
        rate_hz=float(args.rate),
        step_budget=args.budget,
        goal_offset=args.goal_offset,
    )
    brain = dict(checkpoint=checkpoint, backend=args.backend, control_rate_hz=float(args.rate))
    brain_params = args.params or params_dir() / "brain.yaml"
    commands = {RECORDER: recorder_command(args.record)} if args.record is not None else {}
    commands["sim_robot"] = robot
    for name in BRAIN_NODES if args.separate_processes else ("brain",):
        commands[name] = node_command(f"ami_robot.ros.{name}_node", brain_params, "--log-level", "warn", **brain)
    return commands


def recorder_command(bag: Path) -> list[str]:
    """The recorder's command line: the brain's topics into the bag directory `bag`."""
    return [sys.executable, "-m", "ami_robot.ros.recorder_node", "--ros-args", "-p", f"path:={bag.resolve()}"]


def recorded_counts(bag: Path) -> dict[str, int]:
    """Messages per topic in a finished bag (its metadata.yaml)."""
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return {connection.topic: connection.msgcount for connection in reader.connections}


def run(args: argparse.Namespace) -> int:
    checkpoint = args.checkpoint.resolve()
    if not (checkpoint / "config.json").is_file():
        print(
            f"ami-robot demo: no trained world model at {checkpoint} (expected config.json and model.safetensors).\n"
            "Train one with `ami-robot collect` and `ami-robot train`, or pass --checkpoint DIR.",
            file=sys.stderr,
        )
        return 2
    if args.episodes < 1:
        print("ami-robot demo: --episodes must be >= 1", file=sys.stderr)
        return 2
    if args.record is not None and args.record.exists():
        print(f"ami-robot demo: {args.record} exists already; a recording never overwrites one", file=sys.stderr)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MUJOCO_GL", "egl")
    # a fresh domain for this run; this process and its children join it, before rclpy is imported
    domain_id = apply_localhost_environment(pick_domain_id())
    print(f"ami-robot demo: ROS 2 domain {domain_id} (localhost only), model {checkpoint}, logs in {out}")
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from ami_sim.ros.status import RobotMessageError

    children = ChildProcesses(out, os.environ.copy())
    with stop_on_signals() as stop:  # Ctrl-C and SIGTERM: the next spin raises KeyboardInterrupt
        rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
        try:
            for name, argv in child_commands(args, checkpoint).items():
                children.start(name, argv)
            summary = _drive(args, children, stop, out)
            if stop.is_set():
                raise KeyboardInterrupt
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
    summary.update(domain_id=domain_id, checkpoint=str(checkpoint), env=args.env)
    if args.record is not None:
        summary["recording"] = {"bag": str(args.record.resolve()), "messages": recorded_counts(args.record)}
    for path in (out / "demo.json", args.json):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(summary, indent=2))
    print(
        f"{summary['successes']}/{summary['episodes']} goals reached; control {summary['control_hz']:.1f} Hz, "
        f"latency p50 {summary['latency_ms_p50']:.1f} ms, p99 {summary['latency_ms_p99']:.1f} ms "
        f"over {summary['transport']}"
    )
    print(f"wrote {out / 'demo.mp4'}, {out / 'demo.png'}, {out / 'demo.json'}")
    if args.record is not None:
        print(f"recorded {sum(summary['recording']['messages'].values())} messages into {args.record.resolve()}")
    return 0


def _drive(args: argparse.Namespace, children: ChildProcesses, stop: threading.Event, out: Path) -> dict[str, Any]:
    """Wait for the robot and the brain, run the episodes, write the video and the plot; the summary."""
    import rclpy
    from tqdm import tqdm

    from ami_robot.ros.diagnostics import DiagnosticsMonitor, NodeDiagnostics
    from ami_sim.evaluation import plot_episodes
    from ami_sim.registry import make_env
    from ami_sim.ros.client import SimRobotClient
    from ami_sim.ros.params import episode_protocol
    from ami_sim.ros.recording import EpisodeRecorder, EpisodeVideo

    node = rclpy.create_node("ami_robot_demo")

    def spin_once(timeout_s: float) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        children.check()
        rclpy.spin_once(node, timeout_sec=timeout_s)

    def brain_ready() -> bool:
        planner = diagnostics.latest("/planner")
        return planner is not None and planner.message != "inactive"

    protocol = episode_protocol(args.env, args.goal_offset, args.budget)
    episode_timeout_s = 3.0 * protocol.step_budget / args.rate + 10.0
    diagnostics = DiagnosticsMonitor(node)
    with EpisodeVideo(out / "demo.mp4", fps=round(args.rate)) as video:
        recorder = EpisodeRecorder(video)
        robot = SimRobotClient(node, recorder.on_status, lambda image: recorder.on_camera(image, robot.goal), spin_once)
        robot.wait_for(
            lambda: brain_ready() and robot.ready(), STARTUP_TIMEOUT_S, "the robot and the brain did not come up"
        )
        bar = tqdm(range(args.episodes), desc="demo", unit="episode")
        for number in bar:
            trace = recorder.episodes[robot.run_episode(RESET_TIMEOUT_S, episode_timeout_s)]
            bar.write(
                f"episode {number + 1}/{args.episodes}: {'reached' if trace.success else 'missed'} the goal "
                f"in {trace.steps} steps (final distance {trace.final_distance:.3f})"
            )
            bar.set_postfix(successes=sum(e.success for e in recorder.episodes.values()))
        end = time.monotonic() + 1.2  # the planner's next diagnostics cover the last episode
        while time.monotonic() < end:
            spin_once(0.05)
    node.destroy_node()
    planner = diagnostics.latest("/planner") or NodeDiagnostics("/planner", 0, "")
    plan_ms = planner.number("planning_ms_p50") or 0.0
    result = recorder.result(args.env, "brain over ROS 2", protocol, args.seed, plan_ms)
    sim = make_env(args.env)
    plot_episodes(result, sim.unwrapped, out / "demo.png")
    sim.close()
    return {
        **result.to_dict(),
        "step_budget": protocol.step_budget,
        "steps": [record.steps for record in result.records],
        **{name: planner.number(key) for name, key in PLANNER_NUMBERS.items()},
        "planner_errors": int(planner.number("errors") or 0),
        "backend": planner.values.get("backend"),
        "method": planner.values.get("method"),
        "transport": planner.values.get("rmw"),
        "separate_processes": bool(args.separate_processes),
    }
