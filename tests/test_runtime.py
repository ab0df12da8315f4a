"""Process plumbing (`ami_robot.runtime`): stop flag, die-with-parent, child supervision, teardown watchdog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ami_robot.runtime import ChildExitedError, ChildProcesses, spawn, stop_on_signals

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux only")


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that may never reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_stop_signals_set_the_flag_and_raise_nothing() -> None:
    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        assert wait_until(stop.is_set, 2.0)
    assert signal.getsignal(signal.SIGINT) is before, "the previous handler is back"


def test_a_storm_of_stop_signals_cannot_wedge_the_handler(tmp_path: Path) -> None:
    """Signals keep arriving while the process tears down, and a busy thread takes the GIL away from
    the main thread mid-handler: a handler taking a lock (threading.Event.set) nested on itself
    here until a RecursionError (the way `serve` ended under Ctrl-C on a loaded CI machine)."""
    storm_target = python("""
        import threading, time
        from ami_robot.runtime import StopFlag, ignore_stop_signals, request_stop_on_signals

        def busy():
            while True:
                sum(range(1000))

        threading.Thread(target=busy, daemon=True).start()
        stop = StopFlag()
        request_stop_on_signals(stop)
        print("ready", flush=True)
        while not stop.is_set():
            time.sleep(0.001)
        teardown_ends = time.monotonic() + 1.5
        while time.monotonic() < teardown_ends:
            sum(range(100))
        ignore_stop_signals()
        print("stopped", flush=True)
    """)
    with ChildProcesses(tmp_path) as children:
        process = children.start("storm_target", storm_target)
        assert wait_until(lambda: "ready" in children.log("storm_target").read_text(), 20.0)
        deadline = time.monotonic() + 20.0
        while process.poll() is None and time.monotonic() < deadline:
            os.kill(process.pid, signal.SIGINT)
            time.sleep(0.0002)
        output = children.log("storm_target").read_text()
        assert process.poll() == 0 and "stopped" in output and "Traceback" not in output, output[-2000:]


def test_children_run_in_their_own_group_and_a_stubborn_one_is_killed(tmp_path: Path) -> None:
    stubborn = python("""
        import signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """)
    with ChildProcesses(tmp_path) as children:
        process = children.start("stubborn", stubborn)
        assert wait_until(lambda: "ready" in children.log("stubborn").read_text(), 20.0)
        assert os.getpgid(process.pid) == process.pid != os.getpgid(0)
        children.check()
        started = time.monotonic()
        children.stop(escalation=((signal.SIGINT, 0.3), (signal.SIGTERM, 0.3), (signal.SIGKILL, 5.0)))
    assert process.returncode == -signal.SIGKILL and time.monotonic() - started < 5.0


def test_a_child_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    with ChildProcesses(tmp_path) as children:
        children.start("quitter", python("raise SystemExit(3)"))
        assert wait_until(lambda: children.processes["quitter"].poll() is not None, 20.0)
        with pytest.raises(ChildExitedError, match=r"quitter exited with code 3; see .*quitter\.log"):
            children.check()


@linux_only
def test_children_die_with_their_parent(tmp_path: Path) -> None:
    """A supervisor killed outright (SIGKILL: no cleanup runs) takes its children along."""
    parent = spawn(
        python(f"""
            import sys, time
            from pathlib import Path
            from ami_robot.runtime import spawn
            child = spawn([sys.executable, "-c", "import time; time.sleep(60)"], Path({str(tmp_path / "child.log")!r}))
            print(child.pid, flush=True)
            time.sleep(60)
        """),
        tmp_path / "parent.log",
    )
    try:
        assert wait_until(lambda: (tmp_path / "parent.log").read_text().strip().isdigit(), 20.0)
        child_pid = int((tmp_path / "parent.log").read_text())
        assert alive(child_pid)
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not alive(child_pid), 10.0), "the child outlived its parent"
    finally:
        parent.kill()


@pytest.mark.parametrize("cancelled", [False, True], ids=["hangs", "finishes"])
def test_teardown_watchdog_leaves_a_hanging_teardown(cancelled: bool) -> None:
    teardown = "time.sleep(0.1)" if cancelled else "time.sleep(30)"
    result = subprocess.run(
        python(f"""
            import time
            from ami_robot.runtime import TeardownWatchdog
            with TeardownWatchdog(1.0, exit_code=7):
                {teardown}
            time.sleep(1.5)
        """),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == (0 if cancelled else 7), result.stderr
    assert ("did not finish within 1 s" in result.stderr) is not cancelled
