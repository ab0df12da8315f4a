"""The demo's observer: drive the simulated robot through its episodes while the brain plans, and
summarise them (video, plot, successes beside the planner's own diagnostics).

`drive_episodes` runs in a node of its own on the demo's ROS domain; the robot and the brain are
other processes, already started.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from tqdm import tqdm

from ami_robot.ros.diagnostics import DiagnosticsMonitor, NodeDiagnostics
from ami_sim.evaluation import plot_episodes
from ami_sim.registry import make_env
from ami_sim.ros.client import SimRobotClient
from ami_sim.ros.params import episode_protocol
from ami_sim.ros.recording import EpisodeRecorder, EpisodeVideo

STARTUP_TIMEOUT_S = 180.0
RESET_TIMEOUT_S = 60.0
ROBOT_TOPICS = ("robot/status", "camera/image", "goal/image")
"""What the simulated robot publishes per episode; `DemoEpisodes.subscribers` must hold all three."""
DIAGNOSTICS_SETTLE_S = 1.2
"""After the last episode, the planner's next diagnostics (1 Hz) cover it."""
LATENCIES = ("latency", "latency_replan", "latency_prepared", "latency_queued", "planning")
PLANNER_NUMBERS = {"control_hz": "rate_hz"} | {
    f"{name}_ms_{q}": f"{name}_ms_{q}" for name in LATENCIES for q in ("p50", "p99")
}
"""Summary entries from the planner's diagnostics: summary name -> diagnostic key. latency: camera
stamp to the command computed from that image (replan: ticks that planned, prepared: ticks that took
a plan made ahead, queued: the others)."""


@dataclass(frozen=True)
class DemoEpisodes:
    """What to drive: `episodes` start/goal pairs of `env` from `seed`, at `rate_hz`; `goal_offset` and
    `step_budget` 0 are the evaluation protocol's; the first episode waits until the nodes named in
    `subscribers` have subscribed the robot's topics too (a recorder's, so that the bag holds the
    whole run: the robot's goal image is latched one deep, and a second episode's replaces the first's)."""

    env: str
    episodes: int
    rate_hz: float
    seed: int = 0
    goal_offset: int = 0
    step_budget: int = 0
    subscribers: tuple[str, ...] = ()


def drive_episodes(node: Node, plan: DemoEpisodes, out: Path, check: Callable[[], None]) -> dict[str, Any]:
    """Wait for the robot and the brain, run the episodes, write out/demo.mp4 and out/demo.png; the
    summary. `check()` runs before every spin and may raise to stop (Ctrl-C, a child that died)."""

    def spin_once(timeout_s: float) -> None:
        check()
        rclpy.spin_once(node, timeout_sec=timeout_s)

    def subscribed() -> bool:
        return all(
            set(plan.subscribers)
            <= {info.node_name for info in node.get_subscriptions_info_by_topic(node.resolve_topic_name(topic))}
            for topic in ROBOT_TOPICS
        )

    def brain_ready() -> bool:
        planner = diagnostics.latest("/planner")
        return planner is not None and planner.message != "inactive"

    protocol = episode_protocol(plan.env, plan.goal_offset, plan.step_budget)
    episode_timeout_s = 3.0 * protocol.step_budget / plan.rate_hz + 10.0
    diagnostics = DiagnosticsMonitor(node)
    with EpisodeVideo(out / "demo.mp4", fps=round(plan.rate_hz)) as video:
        recorder = EpisodeRecorder(video)
        robot = SimRobotClient(node, recorder.on_status, lambda image: recorder.on_camera(image, robot.goal), spin_once)
        robot.wait_for(
            lambda: brain_ready() and robot.ready() and subscribed(),
            STARTUP_TIMEOUT_S,
            f"the robot, the brain{''.join(f', {name}' for name in plan.subscribers)} did not come up",
        )
        bar = tqdm(range(plan.episodes), desc="demo", unit="episode")
        for number in bar:
            trace = recorder.episodes[robot.run_episode(RESET_TIMEOUT_S, episode_timeout_s)]
            bar.write(
                f"episode {number + 1}/{plan.episodes}: {'reached' if trace.success else 'missed'} the goal "
                f"in {trace.steps} steps (final distance {trace.final_distance:.3f})"
            )
            bar.set_postfix(successes=sum(e.success for e in recorder.episodes.values()))
        end = time.monotonic() + DIAGNOSTICS_SETTLE_S
        while time.monotonic() < end:
            spin_once(0.05)
    planner = diagnostics.latest("/planner") or NodeDiagnostics("/planner", 0, "")
    perception = diagnostics.latest("/perception") or NodeDiagnostics("/perception", 0, "")
    plan_ms = planner.number("planning_ms_p50") or 0.0
    result = recorder.result(plan.env, "brain over ROS 2", protocol, plan.seed, plan_ms)
    sim = make_env(plan.env)
    plot_episodes(result, sim.unwrapped, out / "demo.png")
    sim.close()
    return {
        **result.to_dict(),
        "step_budget": protocol.step_budget,
        "steps": [record.steps for record in result.records],
        "late_steps": [trace.late_steps for trace in recorder.episodes.values()],
        **{name: _finite(planner.number(key)) for name, key in PLANNER_NUMBERS.items()},
        **{f"encode_ms_{q}": _finite(perception.number(f"encode_ms_{q}")) for q in ("p50", "p99")},
        "planner_errors": int(planner.number("errors") or 0),
        "backend": planner.values.get("backend"),
        "method": planner.values.get("method"),
        "transport": planner.values.get("rmw"),
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary of `drive_episodes` in two lines for a terminal."""
    latencies = ", ".join(
        f"{kind} {_ms(summary[f'latency{key}_ms_p50'])}/{_ms(summary[f'latency{key}_ms_p99'])} ms"
        for kind, key in (("all", ""), ("replanning", "_replan"), ("planned ahead", "_prepared"), ("queued", "_queued"))
    )
    return [
        f"{summary['successes']}/{summary['episodes']} goals reached; control {_ms(summary['control_hz'])} Hz, "
        f"{sum(summary['late_steps'])} late of {sum(summary['steps'])} steps over {summary['transport']}",
        f"reaction (camera stamp to command) p50/p99: {latencies}; "
        f"encode {_ms(summary['encode_ms_p50'])} ms, plan {_ms(summary['planning_ms_p50'])} ms (p50)",
    ]


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _finite(value: float | None) -> float | None:
    """A diagnostic number for JSON: None when absent or NaN (nothing measured)."""
    return value if value is not None and math.isfinite(value) else None
