"""Planner (actor) node: receding-horizon MPC that answers each camera image at once, behind the safety guard.

Subscribes `brain/latent`, `brain/goal_latent` and the configurator's `brain/settings`. Each latent
(one per camera image) is answered at once with the command computed from it: the next action of
the current plan, or, every `replan_every` model steps (one by default), a new plan. The command
goes on `cmd_vel` (geometry_msgs/TwistStamped, `command_type` twist) or `command`
(std_msgs/Float32MultiArray, `command_type` array); when it replanned, the plan as `brain/plan`
(nav_msgs/Path, actions integrated as x/y velocities) and `brain/plan/markers`
(visualization_msgs/MarkerArray: the path, the elites' spread, cost and surprise; see
`ami_robot.ros.visualization`) for RViz and Foxglove; and as each model step starts, its normalised
action block on `brain/action_block` (for the memory node's surprise). A watchdog timer at
`control_rate_hz` sends the stop command whenever no fresh image has come (none yet, or none for
`safety.image_timeout_s`). Every second, and at once on an error, /diagnostics reports the rate,
the reaction latency (camera stamp to the command computed from that image; all ticks, and
separately those that replanned, those that took a plan made ahead (`plan_ahead`, planned on a
worker thread while the previous block's actions went out) and those that sent a queued action),
planning time, cost and backend.

configure loads the model and builds the planner, activate starts reacting and the watchdog,
deactivate sends the stop command and stops both. A backend this machine cannot run (`cuda`
without a GPU) is replaced by the best one it can, every other setting kept, and reported as a WARN.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import rclpy
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import ParameterEvent
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray
from visualization_msgs.msg import MarkerArray

from ami_robot.actor import Actor, BrainCommand
from ami_robot.actor.safety import StopReason
from ami_robot.config import ConfigError
from ami_robot.configurator import BrainSettings
from ami_robot.errors import BackendUnavailableError
from ami_robot.ros import params as P
from ami_robot.ros.conversions import (
    ConversionError,
    action_to_twist,
    array_to_msg,
    event_to_settings,
    msg_to_latent,
    plan_to_path,
    stamp_s,
)
from ami_robot.ros.node_base import ERROR, FAILURE, OK, SUCCESS, WARN, BrainNode, percentiles
from ami_robot.ros.qos import COMMAND, EVENTS, LATCHED, LATEST
from ami_robot.ros.runtime import run_nodes
from ami_robot.ros.visualization import plan_markers
from ami_robot.runtime import yield_cpu
from ami_robot.world_model.checkpoint import load_model
from ami_robot.world_model.model import WorldModel

PLAN_AHEAD_NICENESS = 5
"""Added to the plan-ahead thread's niceness: the images that come while it plans are answered first."""
CONFIGURATOR_OWNED = tuple(s.name for s in P.CONFIGURATOR if s.name in P.SETTINGS_NAMES)
STATS_WINDOW = 10000
"""Latest ticks the latency and planning-time percentiles cover."""
REACTION_KINDS = ("replan", "prepared", "queued")
"""Reaction latencies are kept apart for ticks that planned, ticks that took a plan made ahead and
ticks that sent a queued action."""


class PlannerNode(BrainNode):
    """`latent_topic`: take latents from `brain/latent` (False: only from `on_latent` calls, as the
    perception node in the same process makes them)."""

    def __init__(self, latent_topic: bool = True, **kwargs) -> None:
        super().__init__("planner", P.PLANNER, **kwargs)
        self.latent_topic = latent_topic
        self.actor: Actor | None = None
        self.goal_msg: Image | None = None
        self.configured_settings: dict[str, Any] = {}
        self.backend_fallback = ""
        self.reaction_ms: dict[str, deque[float]] = {kind: deque(maxlen=STATS_WINDOW) for kind in REACTION_KINDS}
        self.planning_ms: deque[float] = deque(maxlen=STATS_WINDOW)
        self.watchdog_timer = None
        self.plan_ahead_worker = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="plan-ahead", initializer=yield_cpu, initargs=(PLAN_AHEAD_NICENESS,)
        )
        self._reset_stats()
        self.add_post_set_parameters_callback(self.on_parameters_set)

    def settings(self) -> BrainSettings:
        """This node's parameters with the configurator's latest snapshot over them."""
        return P.validate({**self.values(), **self.configured_settings})

    def on_configure(self, state):
        values = self.values()
        try:
            settings = self.settings()
            model = load_model(settings.checkpoint)
            self.actor, self.backend_fallback = self.build_actor(model, settings)
        except Exception as exc:
            self.get_logger().error(f"cannot configure the planner: {exc}")
            return FAILURE
        if values["command_type"] == "twist" and model.env_action_dim > 3:
            self.get_logger().error(
                f"command_type twist carries at most 3 action values, the model has {model.env_action_dim}"
            )
            return FAILURE
        self.twist = values["command_type"] == "twist"
        self.frame_id = values["frame_id"]
        self.command_pub = (
            self.create_publisher(TwistStamped, "cmd_vel", COMMAND)
            if self.twist
            else self.create_publisher(Float32MultiArray, "command", COMMAND)
        )
        self.path_pub = self.create_publisher(Path, "brain/plan", EVENTS)
        self.markers_pub = self.create_publisher(MarkerArray, "brain/plan/markers", EVENTS)
        self.block_pub = self.create_publisher(Float32MultiArray, "brain/action_block", EVENTS)
        self.subs = [
            self.create_subscription(Image, "brain/goal_latent", self.on_goal, LATCHED),
            self.create_subscription(ParameterEvent, "brain/settings", self.on_settings, LATCHED),
        ]
        if self.latent_topic:
            self.subs.append(self.create_subscription(Image, "brain/latent", self.on_latent, LATEST))
        self.status_timer = self.create_timer(1.0, self.report)
        return SUCCESS

    def on_activate(self, state):
        self._reset_stats()
        self.watchdog_timer = self.create_timer(1.0 / self.actor.settings.control_rate_hz, self.watchdog)
        return super().on_activate(state)

    def on_deactivate(self, state):
        if self.watchdog_timer is not None:
            self.destroy_timer(self.watchdog_timer)
            self.watchdog_timer = None
        self.publish_command(self.actor.stop(StopReason.INACTIVE))
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        for sub in self.subs:
            self.destroy_subscription(sub)
        for pub in (self.command_pub, self.path_pub, self.markers_pub, self.block_pub):
            self.destroy_publisher(pub)
        self.destroy_timer(self.status_timer)
        self.actor.discard_prepared()
        self.actor = None
        self.goal_msg = None
        return SUCCESS

    def destroy_node(self) -> None:
        if getattr(self, "actor", None) is not None:  # None, or unset when __init__ refused its parameters
            self.actor.discard_prepared()
        if hasattr(self, "plan_ahead_worker"):
            self.plan_ahead_worker.shutdown(wait=True, cancel_futures=True)
        super().destroy_node()

    def on_latent(self, msg: Image) -> None:
        if self.actor is None:
            return
        try:
            z = msg_to_latent(msg, self.actor.model.latent_dim)
        except ConversionError as exc:
            self.diagnose(WARN, f"latent rejected: {exc}")
            return
        image_stamp_s = stamp_s(msg.header)
        self.actor.observe(z, image_stamp_s)
        if self.active:
            self.react(image_stamp_s)

    def on_goal(self, msg: Image) -> None:
        if self.actor is None:
            return
        self.goal_msg = msg
        try:
            self.actor.set_goal_latent(msg_to_latent(msg, self.actor.model.latent_dim))
        except ConversionError as exc:
            self.diagnose(WARN, f"goal latent rejected: {exc}")
            return
        self.get_logger().info("new goal")

    def on_settings(self, msg: ParameterEvent) -> None:
        snapshot = {k: v for k, v in event_to_settings(msg).items() if k in CONFIGURATOR_OWNED}
        if self.actor is None or not self.rebuild(snapshot, f"settings from {msg.node}"):
            return
        self.configured_settings = snapshot
        self.follow_checkpoint(snapshot)

    def on_parameters_set(self, parameters) -> None:
        """This node's own parameters (safety, rate) changed at run time: rebuild the actor with them."""
        if self.actor is not None and {p.name for p in parameters} - {"checkpoint", "command_type", "frame_id"}:
            self.rebuild(self.configured_settings, "parameter change")

    def rebuild(self, snapshot: dict[str, Any], source: str) -> bool:
        """Replace the actor by one built with `snapshot` over this node's parameters; False if rejected."""
        old = self.actor
        try:
            settings = P.validate({**self.values(), **snapshot})
            model = old.model if settings.checkpoint == old.settings.checkpoint else load_model(settings.checkpoint)
            actor, backend_fallback = self.build_actor(model, settings)
        except (ConfigError, ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
            self.diagnose(ERROR, f"{source} rejected, keeping the current settings: {exc}")
            return False
        actor.take_over(old)
        if actor.model is not old.model and self.goal_msg is not None:
            # The configurator sends the goal encoded by the new model on its own topic, and it may
            # arrive before these settings: keep the latest goal; a later one replaces it.
            try:
                actor.set_goal_latent(msg_to_latent(self.goal_msg, model.latent_dim))
            except ConversionError:
                pass
        self.actor, self.backend_fallback = actor, backend_fallback
        if self.watchdog_timer is not None and settings.control_rate_hz != old.settings.control_rate_hz:
            self.destroy_timer(self.watchdog_timer)
            self.watchdog_timer = self.create_timer(1.0 / settings.control_rate_hz, self.watchdog)
        self.get_logger().info(f"{source} applied ({settings.method}, backend {actor.backend})")
        return True

    def build_actor(self, model: WorldModel, settings: BrainSettings) -> tuple[Actor, str]:
        """(actor, fallback note): the actor for `settings`, or, when its backend cannot run here, for
        the same settings on the backend "auto" picks; the note says so (empty: no fallback)."""
        try:
            return Actor(model, settings, executor=self.plan_ahead_worker), ""
        except BackendUnavailableError as exc:
            actor = Actor(model, dataclasses.replace(settings, backend="auto"), executor=self.plan_ahead_worker)
            note = f"backend {settings.backend} unavailable, planning on {actor.backend} with every other setting kept"
            self.diagnose(WARN, f"{note}: {exc}")
            return actor, note

    def react(self, image_stamp_s: float) -> None:
        """Answer the camera image stamped `image_stamp_s` (just observed): compute the command and send it."""
        try:
            command = self.actor.tick(self.now_s())
        except Exception as exc:
            command = self.actor.stop(StopReason.PLANNER_FAILED, f"{type(exc).__name__}: {exc}")
        self.send(command)
        if not command.stopped:
            kind = "queued" if not command.replanned else "prepared" if command.prepared else "replan"
            self.reaction_ms[kind].append((self.now_s() - image_stamp_s) * 1e3)
        if command.replanned and not command.stopped:
            self.planning_ms.append(command.planning_s * 1e3)
            self.cost = command.cost
            dt_s, stamp = 1.0 / self.actor.settings.control_rate_hz, self.get_clock().now().to_msg()
            self.path_pub.publish(plan_to_path(command.plan, dt_s, stamp, self.frame_id))
            self.markers_pub.publish(
                plan_markers(command.plan, command.plan_std, dt_s, stamp, self.frame_id, command.cost, command.surprise)
            )
        if command.block is not None:
            self.block_pub.publish(array_to_msg(command.block))

    def watchdog(self) -> None:
        """Send the stop command while no fresh camera image has come (none yet, or too old)."""
        if self.actor is None:
            return
        fault, detail = self.actor.guard.image_fault(self.now_s())
        if fault is not StopReason.NONE:
            self.send(self.actor.stop(fault, detail))

    def send(self, command: BrainCommand) -> None:
        """Publish `command` and count it (stops, errors) for the diagnostics."""
        self.publish_command(command)
        self.ticks += 1
        self.last = command
        if command.stopped:
            self.stops += 1
            if command.is_error:
                self.errors += 1
                self.diagnose(ERROR, f"stop: {command.reason.value} {command.detail}".strip(), **self.stats())

    def publish_command(self, command: BrainCommand) -> None:
        if self.twist:
            self.command_pub.publish(action_to_twist(command.action, self.get_clock().now().to_msg(), self.frame_id))
        else:
            self.command_pub.publish(array_to_msg(command.action))

    def _reset_stats(self) -> None:
        self.ticks = self.stops = self.errors = 0
        self.started_s = time.monotonic()
        self.cost = float("nan")
        self.last: BrainCommand | None = None
        for latencies in self.reaction_ms.values():
            latencies.clear()
        self.planning_ms.clear()

    def stats(self) -> dict[str, Any]:
        """Measured since activation: rate_hz (commands per second), reaction latency (camera stamp to
        the command from that image: all, replanning, prepared and queued ticks) and planning time
        percentiles."""
        elapsed = max(time.monotonic() - self.started_s, 1e-9)
        reactions = {"": [ms for kind in REACTION_KINDS for ms in self.reaction_ms[kind]]}
        reactions.update({f"_{kind}": list(self.reaction_ms[kind]) for kind in REACTION_KINDS})
        numbers = {
            "rate_hz": self.ticks / elapsed if self.active else 0.0,
            "ticks": self.ticks,
            "plans": len(self.planning_ms),
            "stops": self.stops,
            "errors": self.errors,
        }
        for suffix, latencies in reactions.items():
            numbers.update(percentiles(f"latency{suffix}_ms", latencies))
        numbers.update(percentiles("planning_ms", self.planning_ms))
        return numbers | {
            "cost": self.cost,
            "backend": self.actor.backend if self.actor else "none",
            "method": self.actor.settings.method if self.actor else "none",
            "rmw": rclpy.get_rmw_implementation_identifier(),
            "last_stop": self.last.reason.value if self.last is not None and self.last.stopped else "",
        }

    def report(self) -> None:
        if not self.active:
            self.diagnose(WARN, "inactive", **self.stats())
        elif self.last is not None and self.last.stopped:
            self.diagnose(ERROR if self.last.is_error else WARN, f"stopped: {self.last.reason.value}", **self.stats())
        elif self.backend_fallback:
            self.diagnose(WARN, f"controlling; {self.backend_fallback}", **self.stats())
        else:
            self.diagnose(OK, "controlling", **self.stats())


def main(argv: list[str] | None = None) -> int:
    return run_nodes([PlannerNode], argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
