"""The demo's episode recording: trajectories kept, camera frames streamed into the video (memory stays flat)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")

from ami_sim.ros.recording import EpisodeRecorder, EpisodeVideo
from ami_sim.ros.status import RobotStatus

STEPS, FPS = 20, 10
FRAME_BYTES = (64 * 4) * (130 * 4) * 3  # one camera | goal frame, enlarged 4 times


def drive(recorder: EpisodeRecorder, episode: int, camera: np.ndarray, goal: np.ndarray) -> None:
    """The robot's side of one episode: a status and a camera image per step, done after STEPS."""
    for step in range(STEPS + 1):
        recorder.on_status(
            RobotStatus(
                "tworoom",
                episode,
                step,
                step == STEPS,
                step == STEPS,
                1.0 - step / STEPS,
                (step / STEPS, 0.5),
                (1.0, 0.5),
            )
        )
        recorder.on_camera(camera, goal)


def test_frames_are_written_as_they_arrive_and_not_kept(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    camera, goal = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    episodes = 40
    with EpisodeVideo(tmp_path / "demo.mp4", fps=FPS) as video:
        recorder = EpisodeRecorder(video)
        drive(recorder, 0, camera, goal)  # the writer is open and warm
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for episode in range(1, episodes):
                drive(recorder, episode, camera, goal)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    kept_if_buffered = (episodes - 1) * STEPS * FRAME_BYTES
    assert grown < 2 * FRAME_BYTES, (
        f"{grown / 1e6:.1f} MB kept over {episodes - 1} episodes ({kept_if_buffered / 1e6:.0f} MB of frames)"
    )
    assert video.frames_written == episodes * (STEPS + FPS // 2), "each episode's frames, then a half-second hold"
    assert (tmp_path / "demo.mp4").stat().st_size > 0

    trace = recorder.episodes[episodes - 1]
    assert trace.done and trace.success and trace.steps == STEPS
    assert len(trace.states) == len(trace.distances) == STEPS + 1
    assert trace.start_state == (0.0, 0.5) and trace.goal_state == (1.0, 0.5)
    record = trace.record(plan_ms=12.0)
    assert record.final_distance == 0.0 and record.states[-1] == [1.0, 0.5]


def test_an_episode_seen_from_its_middle_keeps_steps_aligned(tmp_path: Path) -> None:
    with EpisodeVideo(tmp_path / "demo.mp4") as video:
        recorder = EpisodeRecorder(video)
        for step in (3, 4, 6):
            recorder.on_status(RobotStatus("tworoom", 0, step, False, step == 6, 0.1, (float(step),), (9.0,)))
    trace = recorder.episodes[0]
    assert [s[0] for s in trace.states] == [3.0, 3.0, 3.0, 3.0, 4.0, 4.0, 6.0]
    assert recorder.done(0) and not recorder.done(1)
