"""Recording the simulated robot's episodes as it reports them: the trajectory of each (states and goal
distances, for the plot and the JSON) kept, the camera written straight into a video.

Memory stays flat however many episodes run: a video frame is encoded when it arrives, and only the
last one is kept (for the hold at the end of its episode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ami_sim.evaluation import EpisodeRecord, EvalProtocol, EvalResult, side_by_side, wilson_interval
from ami_sim.ros.status import RobotStatus


class EpisodeVideo:
    """An MP4 (H.264) of camera | goal frames (`side_by_side`), episodes one after another, each
    ending on a half-second hold of its last frame. Opened at the first frame; `close()` finishes it."""

    def __init__(self, path: Path, fps: int = 10) -> None:
        self.path = Path(path)
        self.fps = fps
        self.frames_written = 0
        self._writer: Any = None
        self._last_frame: np.ndarray | None = None

    def add(self, camera: np.ndarray, goal: np.ndarray) -> None:
        """Append one frame from the camera image and the goal image, both uint8 (H, W, 3)."""
        self._last_frame = side_by_side(camera, goal)
        self._append(self._last_frame)

    def end_episode(self) -> None:
        """Hold the episode's last frame for half a second."""
        if self._last_frame is not None:
            for _ in range(self.fps // 2):
                self._append(self._last_frame)
        self._last_frame = None

    def _append(self, frame: np.ndarray) -> None:
        if self._writer is None:
            import imageio.v2 as imageio

            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = imageio.get_writer(self.path, fps=self.fps, codec="libx264", macro_block_size=1, quality=8)
        self._writer.append_data(frame)
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> EpisodeVideo:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


@dataclass
class EpisodeTrace:
    """One episode as the robot reported it; `states[k]` and `distances[k]` are those after step k."""

    index: int
    start_state: tuple[float, ...]
    goal_state: tuple[float, ...]
    states: list[tuple[float, ...]] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)
    steps: int = 0
    success: bool = False
    done: bool = False
    late_steps: int = 0

    def update(self, status: RobotStatus) -> None:
        """Take the robot's status after step `status.steps`; a step whose status was missed holds the
        state before it (the first status seen stands for the steps before it)."""
        if status.steps >= len(self.states):
            missed = status.steps - len(self.states)
            self.states += [self.states[-1] if self.states else status.state] * missed
            self.distances += [self.distances[-1] if self.distances else status.distance] * missed
            self.states.append(status.state)
            self.distances.append(status.distance)
        self.steps, self.success, self.done = status.steps, status.success, status.done
        self.late_steps = status.late_steps

    @property
    def final_distance(self) -> float:
        return self.distances[-1] if self.distances else float("nan")

    def record(self, plan_ms: float = 0.0) -> EpisodeRecord:
        return EpisodeRecord(
            start_state=list(self.start_state),
            goal_state=list(self.goal_state),
            success=self.success,
            steps=self.steps,
            final_distance=self.final_distance,
            plan_ms=plan_ms,
            states=[list(state) for state in self.states],
            distances=list(self.distances),
        )


class EpisodeRecorder:
    """Feed it the robot's statuses and camera images (`SimRobotClient` callbacks): each episode the
    robot starts gets an `EpisodeTrace` in `episodes` (by index), and while it runs, its frames go
    into `video`."""

    def __init__(self, video: EpisodeVideo) -> None:
        self.video = video
        self.episodes: dict[int, EpisodeTrace] = {}
        self._current: EpisodeTrace | None = None

    def on_status(self, status: RobotStatus) -> None:
        if status.episode < 0:
            return
        if self._current is None or status.episode != self._current.index:
            self._current = self.episodes.setdefault(
                status.episode, EpisodeTrace(status.episode, status.state, status.goal_state)
            )
        was_done = self._current.done
        self._current.update(status)
        if self._current.done and not was_done:
            self.video.end_episode()

    def on_camera(self, camera: np.ndarray, goal: np.ndarray | None) -> None:
        if self._current is not None and not self._current.done and goal is not None:
            self.video.add(camera, goal)

    def done(self, episode: int) -> bool:
        """Whether the robot reported `episode` finished."""
        trace = self.episodes.get(episode)
        return trace is not None and trace.done

    def result(self, env: str, policy: str, protocol: EvalProtocol, seed: int, plan_ms: float = 0.0) -> EvalResult:
        """The recorded episodes as an evaluation result (`plan_ms`: the policy's typical planning time)."""
        episodes = list(self.episodes.values())
        successes = sum(e.success for e in episodes)
        to_success = [e.steps for e in episodes if e.success]
        return EvalResult(
            env=env,
            policy=policy,
            episodes=len(episodes),
            successes=successes,
            success_rate=successes / len(episodes) if episodes else 0.0,
            ci95=wilson_interval(successes, len(episodes)),
            mean_steps_to_success=float(np.mean(to_success)) if to_success else None,
            mean_plan_ms=plan_ms,
            protocol=protocol,
            seed=seed,
            records=[e.record(plan_ms) for e in episodes],
        )
