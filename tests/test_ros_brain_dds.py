"""The brain process over DDS (localhost only): commands, safety behaviours, model switch, lifecycle.

A `brain` process (configurator, perception, planner, memory) runs with a tiny random world model;
this test process plays the camera and the goal, and watches the commands and /diagnostics.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import tiny_checkpoint, tiny_world_model

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from nav_msgs.msg import Path as PathMsg  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402

from ami_robot.ros.conversions import numpy_to_image  # noqa: E402
from ami_robot.ros.executables import node_command  # noqa: E402
from ami_robot.ros.qos import CAMERA, COMMAND, EVENTS, LATCHED  # noqa: E402
from ami_robot.runtime import spawn, stop_process_groups  # noqa: E402
from ami_robot.world_model import save_checkpoint  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
BOUND, MAX_RATE, IMAGE_TIMEOUT_S = 0.3, 0.1, 0.5
DEADLINE_S = 10.0  # generous: these tests share 2 cores with other processes; overruns are tested with 1e-4


def overflowing_checkpoint(directory: Path) -> Path:
    """A tiny world model whose finite predictor weights are so large (1e30) that its predictions
    overflow float32, so every plan's cost is non-finite."""
    model = tiny_world_model()
    with torch.no_grad():
        for parameter in model.predictor.parameters():
            parameter.fill_(1e30)
    return save_checkpoint(directory, model)


def start_brain(checkpoint: Path, log: Path, *extra: str, ros_args: tuple[str, ...] = ()) -> subprocess.Popen:
    overrides = log.with_suffix(".yaml")
    overrides.write_text(f"""/**:
  ros__parameters:
    checkpoint: {checkpoint}
/**/configurator:
  ros__parameters:
    backend: torch
    planner: {{horizon: 3, samples: 32, iterations: 2, elites: 4}}
/**/planner:
  ros__parameters:
    control_rate_hz: 20.0
    safety: {{action_low: [-{BOUND}], action_high: [{BOUND}], max_rate: {MAX_RATE},
              image_timeout_s: {IMAGE_TIMEOUT_S}, deadline_s: {DEADLINE_S}}}
""")
    brain_yaml = REPO / "launch" / "params" / "brain.yaml"
    argv = node_command(
        "ami_robot.ros.brain_node", brain_yaml, "--params-file", str(overrides), *ros_args, node_args=extra
    )
    return spawn(argv, log, os.environ)


def stop_process(proc: subprocess.Popen, signum: int = signal.SIGINT) -> int:
    stop_process_groups([proc], escalation=((signum, 30.0), (signal.SIGKILL, 5.0)))
    return proc.returncode


class Probe:
    """Camera, goal and observer of the brain, in this test process."""

    def __init__(self, namespace: str = "") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("probe", namespace=namespace, context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.camera = self.node.create_publisher(Image, "camera/image", CAMERA)
        self.goal = self.node.create_publisher(Image, "goal/image", LATCHED)
        self.commands: list[tuple[float, np.ndarray]] = []
        self.diagnostics: list[tuple[str, int, str]] = []
        self.surprises: list[float] = []
        self.plans = 0
        self.plan_length = 0
        self.node.create_subscription(TwistStamped, "cmd_vel", self._on_command, COMMAND)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, EVENTS)
        self.node.create_subscription(Float32, "brain/surprise", lambda m: self.surprises.append(m.data), EVENTS)
        self.node.create_subscription(PathMsg, "brain/plan", self._on_plan, EVENTS)
        self.rng = np.random.default_rng(0)

    def _on_command(self, msg: TwistStamped) -> None:
        self.commands.append((time.monotonic(), np.array([msg.twist.linear.x, msg.twist.linear.y])))

    def _on_plan(self, msg: PathMsg) -> None:
        self.plans += 1
        self.plan_length = len(msg.poses)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics.append((status.name, int.from_bytes(status.level, "little"), status.message))

    def spin(self, seconds: float, camera_hz: float = 0.0, image: Callable[[], Image] | None = None) -> None:
        end = time.monotonic() + seconds
        next_image = time.monotonic()
        while time.monotonic() < end:
            if camera_hz and time.monotonic() >= next_image:
                self.camera.publish(image() if image else self.image())
                next_image += 1.0 / camera_hz
            self.executor.spin_once(timeout_sec=0.01)

    def spin_until(self, predicate: Callable[[], bool], timeout_s: float, camera_hz: float = 0.0) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if predicate():
                return True
            self.spin(0.05, camera_hz)
        return predicate()

    def image(self, size: int = 32) -> Image:
        pixels = self.rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        return numpy_to_image(pixels, self.node.get_clock().now().to_msg())

    def call(self, client, request, timeout_s: float = 10.0, resend_every_s: float | None = None):
        """The service's response. A request sent while DDS is still matching the response's
        reader can be lost; a query that changes nothing (`resend_every_s`) is sent again."""
        assert client.wait_for_service(timeout_sec=timeout_s), f"service {client.srv_name} not available"
        deadline = time.monotonic() + timeout_s
        while True:
            future = client.call_async(request)
            wait_s = min(resend_every_s or timeout_s, deadline - time.monotonic())
            self.executor.spin_until_future_complete(future, timeout_sec=max(0.0, wait_s))
            if future.done() or time.monotonic() >= deadline:
                break
            client.remove_pending_request(future)
        assert future.done(), f"{client.srv_name} did not answer"
        return future.result()

    def set_parameters(self, node_name: str, parameters: list[Parameter], expect_success: bool = True) -> list[str]:
        client = AsyncParameterClient(self.node, node_name)
        assert client.wait_for_services(timeout_sec=10.0)
        future = client.set_parameters(parameters)
        self.executor.spin_until_future_complete(future, timeout_sec=10.0)
        results = future.result().results
        assert all(r.successful == expect_success for r in results), [r.reason for r in results]
        return [r.reason for r in results]

    def diagnosed(self, name: str, level: int, text: str, since: int = 0) -> bool:
        return any(n.endswith(name) and lv == level and text in m for n, lv, m in self.diagnostics[since:])

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    return tiny_checkpoint(root / "tiny"), overflowing_checkpoint(root / "overflowing")


@pytest.fixture(scope="module")
def running_brain(checkpoints, tmp_path_factory):
    log = tmp_path_factory.mktemp("brain") / "brain.log"
    proc = start_brain(checkpoints[0], log)
    probe = Probe()
    try:
        ready = probe.spin_until(lambda: probe.diagnosed("/planner", 1, "stopped") or proc.poll() is not None, 60.0)
        assert ready and proc.poll() is None, log.read_text()[-3000:]
        probe.goal.publish(probe.image())
        yield proc, probe, log
    finally:
        probe.close()
        stop_process(proc)


def moving(commands: list[tuple[float, np.ndarray]]) -> list[np.ndarray]:
    return [a for _, a in commands if np.any(a != 0.0)]


def test_commands_stay_inside_bounds_and_rate_limits(running_brain) -> None:
    _proc, probe, log = running_brain
    probe.commands.clear()
    probe.spin_until(lambda: len(moving(probe.commands)) >= 10, 60.0, camera_hz=20.0)
    actions = [a for _, a in probe.commands]
    assert len(moving(probe.commands)) >= 10, (
        f"the brain should drive; got {len(actions)} commands\n{log.read_text()[-2000:]}"
    )
    assert all(np.all(np.abs(a) <= BOUND + 1e-6) for a in actions)
    for previous, current in itertools.pairwise(actions):
        if np.any(current != 0.0):  # stops are immediate; motion is rate limited
            assert np.all(np.abs(current - previous) <= MAX_RATE + 1e-6), (previous, current)
    assert probe.plans > 0 and probe.surprises and np.all(np.isfinite(probe.surprises))
    assert probe.spin_until(lambda: probe.diagnosed("/planner", 0, "controlling"), 10.0, camera_hz=20.0)


def test_no_fresh_camera_image_stops_the_robot(running_brain) -> None:
    _proc, probe, _log = running_brain
    assert probe.spin_until(lambda: bool(moving(probe.commands[-5:])), 15.0, camera_hz=20.0), (
        "driving before the camera goes quiet"
    )
    quiet_since = time.monotonic()
    mark = len(probe.diagnostics)

    def late() -> list[np.ndarray]:
        return [a for t, a in probe.commands if t > quiet_since + IMAGE_TIMEOUT_S + 0.2]

    assert probe.spin_until(lambda: len(late()) >= 3, 15.0), "commands keep coming while the camera is quiet"
    assert all(np.all(a == 0.0) for a in late())
    assert probe.spin_until(lambda: probe.diagnosed("/planner", 1, "camera image too old", mark), 3.0)


def test_malformed_images_are_rejected_with_a_diagnostic(running_brain) -> None:
    proc, probe, _log = running_brain
    mark = len(probe.diagnostics)
    malformed = [
        Image(height=32, width=32, encoding="mono8", step=32, data=bytes(32 * 32)),
        Image(height=32, width=32, encoding="rgb8", step=96, data=bytes(100)),
        Image(height=0, width=0, encoding="rgb8", step=0, data=b""),
    ]

    def texts() -> list[str]:
        return [
            m
            for n, lv, m in probe.diagnostics[mark:]
            if n.endswith("/perception") and lv == 1 and "camera image rejected" in m
        ]

    def all_rejected() -> bool:
        return all(any(key in t for t in texts()) for key in ("mono8", "100 bytes", "empty"))

    for _ in range(20):  # the camera QoS is best effort: send again until each one is reported
        for msg in malformed:
            probe.camera.publish(msg)
            probe.spin(0.2)
        if probe.spin_until(all_rejected, 1.0):
            break
    assert all_rejected(), texts()
    probe.commands.clear()
    assert probe.spin_until(lambda: bool(moving(probe.commands)), 15.0, camera_hz=20.0), "driving on valid images"
    assert proc.poll() is None, "still alive"


def test_planner_settings_change_at_run_time_and_invalid_ones_are_refused(running_brain) -> None:
    _proc, probe, _log = running_brain
    probe.spin(1.0, camera_hz=20.0)
    assert probe.plan_length == 3 + 1, "horizon 3 from the start-up parameters"
    reasons = probe.set_parameters("/configurator", [Parameter("planner.elites", value=1000)], expect_success=False)
    assert "elites" in reasons[0]
    probe.set_parameters("/configurator", [Parameter("planner.horizon", value=5)])
    try:
        assert probe.spin_until(lambda: probe.plan_length == 5 + 1, 5.0, camera_hz=20.0), (
            "the planner follows the configurator"
        )
    finally:
        probe.set_parameters("/configurator", [Parameter("planner.horizon", value=3)])


def test_planning_overrun_stops_with_an_error(running_brain) -> None:
    _proc, probe, _log = running_brain
    mark = len(probe.diagnostics)
    probe.set_parameters("/planner", [Parameter("safety.deadline_s", value=1e-4)])
    try:
        assert probe.spin_until(
            lambda: probe.diagnosed("/planner", 2, "overran its deadline", mark), 30.0, camera_hz=20.0
        )
        probe.commands.clear()
        probe.spin_until(lambda: len(probe.commands) >= 5, 15.0, camera_hz=20.0)
        assert probe.commands and all(np.all(a == 0.0) for _, a in probe.commands)
    finally:
        probe.set_parameters("/planner", [Parameter("safety.deadline_s", value=DEADLINE_S)])


def test_a_planner_failure_from_a_switched_model_stops_with_an_error(running_brain, checkpoints) -> None:
    """The planner refuses to return a plan whose cost overflowed (PlanningError): a planner failure,
    reported as such, not as a non-finite plan."""
    _proc, probe, _log = running_brain
    good, broken = checkpoints
    mark = len(probe.diagnostics)
    probe.set_parameters("/configurator", [Parameter("checkpoint", value=str(broken))])

    def failed() -> bool:
        return probe.diagnosed("/planner", 2, "stop: planner raised an exception PlanningError", mark)

    try:
        assert probe.spin_until(failed, 30.0, camera_hz=20.0), "an error diagnostic for the broken model"
        assert not probe.diagnosed("/planner", 2, "non-finite", mark), "a planner failure is not a non-finite plan"
        probe.commands.clear()
        probe.spin_until(lambda: len(probe.commands) >= 5, 15.0, camera_hz=20.0)
        assert probe.commands and all(np.all(a == 0.0) for _, a in probe.commands)
    finally:
        probe.set_parameters("/configurator", [Parameter("checkpoint", value=str(good))])
    probe.goal.publish(probe.image())
    probe.commands.clear()
    assert probe.spin_until(lambda: bool(moving(probe.commands)), 30.0, camera_hz=20.0), (
        "driving again after switching back to the good model"
    )


def test_lifecycle_transitions_over_dds(checkpoints, tmp_path: Path) -> None:
    """In its own namespace, so the module's other brain process does not interfere."""
    proc = start_brain(checkpoints[0], tmp_path / "brain.log", "--no-autostart", ros_args=("-r", "__ns:=/lifecycle"))
    probe = Probe(namespace="/lifecycle")
    names = ("configurator", "perception", "planner", "memory")
    get = {n: probe.node.create_client(GetState, f"/lifecycle/{n}/get_state") for n in names}
    change = {n: probe.node.create_client(ChangeState, f"/lifecycle/{n}/change_state") for n in names}

    def transition(node: str, transition_id: int) -> None:
        assert probe.call(change[node], ChangeState.Request(transition=Transition(id=transition_id)), 60.0).success

    def state(node: str) -> int:
        return probe.call(get[node], GetState.Request(), 30.0, resend_every_s=5.0).current_state.id

    try:
        assert all(state(n) == State.PRIMARY_STATE_UNCONFIGURED for n in names)
        probe.spin(0.5, camera_hz=20.0)
        assert not probe.commands, "an unconfigured brain sends nothing"
        for n in names:
            transition(n, Transition.TRANSITION_CONFIGURE)
        assert all(state(n) == State.PRIMARY_STATE_INACTIVE for n in names)
        for n in names:
            transition(n, Transition.TRANSITION_ACTIVATE)
        assert all(state(n) == State.PRIMARY_STATE_ACTIVE for n in names)
        probe.goal.publish(probe.image())
        assert probe.spin_until(lambda: len(moving(probe.commands)) >= 3, 20.0, camera_hz=20.0), "active: driving"
        transition("planner", Transition.TRANSITION_DEACTIVATE)
        assert state("planner") == State.PRIMARY_STATE_INACTIVE
        probe.spin(0.3)
        assert np.all(probe.commands[-1][1] == 0.0), "deactivate sends the stop command"
        count = len(probe.commands)
        probe.spin(0.5, camera_hz=20.0)
        assert len(probe.commands) == count, "an inactive planner sends nothing"
        transition("planner", Transition.TRANSITION_CLEANUP)
        assert state("planner") == State.PRIMARY_STATE_UNCONFIGURED
        assert proc.poll() is None
    finally:
        probe.close()
        assert stop_process(proc) == 0, (tmp_path / "brain.log").read_text()[-2000:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_driving_brain_stopped_by_a_signal_stops_the_robot_and_exits_cleanly(
    checkpoints, tmp_path: Path, signum
) -> None:
    """Ctrl-C, or the SIGTERM of ros2 launch and service managers, while the robot moves."""
    proc = start_brain(checkpoints[0], tmp_path / "brain.log", ros_args=("-r", "__ns:=/stopping"))
    probe = Probe(namespace="/stopping")
    try:
        ready = probe.spin_until(
            lambda: probe.diagnosed("/stopping/planner", 1, "stopped") or proc.poll() is not None, 60.0
        )
        assert ready and proc.poll() is None, (tmp_path / "brain.log").read_text()[-2000:]
        probe.goal.publish(probe.image())
        assert probe.spin_until(lambda: len(moving(probe.commands)) >= 3, 20.0, camera_hz=20.0), "driving"
        os.killpg(proc.pid, signum)
        assert probe.spin_until(lambda: proc.poll() is not None, 15.0), "the brain exits"
        probe.spin(0.3)
        assert np.all(probe.commands[-1][1] == 0.0), "the last command stops the robot"
        log = (tmp_path / "brain.log").read_text()
        assert proc.returncode == 0 and "Traceback" not in log, log[-2000:]
    finally:
        probe.close()
        stop_process(proc)
