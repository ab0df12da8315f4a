"""`ami-robot demo` end to end: a simulated robot and the brain as separate processes over DDS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from model_helpers import tiny_checkpoint

pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")

from ami_robot.checkpoints import CHECKPOINTS
from ami_robot.configurator.settings import DEFAULT_CHECKPOINT

pytestmark = [pytest.mark.ros, pytest.mark.slow]
SUMMARY_KEYS = {"episodes", "successes", "control_hz", "transport", "domain_id", "late_steps", "encode_ms_p50"} | {
    f"latency{kind}_ms_{q}" for kind in ("", "_replan", "_queued") for q in ("p50", "p99")
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", image_size=64, frameskip=3)


def demo(*args: str, timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ami_robot.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=os.environ.copy(),
    )


def children_of(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (the demo's children name the checkpoint)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "ami_robot.cli" not in cmdline and proc.name.isdigit():
            found.append(cmdline)
    return found


@pytest.mark.parametrize("separate", [False, True], ids=["brain-process", "separate-processes"])
def test_demo_writes_video_plot_and_summary(tiny: Path, tmp_path: Path, separate: bool) -> None:
    out = tmp_path / "demo"
    args = [
        "--checkpoint",
        str(tiny),
        "--episodes",
        "2",
        "--budget",
        "12",
        "--backend",
        "torch",
        "--out",
        str(out),
        "--json",
        str(tmp_path / "summary.json"),
    ]
    result = demo(*args, *(["--separate-processes"] if separate else []), timeout_s=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    steps = summary["steps"]
    assert summary["episodes"] == 2 and steps and all(1 <= s <= 12 for s in steps), (steps, result.stdout[-2000:])
    assert summary["transport"].startswith("rmw_") and summary["control_hz"] > 0
    for kind in ("", "_replan", "_queued"):
        assert 0 < summary[f"latency{kind}_ms_p50"] <= summary[f"latency{kind}_ms_p99"]
    assert len(summary["late_steps"]) == len(summary["steps"]) and summary["encode_ms_p50"] > 0
    # a 15 ms plan holds the 250 ms deadline (rclpy's multi-threaded executor once starved it for seconds)
    assert summary["planner_errors"] == 0, "\n".join(log.read_text() for log in out.glob("*.log"))
    assert summary["separate_processes"] is separate
    for name in ("demo.mp4", "demo.png", "demo.json"):
        assert (out / name).stat().st_size > 0
    assert "episode 2/2" in result.stdout + result.stderr, "progress is shown per episode"
    assert not children_of(str(tiny)), "no process is left behind"


def test_demo_without_a_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    result = demo("--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path), timeout_s=60)
    assert result.returncode == 2
    assert "no trained world model" in result.stderr and "ami-robot train" in result.stderr


def test_ctrl_c_stops_every_process(tiny: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ami_robot.cli",
            "demo",
            "--checkpoint",
            str(tiny),
            "--episodes",
            "50",
            "--backend",
            "torch",
            "--out",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (tmp_path / "brain.log").exists():
            time.sleep(0.2)
        time.sleep(8.0)  # let the robot and the brain start up and run
        assert children_of(str(tiny)), "the demo started its processes"
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output[-2000:]
    assert not children_of(str(tiny)), "Ctrl-C leaves no process behind"


@pytest.mark.skipif(
    not (DEFAULT_CHECKPOINT / "config.json").is_file(),
    reason=f"no trained TwoRoom checkpoint shipped at {DEFAULT_CHECKPOINT} (train it with ami-robot train)",
)
def test_trained_brain_reaches_most_goals_over_dds(tmp_path: Path) -> None:
    result = demo("--episodes", "5", "--out", str(tmp_path), "--json", str(tmp_path / "summary.json"), timeout_s=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["episodes"] == 5
    assert summary["successes"] >= 3, f"{summary['successes']}/5 goals reached within {summary['step_budget']} steps"


@pytest.mark.skipif(
    not (CHECKPOINTS / "pusht" / "config.json").is_file(), reason=f"no PushT checkpoint shipped at {CHECKPOINTS}"
)
def test_the_pusht_robot_is_driven_by_the_pusht_model_by_default(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    result = demo(
        "--env", "pusht", "--episodes", "2", "--out", str(tmp_path), "--json", str(summary_path), timeout_s=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert (summary["env"], summary["checkpoint"]) == ("pusht", str((CHECKPOINTS / "pusht").resolve()))
    assert Path(summary["params"]).name == "brain_pusht.yaml", "the model's own real-time budget"
    assert summary["episodes"] == len(summary["steps"]) == 2 and all(steps > 0 for steps in summary["steps"])
