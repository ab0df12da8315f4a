"""What every brain node shares: declared parameters with validation, diagnostics, lifecycle
`main()`, and the latent message.

Latents travel as sensor_msgs/Image with encoding 32FC1, height 1 and width D, carrying the header
(stamp, frame) of the camera image they were encoded from, so the planner knows the age of what it
acts on.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy._rclpy_pybind11 import InvalidHandle
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ami_robot.config import ConfigError
from ami_robot.ros import params as P
from ami_robot.ros.conversions import ConversionError
from ami_robot.ros.qos import EVENTS

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


def latent_to_msg(z: np.ndarray, header: Header) -> Image:
    """Latent (D,) -> sensor_msgs/Image 32FC1, 1 x D, with the camera image's header."""
    z = np.ascontiguousarray(z, dtype="<f4").reshape(-1)
    return Image(
        header=header, height=1, width=z.size, encoding="32FC1", is_bigendian=0, step=4 * z.size, data=z.tobytes()
    )


def msg_to_latent(msg: Image, latent_dim: int) -> np.ndarray:
    """Inverse of `latent_to_msg`; checks encoding, size and finiteness."""
    if msg.encoding != "32FC1" or msg.height != 1 or msg.width != latent_dim or len(msg.data) != 4 * latent_dim:
        raise ConversionError(
            f"expected a 1 x {latent_dim} 32FC1 latent, got {msg.height} x {msg.width} {msg.encoding}"
        )
    z = np.frombuffer(msg.data, dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(z)):
        raise ConversionError("latent holds a non-finite value")
    return z


def stamp_s(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class BrainNode(LifecycleNode):
    """A lifecycle node with declared, validated parameters and a /diagnostics publisher.

    Subclasses implement configure/activate/deactivate/cleanup via the `on_*` callbacks.
    """

    def __init__(self, name: str, specs: list[P.ParameterSpec], **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.specs = specs
        P.declare_parameters(self, specs)
        self.add_on_set_parameters_callback(self._check_parameters)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", EVENTS)
        self.active = False

    def values(self) -> dict[str, Any]:
        """Current parameter values as plain Python, by name."""
        return {s.name: P.plain(self.get_parameter(s.name).value) for s in self.specs}

    def _check_parameters(self, parameters) -> SetParametersResult:
        changes = {p.name: P.plain(p.value) for p in parameters}
        try:
            P.check_choices(changes, self.specs)
            P.validate({**self.values(), **changes})
        except (ConfigError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def diagnose(self, level: bytes, message: str, **values: Any) -> None:
        """Publish one DiagnosticStatus named after this node on /diagnostics."""
        status = DiagnosticStatus(
            level=level, name=self.get_fully_qualified_name(), message=message, hardware_id="ami_robot"
        )
        status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)
        if level == ERROR:
            self.get_logger().error(message, throttle_duration_sec=1.0)
        elif level == WARN:
            self.get_logger().warning(message, throttle_duration_sec=1.0)

    def follow_checkpoint(self, settings: dict[str, Any]) -> str | None:
        """The new checkpoint if a configurator snapshot `settings` switches the model, else None;
        this node's `checkpoint` parameter is updated to it."""
        checkpoint = settings.get("checkpoint")
        if not checkpoint or checkpoint == self.get_parameter("checkpoint").value:
            return None
        self.set_parameters([Parameter("checkpoint", value=checkpoint)])
        return checkpoint

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_activate(self, state) -> TransitionCallbackReturn:
        self.active = True
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.active = False
        return super().on_deactivate(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.active = False
        return SUCCESS


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class BringUpError(RuntimeError):
    """A node refused to configure or activate; its log says why."""


def bring_up(nodes: list[LifecycleNode]) -> None:
    """Configure all `nodes`, then activate them (what a lifecycle manager with autostart does)."""
    for name, trigger in (("configure", "trigger_configure"), ("activate", "trigger_activate")):
        for node in nodes:
            if getattr(node, trigger)() != SUCCESS:
                raise BringUpError(f"{node.get_name()}: {name} failed (see its log)")


def default_torch_threads() -> int:
    """Intra-op threads for torch in a node process: OMP_NUM_THREADS if set, else 1.

    The brain's networks are small, and a thread team that waits for a preempted member is slow
    whenever anything else runs: on 2 cores the shipped model planned in 31 ms (p90 31 ms) on one
    thread and 42 ms (p90 201 ms) on two, and with one core busy elsewhere a 15 ms plan took 1.3 s
    on two threads and 5 ms on one. The `cpu` backend picks its own thread count.
    """
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def run_nodes(
    factories: list[Callable[[], LifecycleNode]], argv: list[str] | None = None, description: str = ""
) -> int:
    """`main()` of every executable: create the nodes in one process, autostart them unless
    --no-autostart, spin until Ctrl-C or shutdown, and clean up.

    One thread runs every callback. rclpy's multi-threaded executor re-polls in a busy loop while a
    mutually exclusive callback runs and holds the GIL nearly all the time, which made a 15 ms plan
    take seconds; one thread also keeps torch and OpenMP to a single team of worker threads.
    Torch runs `default_torch_threads()` intra-op threads.
    """
    torch.set_num_threads(default_torch_threads())
    argv = sys.argv if argv is None else argv
    args_without_ros = rclpy.utilities.remove_ros_args(argv)
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--no-autostart",
        action="store_true",
        help="leave the nodes unconfigured for a lifecycle manager (ros2 lifecycle set ...)",
    )
    options = parser.parse_args(args_without_ros[1:])
    # rclpy's own handler would shut the context down before the nodes could send their stop command.
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    # Ctrl-C and SIGTERM stop the nodes, also when the parent (a shell's background job, a test
    # runner) left SIGINT ignored, which Python would otherwise keep.
    _stop_requested.clear()
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    nodes: list[LifecycleNode] = []
    executor = SingleThreadedExecutor()
    try:
        nodes = [factory() for factory in factories]
        for node in nodes:
            executor.add_node(node)
        if not options.no_autostart:
            bring_up(nodes)
        spin(executor, until=_stop_requested)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except BringUpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for node in nodes:
            _stop(node)
        exit_if_teardown_hangs(SHUTDOWN_TIMEOUT_S)
        executor.shutdown(timeout_sec=2.0)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def spin(executor: Executor, until: threading.Event) -> None:
    """Run callbacks until `until` is set or rclpy shuts down, checking at least every 0.1 s.

    A lifecycle transition (cleanup, model switch) destroys timers and subscriptions that the
    executor's last wait may still list as ready; rclpy then reports InvalidHandle for that wait
    only, and the executor carries on with the entities that remain.
    """
    while rclpy.ok() and not until.is_set():
        try:
            executor.spin_once(timeout_sec=0.1)
        except InvalidHandle:
            continue


SHUTDOWN_TIMEOUT_S = 10.0


def exit_if_teardown_hangs(timeout_s: float, exit_code: int = 0) -> None:
    """Call once the robot has been stopped: should the teardown that follows hang (rclpy waiting
    on a callback thread, a child that will not die), leave with `exit_code` after `timeout_s`."""

    def leave() -> None:
        print(f"shutdown did not finish within {timeout_s:.0f} s; exiting", file=sys.stderr)
        os._exit(exit_code)

    timer = threading.Timer(timeout_s, leave)
    timer.daemon = True
    timer.start()


_stop_requested = threading.Event()


def _interrupt(signum, frame) -> None:
    """Ctrl-C and SIGTERM: the executor stops between callbacks, so no callback is cut short (an
    exception raised inside one can land in rclpy's own code and be reported as its error)."""
    _stop_requested.set()


def _stop(node: LifecycleNode) -> None:
    """Deactivate an active node so it sends its stop command before the process exits."""
    try:
        if getattr(node, "active", False) and rclpy.ok():
            node.trigger_deactivate()
            time.sleep(0.05)
    except Exception as exc:
        print(f"{node.get_name()}: deactivate on shutdown failed: {exc}", file=sys.stderr)
