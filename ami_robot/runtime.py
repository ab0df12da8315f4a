"""Process plumbing shared by the node executables, `ami-robot demo`, `ami-robot collect` and the tests.

- Stop signals: SIGINT and SIGTERM only set a `StopFlag` (`stop_on_signals`); the program checks it
  at a point of its choosing. Nothing is raised from a handler, where it could land in code that
  swallows it (a weakref callback, rclpy's own teardown), and no lock is taken in one.
- Children die with their parent: `die_with_parent` (Linux `prctl(PR_SET_PDEATHSIG)`; a no-op elsewhere).
- Supervision: `ChildProcesses` starts commands in their own process groups and stops them with
  SIGINT, then SIGTERM, then SIGKILL.
- `TeardownWatchdog`: leaves the process should its teardown hang.
- `yield_cpu`: lower the scheduling priority of work that must not delay the control loop
  (recording, planning ahead).

No ROS here.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
ESCALATION: tuple[tuple[signal.Signals, float], ...] = (
    (signal.SIGINT, 5.0),
    (signal.SIGTERM, 3.0),
    (signal.SIGKILL, 3.0),
)
"""How children are stopped: each signal in turn, waiting up to the given seconds for them to exit."""

_PR_SET_PDEATHSIG = 1
SignalHandler = Callable[[int, FrameType | None], Any] | int | None


class StopFlag:
    """A flag that signal handlers set: one attribute, no lock.

    A handler runs on the main thread between two bytecodes of whatever it interrupted, so a
    handler that takes a lock (`threading.Event.set`) can interrupt itself while holding it: the
    next signal's handler then waits on the lock its own thread holds, each further signal nests
    one more wait, and the process ends in a RecursionError (Ctrl-C repeated, or a terminal and
    ros2 launch each sending SIGINT to a loaded machine).
    """

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


def request_stop_on_signals(stop: StopFlag, signals: Sequence[int] = STOP_SIGNALS) -> dict[int, SignalHandler]:
    """From now on `signals` set `stop` and do nothing else; returns the handlers they replace.

    Also overrides a SIGINT that the parent left ignored (a shell's background job, a test runner).
    Call from the main thread.
    """
    return {signum: signal.signal(signum, lambda signum, frame: stop.set()) for signum in signals}


def ignore_stop_signals(signals: Sequence[int] = STOP_SIGNALS) -> None:
    """Ignore `signals` from now on: for a process that has stopped and only has to exit.

    While the interpreter exits, Python puts its own handlers back to the default action, so a
    late Ctrl-C (a terminal and ros2 launch each send one) would end the process by the signal,
    exit status -2, instead of the code it returns. Call from the main thread.
    """
    for signum in signals:
        signal.signal(signum, signal.SIG_IGN)


@contextmanager
def stop_on_signals(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[StopFlag]:
    """A flag that `signals` set while the block runs; the previous handlers come back after it.

    Outside the main thread, where Python cannot handle signals, the flag is returned unhooked.
    """
    stop = StopFlag()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = request_stop_on_signals(stop, signals) if in_main_thread else {}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(parent_pid: int | None = None, signum: int = signal.SIGTERM) -> None:
    """Have the kernel send `signum` to this process when its parent dies (Linux; a no-op elsewhere).

    `parent_pid`: the parent's pid as the parent saw it; if the parent is already gone (it died
    before this call), `signum` is sent at once. The kernel ties this to the parent *thread* that
    started the child, so start children from a thread that lives as long as they should.
    Safe in `preexec_fn` once `_prctl()` has been resolved in the parent (`spawn` does that).
    """
    prctl = _prctl()
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


def spawn(argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start `argv` in its own process group (a terminal's Ctrl-C reaches it only through us), its
    stdout and stderr into `log`, stdin closed, and dying with this process."""
    _prctl()
    with log.open("w") as output:
        return subprocess.Popen(
            list(argv),
            env=None if env is None else dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
        )


def stop_process_groups(
    processes: Sequence[subprocess.Popen], escalation: Sequence[tuple[int, float]] = ESCALATION
) -> None:
    """Signal the process group of each running process with each signal of `escalation` in turn,
    waiting up to its seconds (for all of them together) before the next."""
    for signum, wait_s in escalation:
        alive = [p for p in processes if p.poll() is None]
        if not alive:
            return
        for process in alive:
            try:
                os.killpg(process.pid, signum)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        for process in alive:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass


class ChildExitedError(RuntimeError):
    """A supervised child exited while it should have been running; the message names its log."""


class ChildProcesses:
    """Named children, each started by `spawn` with its log at `log_dir/<name>.log`, stopped
    together by `stop()` (also on leaving a `with` block)."""

    def __init__(self, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str, argv: Sequence[str]) -> subprocess.Popen:
        if name in self.processes:
            raise ValueError(f"a child named {name!r} was already started")
        self.processes[name] = spawn(argv, self.log(name), self.env)
        return self.processes[name]

    def check(self) -> None:
        """Raise ChildExitedError if any child has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ChildExitedError(f"{name} exited with code {process.returncode}; see {self.log(name)}")

    def stop(self, escalation: Sequence[tuple[int, float]] = ESCALATION) -> None:
        stop_process_groups(list(self.processes.values()), escalation)

    def __enter__(self) -> ChildProcesses:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class TeardownWatchdog:
    """Leaves the process with `exit_code` should the teardown that follows `start()` take longer
    than `timeout_s` (rclpy waiting on a callback thread, a child that will not die). Cancelled on
    leaving a `with` block; a started, never-cancelled watchdog also covers the interpreter's exit."""

    def __init__(self, timeout_s: float, exit_code: int = 0) -> None:
        self.timeout_s = timeout_s
        self.exit_code = exit_code
        self._timer = threading.Timer(timeout_s, self._leave)
        self._timer.daemon = True

    def _leave(self) -> None:
        logger.error("shutdown did not finish within %.0f s; exiting", self.timeout_s)
        sys.stderr.flush()
        os._exit(self.exit_code)

    def start(self) -> TeardownWatchdog:
        self._timer.start()
        return self

    def cancel(self) -> None:
        self._timer.cancel()

    def __enter__(self) -> TeardownWatchdog:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.cancel()


def yield_cpu(niceness: int, whole_process: bool = False) -> None:
    """Add `niceness` (0-19) to the calling thread's niceness, or to every thread of this process
    (`whole_process`: threads started before, such as DDS's, included), so that it yields the CPU to
    threads at the default priority. Linux schedules each thread by its own niceness; elsewhere the
    process's. Lowering one's own priority needs no privilege; failures are logged, never raised."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    tasks = Path("/proc/self/task")
    if whole_process and tasks.is_dir():
        ids = [int(tid) for tid in os.listdir(tasks)]
    else:
        ids = [threading.get_native_id() if sys.platform.startswith("linux") else 0]
    for tid in ids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
        except OSError as exc:  # a thread that has ended meanwhile, or a platform that refuses
            logger.debug("cannot lower the priority of thread %d: %s", tid, exc)


def configure_logging() -> None:
    """The library's log records on stderr, `ami_robot.module: message`; level from AMI_ROBOT_LOG_LEVEL
    (default INFO). A command's own results go to stdout with print."""
    level = os.environ.get("AMI_ROBOT_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        format="%(name)s: %(message)s",
        stream=sys.stderr,
    )
