"""`main()` of every ROS 2 executable (the brain's nodes and the simulated robot): one process,
one executor thread, Ctrl-C and SIGTERM as a stop request, a clean shutdown.

One SingleThreadedExecutor runs every callback. rclpy's multi-threaded executor re-polls in a busy
loop while a mutually exclusive callback runs and holds the GIL nearly all the time, which made a
15 ms plan take seconds; one thread also keeps torch and OpenMP to a single team of worker threads.

SIGINT and SIGTERM (a terminal, ros2 launch, a service manager) only set a stop flag
(`ami_robot.runtime`), for the whole life of the process: the executor stops between callbacks,
so none is cut short, and a second Ctrl-C (ros2 launch forwards one after the terminal's) changes
nothing, during the teardown or after it. rclpy's own handler
is not installed: it would shut the context down before the nodes could send their stop command.
Then active lifecycle nodes are deactivated (the planner sends the stop command last) and every
node is destroyed, within `SHUTDOWN_TIMEOUT_S`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence

import rclpy
from rclpy._rclpy_pybind11 import InvalidHandle
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from ami_robot.errors import AmiRobotError
from ami_robot.runtime import (
    StopFlag,
    TeardownWatchdog,
    configure_logging,
    ignore_stop_signals,
    request_stop_on_signals,
)

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 10.0


class BringUpError(RuntimeError):
    """A node refused to configure or activate; its log says why."""


def bring_up(nodes: Sequence[LifecycleNode]) -> None:
    """Configure all `nodes`, then activate them (what a lifecycle manager with autostart does)."""
    for name, trigger in (("configure", "trigger_configure"), ("activate", "trigger_activate")):
        for node in nodes:
            if getattr(node, trigger)() != TransitionCallbackReturn.SUCCESS:
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
    factories: Sequence[Callable[[], LifecycleNode]], argv: list[str] | None = None, description: str = ""
) -> int:
    """`main()` of the brain's executables: the command line (`--no-autostart` leaves the nodes
    unconfigured for a lifecycle manager), torch on `default_torch_threads()`, then `serve`."""
    import torch

    argv = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--no-autostart",
        action="store_true",
        help="leave the nodes unconfigured for a lifecycle manager (ros2 lifecycle set ...)",
    )
    options = parser.parse_args(rclpy.utilities.remove_ros_args(argv)[1:])
    torch.set_num_threads(default_torch_threads())
    return serve(factories, argv, autostart=not options.no_autostart)


def serve(factories: Sequence[Callable[[], Node]], argv: list[str] | None = None, autostart: bool = True) -> int:
    """Create the nodes in this process, configure and activate the lifecycle ones if `autostart`,
    spin until Ctrl-C, SIGTERM or an external shutdown, then shut down (module docstring).

    `argv` carries the ROS arguments (`--ros-args ...`). Returns the exit code: 0, or 1 when a node
    would not come up, 2 when a node refused its start-up settings.
    """
    configure_logging()
    stop = StopFlag()
    request_stop_on_signals(stop)
    rclpy.init(args=sys.argv if argv is None else argv, signal_handler_options=SignalHandlerOptions.NO)
    nodes: list[Node] = []
    executor = SingleThreadedExecutor()
    try:
        for factory in factories:
            nodes.append(factory())
            executor.add_node(nodes[-1])
        if autostart:
            bring_up([node for node in nodes if isinstance(node, LifecycleNode)])
        spin(executor, until=stop)
    except ExternalShutdownException:
        pass
    except BringUpError as exc:
        logger.error("%s", exc)
        return 1
    except AmiRobotError as exc:  # a node refused its start-up parameters or settings file
        logger.error("%s", " ".join(str(exc).split()))
        return 2
    finally:
        for node in nodes:
            _deactivate(node)
        TeardownWatchdog(SHUTDOWN_TIMEOUT_S).start()
        executor.shutdown(timeout_sec=2.0)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
        ignore_stop_signals()
    return 0


def spin(executor: Executor, until: StopFlag) -> None:
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


def _deactivate(node: Node) -> None:
    """Deactivate an active brain node so it sends its stop command before the process exits."""
    try:
        if isinstance(node, LifecycleNode) and getattr(node, "active", False) and rclpy.ok():
            node.trigger_deactivate()
            time.sleep(0.05)
    except Exception:
        logger.exception("%s: deactivate on shutdown failed", node.get_name())
