"""`ami-robot demo`: a simulated robot driven by the brain over ROS 2 (DDS on this machine only).

Starts two processes on a fresh, random ROS domain restricted to localhost: the simulated robot
(`ami_sim.ros.robot_node`: camera, state, commands) and the brain (`ami_robot.ros.brain_node`: the
configurator, perception, planner and memory lifecycle nodes). This process is a third participant:
it resets the robot to start/goal pairs from held-out expert trajectories, watches it, and writes to --out

    demo.mp4    camera | goal, every episode
    demo.png    trajectories on the map and goal distance over time
    demo.json   episodes, successes, control_hz, latency_ms_p50/p99 (camera stamp to command), transport, ...

Every child is stopped on exit, Ctrl-C included (SIGINT, then SIGTERM, then SIGKILL; and the
kernel kills them should this process die).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ami_robot.configurator.settings import DEFAULT_CHECKPOINT
from ami_robot.ros.dds import apply_localhost_environment, pick_domain_id

STARTUP_TIMEOUT_S = 180.0
INTERRUPT_TIMEOUT_S = 25.0
DEMO_GOAL_OFFSET = 10
DEMO_STEP_BUDGET = 30
"""The demo's goals lie 10 steps ahead on held-out expert trajectories, 30 steps allowed: the range
where the shipped CPU TwoRoom model plans reliably. `--goal-offset 0 --budget 0` gives the
evaluation protocol (25 steps, 50 allowed); README's results table has both."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=int, default=5, help="start/goal pairs to drive to")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/demo"), help="directory for the video, plot, JSON and logs"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="trained world model (directory)")
    parser.add_argument("--backend", default="auto", choices=("auto", "cpu", "torch", "cuda"), help="planner backend")
    parser.add_argument("--env", default="tworoom", choices=("tworoom", "pusht", "reacher"), help="simulated robot")
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


def params_dir() -> Path:
    """launch/params of the checkout this code runs from (an editable install), else
    share/ami_robot/params of the installed ROS 2 package."""
    checkout = Path(__file__).resolve().parents[2] / "launch" / "params"
    if checkout.is_dir():
        return checkout
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("ami_robot")) / "params"


def _die_with_parent() -> None:
    """Run in each child before exec: the kernel sends SIGTERM when the demo process dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Children:
    """Child processes in their own process groups, stopped in order on `stop()`."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir, self.env = log_dir, env
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")
        proc = subprocess.Popen(
            argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}; see {self.log_dir / (name + '.log')}")

    def stop(self, grace_s: float = 5.0) -> None:
        for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            alive = [(n, p) for n, p in self.procs if p.poll() is None]
            if not alive:
                return
            for _, proc in alive:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait_s
            for _, proc in alive:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass


@dataclass
class Episode:
    index: int
    start_state: list[float] = field(default_factory=list)
    goal_state: list[float] = field(default_factory=list)
    states: list[list[float]] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    steps: int = 0
    success: bool = False
    done: bool = False


class Observer:
    """The demo's own ROS node: resets the robot, records its status, camera and the brain's diagnostics."""

    def __init__(self, stop: threading.Event) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from sensor_msgs.msg import Image
        from std_srvs.srv import Trigger

        from ami_robot.ros.qos import CAMERA, EVENTS, LATCHED

        self.rclpy = rclpy
        self.stop = stop
        self.node = rclpy.create_node("ami_robot_demo")
        self.trigger = Trigger
        self.reset_client = self.node.create_client(Trigger, "robot/reset")
        self.node.create_subscription(DiagnosticStatus, "robot/status", self.on_status, EVENTS)
        self.node.create_subscription(Image, "camera/image", self.on_camera, CAMERA)
        self.node.create_subscription(Image, "goal/image", self.on_goal, LATCHED)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, EVENTS)
        self.planner: dict[str, str] = {}
        self.planner_message = ""
        self.goal: np.ndarray | None = None
        self.episode: Episode | None = None

    def spin_once(self, timeout_s: float) -> None:
        """One round of callbacks; raises KeyboardInterrupt here once Ctrl-C or SIGTERM set `stop`."""
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.rclpy.spin_once(self.node, timeout_sec=timeout_s)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.spin_once(min(0.05, max(0.0, end - time.monotonic())))

    def on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.endswith("/planner"):
                self.planner = {kv.key: kv.value for kv in status.values}
                self.planner_message = status.message

    def on_status(self, msg) -> None:
        values = {kv.key: kv.value for kv in msg.values}
        episode = self.episode
        if episode is None or int(values["episode"]) != episode.index:
            return
        steps = int(values["steps"])
        state = [float(x) for x in values["state"].split(",")]
        if not episode.states:
            episode.start_state = state
            episode.goal_state = [float(x) for x in values["goal_state"].split(",")]
        if steps >= len(episode.states):
            episode.states.append(state)
            episode.distances.append(float(values["distance"]))
        episode.steps, episode.success = steps, values["success"] == "True"
        episode.done = values["done"] == "True"

    def on_camera(self, msg) -> None:
        from ami_robot.ros.conversions import image_to_numpy
        from ami_sim.evaluation import side_by_side

        if self.episode is not None and not self.episode.done and self.goal is not None:
            self.episode.frames.append(side_by_side(image_to_numpy(msg), self.goal))

    def on_goal(self, msg) -> None:
        from ami_robot.ros.conversions import image_to_numpy

        self.goal = image_to_numpy(msg)

    def brain_ready(self) -> bool:
        return bool(self.planner) and self.planner_message != "inactive"

    def reset(self, timeout_s: float) -> int:
        future = self.reset_client.call_async(self.trigger.Request())
        end = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < end:
            self.spin_once(0.05)
        if not future.done() or not future.result().success:
            raise RuntimeError("the simulated robot did not accept the reset")
        return int(future.result().message.split(":")[0].split()[-1])


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


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
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MUJOCO_GL", "egl")
    # a fresh domain for this run; this process and its children join it, before rclpy is imported
    domain_id = apply_localhost_environment(pick_domain_id())
    env = os.environ.copy()
    params = args.params or params_dir() / "brain.yaml"
    python = sys.executable
    ros_brain = [
        "--ros-args",
        "--params-file",
        str(params),
        "-p",
        f"checkpoint:={checkpoint}",
        "-p",
        f"backend:={args.backend}",
        "-p",
        f"control_rate_hz:={float(args.rate)}",
        "--log-level",
        "warn",
    ]
    ros_robot = [
        "--ros-args",
        "--params-file",
        str(params_dir() / "sim_robot.yaml"),
        "-p",
        f"env:={args.env}",
        "-p",
        f"episodes:={args.episodes}",
        "-p",
        f"seed:={args.seed}",
        "-p",
        f"rate_hz:={float(args.rate)}",
        "-p",
        f"step_budget:={args.budget}",
        "-p",
        f"goal_offset:={args.goal_offset}",
    ]
    print(f"ami-robot demo: ROS 2 domain {domain_id} (localhost only), model {checkpoint}, logs in {out}")
    children = Children(out, env)
    # Ctrl-C and SIGTERM only set `stop`; the observer raises KeyboardInterrupt at its next spin, not
    # inside whatever code the signal happened to land in (which could swallow it).
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.signals import SignalHandlerOptions

    from ami_robot.ros.node_base import exit_if_teardown_hangs

    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)  # the signals stay ours
    try:
        children.start("sim_robot", [python, "-m", "ami_sim.ros.robot_node", *ros_robot])
        if args.separate_processes:
            for name in ("configurator", "perception", "planner", "memory"):
                children.start(name, [python, "-m", f"ami_robot.ros.{name}_node", *ros_brain])
        else:
            children.start("brain", [python, "-m", "ami_robot.ros.brain_node", *ros_brain])
        summary = _drive(args, Observer(stop), children, out)
        if stop.is_set():
            raise KeyboardInterrupt
    except (KeyboardInterrupt, ExternalShutdownException):
        print("\nami-robot demo: interrupted, stopping the robot and the brain", file=sys.stderr)
        exit_if_teardown_hangs(INTERRUPT_TIMEOUT_S, exit_code=130)
        return 130
    except RuntimeError as exc:
        print(f"ami-robot demo: {exc}", file=sys.stderr)
        return 1
    finally:
        children.stop()
        rclpy.try_shutdown()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    summary.update(domain_id=domain_id, checkpoint=str(checkpoint), env=args.env)
    text = json.dumps(summary, indent=2)
    (out / "demo.json").write_text(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(
        f"{summary['successes']}/{summary['episodes']} goals reached; control {summary['control_hz']:.1f} Hz, "
        f"latency p50 {summary['latency_ms_p50']:.1f} ms, p99 {summary['latency_ms_p99']:.1f} ms over {summary['transport']}"
    )
    print(f"wrote {out / 'demo.mp4'}, {out / 'demo.png'}, {out / 'demo.json'}")
    return 0


def _drive(args: argparse.Namespace, observer: Observer, children: Children, out: Path) -> dict[str, Any]:
    from tqdm import tqdm

    from ami_sim.evaluation import PROTOCOLS, EpisodeRecord, EvalResult, plot_episodes, wilson_interval, write_video
    from ami_sim.registry import make_env

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not (observer.brain_ready() and observer.reset_client.service_is_ready()):
        children.check()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the robot and the brain did not come up within {STARTUP_TIMEOUT_S:.0f} s; see the logs in {out}"
            )
        observer.spin_for(0.2)
    protocol = dataclasses.replace(
        PROTOCOLS[args.env],
        goal_offset_steps=args.goal_offset or PROTOCOLS[args.env].goal_offset_steps,
        step_budget=args.budget or PROTOCOLS[args.env].step_budget,
    )
    budget = protocol.step_budget
    episodes: list[Episode] = []
    bar = tqdm(range(args.episodes), desc="demo", unit="episode")
    for _ in bar:
        observer.episode = None
        index = observer.reset(timeout_s=60.0)
        episode = observer.episode = Episode(index)
        episode_deadline = time.monotonic() + 3.0 * budget / args.rate + 10.0
        while not episode.done:
            children.check()
            if time.monotonic() > episode_deadline:
                raise RuntimeError(f"episode {index} did not finish in time; see the logs in {out}")
            observer.spin_for(0.05)
        observer.spin_for(0.2)
        episodes.append(episode)
        bar.write(
            f"episode {index + 1}/{args.episodes}: {'reached the goal' if episode.success else 'missed the goal'} "
            f"in {episode.steps} steps (final distance {episode.distances[-1] if episode.distances else float('nan'):.3f})"
        )
        bar.set_postfix(successes=sum(e.success for e in episodes))
    observer.spin_for(1.2)  # the planner's next diagnostics cover the last episode
    stats = dict(observer.planner)
    successes = sum(e.success for e in episodes)
    records = [
        EpisodeRecord(
            start_state=e.start_state,
            goal_state=e.goal_state,
            success=e.success,
            steps=e.steps,
            final_distance=e.distances[-1] if e.distances else float("nan"),
            plan_ms=_number(stats.get("planning_ms_p50")) or 0.0,
            states=e.states,
            distances=e.distances,
        )
        for e in episodes
    ]
    to_success = [e.steps for e in episodes if e.success]
    result = EvalResult(
        env=args.env,
        policy="brain over ROS 2",
        episodes=len(episodes),
        successes=successes,
        success_rate=successes / len(episodes),
        ci95=wilson_interval(successes, len(episodes)),
        mean_steps_to_success=float(np.mean(to_success)) if to_success else None,
        mean_plan_ms=_number(stats.get("planning_ms_p50")) or 0.0,
        protocol=protocol,
        seed=args.seed,
        records=records,
    )
    sim = make_env(args.env)
    plot_episodes(result, sim.unwrapped, out / "demo.png")
    sim.close()
    write_video([e.frames for e in episodes if e.frames], out / "demo.mp4", fps=int(round(args.rate)))
    return {
        "episodes": len(episodes),
        "successes": successes,
        "success_rate": successes / len(episodes),
        "step_budget": budget,
        "steps": [e.steps for e in episodes],
        "control_hz": _number(stats.get("rate_hz")),
        "latency_ms_p50": _number(stats.get("latency_ms_p50")),
        "latency_ms_p99": _number(stats.get("latency_ms_p99")),
        "planning_ms_p50": _number(stats.get("planning_ms_p50")),
        "planning_ms_p99": _number(stats.get("planning_ms_p99")),
        "planner_errors": int(_number(stats.get("errors")) or 0),
        "backend": stats.get("backend"),
        "method": stats.get("method"),
        "transport": stats.get("rmw"),
        "separate_processes": bool(args.separate_processes),
        "records": result.to_dict()["records"],
    }
