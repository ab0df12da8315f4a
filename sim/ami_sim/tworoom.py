"""TwoRoom: a point-mass robot in two rooms joined by a door (the navigation task of PLDM and LeWorldModel).

World: the unit square [0, 1]^2 (x right, y down, so image row = y), split at x = 0.5 by a wall of
thickness `wall_thickness` with a door of width `door_width` centred at y = `door_center`.
State: (x, y) of the robot, in arena units. Action: a displacement in [-1, 1]^2, scaled by
`max_step` arena units per step; the robot stops at walls and slides along them (swept collision
test, so it never tunnels). For collisions the robot is a square of half-side `agent_radius`.
Without options, reset puts the robot anywhere and the goal in the other room (the PLDM task).
Success: the robot within `success_radius` (0.05 by default, i.e. 3.2 px at 64x64; a step moves at most
0.025 per axis, 1.6 px) of the goal.
Pure numpy/OpenCV, deterministic under a seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import cv2
import gymnasium as gym
import numpy as np

from ami_sim.base import check_image_size, goal_info, option_state

_EPS = 1e-5  # stand-off from walls, larger than float32 rounding of states


@dataclass(frozen=True)
class TwoRoomConfig:
    """Geometry and rendering of TwoRoom; lengths in arena units (the arena is the unit square)."""

    image_size: int = 64
    wall_thickness: float = 0.04
    door_width: float = 0.16
    door_center: float = 0.5
    agent_radius: float = 0.025
    max_step: float = 0.025
    success_radius: float = 0.05

    def __post_init__(self) -> None:
        check_image_size(self.image_size)
        if not 0 < self.agent_radius < self.door_width / 2:
            raise ValueError(f"agent_radius must be in (0, door_width/2), got {self.agent_radius}")
        if not 0 < self.max_step < 1:
            raise ValueError(f"max_step must be in (0, 1) arena units, got {self.max_step}")
        half = self.door_width / 2
        if not (self.agent_radius < self.door_center - half and self.door_center + half < 1 - self.agent_radius):
            raise ValueError(f"door [{self.door_center - half}, {self.door_center + half}] must lie inside the wall")
        if self.success_radius <= 0:
            raise ValueError(f"success_radius must be positive, got {self.success_radius}")

    @property
    def wall_x(self) -> float:
        return 0.5

    def obstacles(self) -> tuple[tuple[float, float, float, float], ...]:
        """Boxes (x0, y0, x1, y1) the robot's centre may not enter: walls grown by the robot's radius."""
        r, h = self.agent_radius, self.wall_thickness / 2
        x0, x1 = self.wall_x - h - r, self.wall_x + h + r
        door_lo, door_hi = self.door_center - self.door_width / 2, self.door_center + self.door_width / 2
        big = 10.0
        return (
            (x0, -big, x1, door_lo + r),  # wall above the door
            (x0, door_hi - r, x1, big),  # wall below the door
            (-big, -big, r, big),  # arena sides
            (1 - r, -big, big, big),
            (-big, -big, big, r),
            (-big, 1 - r, big, big),
        )


def _segment_hit(
    px: float, py: float, dx: float, dy: float, box: tuple[float, float, float, float]
) -> tuple[float, int]:
    """Entry time in [0, 1] of p + t d into `box` and the axis of the face hit (0: x, 1: y); (2.0, -1) if none."""
    t_enter, t_exit, axis = -np.inf, np.inf, -1
    for p, d, lo, hi, a in ((px, dx, box[0], box[2], 0), (py, dy, box[1], box[3], 1)):
        if abs(d) < 1e-12:
            if not lo < p < hi:
                return 2.0, -1
            continue
        t0, t1 = (lo - p) / d, (hi - p) / d
        if t0 > t1:
            t0, t1 = t1, t0
        if t0 > t_enter:
            t_enter, axis = t0, a
        t_exit = min(t_exit, t1)
    if t_enter <= t_exit and 0.0 <= t_enter <= 1.0 and t_exit > 0.0:
        return t_enter, axis
    return 2.0, -1


def sweep(config: TwoRoomConfig, x: float, y: float, dx: float, dy: float) -> tuple[float, float]:
    """Move the robot from (x, y) by (dx, dy), stopping at the first wall and sliding along it."""
    boxes = config.obstacles()
    for _ in range(3):
        hits = [_segment_hit(x, y, dx, dy, box) for box in boxes]
        t, axis = min(hits)
        if axis < 0:
            return x + dx, y + dy
        t = max(t - _EPS, 0.0)
        x, y = x + t * dx, y + t * dy
        dx, dy = (1 - t) * dx, (1 - t) * dy
        if axis == 0:
            dx = 0.0
        else:
            dy = 0.0
    return x, y


class TwoRoomEnv(gym.Env):
    """Two rooms joined by a door; pixels in, displacement out. See the module docstring for units."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    state_dim = 2
    map_extent = (0.0, 1.0, 1.0, 0.0)

    def __init__(self, render_mode: str | None = None, config: TwoRoomConfig | None = None, **overrides: Any):
        self.config = dataclasses.replace(config or TwoRoomConfig(), **overrides)
        self.render_mode = render_mode
        size = self.config.image_size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.success_threshold = self.config.success_radius
        self._background = self._draw_background()
        self._position = np.zeros(2)
        self._goal = np.zeros(2)
        self._goal_observation = self._background.copy()

    def _draw_background(self) -> np.ndarray:
        c, s = self.config, self.config.image_size
        image = np.full((s, s, 3), 235, np.uint8)
        h = c.wall_thickness / 2
        x0, x1 = round((c.wall_x - h) * s), round((c.wall_x + h) * s)
        door_lo, door_hi = round((c.door_center - c.door_width / 2) * s), round((c.door_center + c.door_width / 2) * s)
        image[:door_lo, x0:x1] = (40, 40, 40)
        image[door_hi:, x0:x1] = (40, 40, 40)
        return image

    @property
    def background(self) -> np.ndarray:
        """The (S, S, 3) uint8 image of the empty rooms."""
        return self._background.copy()

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """The (S, S, 3) uint8 image of the robot at `state` = (x, y)."""
        image = self._background.copy()
        s, shift = self.config.image_size, 4
        centre = (int(state[0] * s * (1 << shift)), int(state[1] * s * (1 << shift)))
        radius = int(max(self.config.agent_radius * s, 2.0) * (1 << shift))
        cv2.circle(image, centre, radius, (220, 40, 40), -1, cv2.LINE_AA, shift)
        return image

    def is_free(self, state: np.ndarray) -> bool:
        """Whether the robot's centre may be at `state` (inside the arena, not in a wall)."""
        x, y = float(state[0]), float(state[1])
        return not any(b[0] < x < b[2] and b[1] < y < b[3] for b in self.config.obstacles())

    def goal_distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        return float(np.hypot(state[0] - goal_state[0], state[1] - goal_state[1]))

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        return self.goal_distance(state, goal_state) < self.config.success_radius

    def trajectory_xy(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(states, dtype=np.float64)[:, :2]

    def _sample_free(self, side: float = 0.0) -> np.ndarray:
        """A free position, in the left room if side < 0, the right one if side > 0, anywhere if 0."""
        r = self.config.agent_radius
        while True:
            state = self.np_random.uniform(r, 1 - r, size=2)
            if self.is_free(state) and side * (state[0] - self.config.wall_x) >= 0:
                return state

    def _info(self) -> dict[str, Any]:
        return goal_info(
            self._position, self._goal, self._goal_observation, self.is_success(self._position, self._goal)
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        start = option_state(options, "start_state", 2)
        goal = option_state(options, "goal_state", 2)
        for name, state in (("start_state", start), ("goal_state", goal)):
            if state is not None and not self.is_free(state):
                raise ValueError(f"options[{name!r}] = {state.tolist()} is inside a wall or outside the arena")
        self._position = start if start is not None else self._sample_free()
        other_room = 1.0 if self._position[0] < self.config.wall_x else -1.0
        self._goal = goal if goal is not None else self._sample_free(side=other_room)
        self._goal_observation = self.render_state(self._goal)
        return self.render_state(self._position), self._info()

    def step(self, action: np.ndarray):
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) * self.config.max_step
        x, y = sweep(self.config, float(self._position[0]), float(self._position[1]), float(a[0]), float(a[1]))
        self._position = np.array([x, y])
        info = self._info()
        reward = -self.goal_distance(self._position, self._goal)
        return self.render_state(self._position), reward, info["success"], False, info

    def render(self) -> np.ndarray:
        return self.render_state(self._position)


class TwoRoomExpert:
    """Waypoint controller: to the door on the robot's side, through it and out of the doorway, then
    straight to the goal."""

    def __init__(self, config: TwoRoomConfig | None = None):
        self.config = config or TwoRoomConfig()

    def reset(self) -> None:
        pass

    def action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        c = self.config
        x, y = float(state[0]), float(state[1])
        goal_side = 1.0 if goal_state[0] >= c.wall_x else -1.0
        side = 1.0 if x > c.wall_x else -1.0 if x < c.wall_x else goal_side
        target = np.asarray(goal_state[:2], dtype=np.float64)
        in_doorway = abs(x - c.wall_x) < c.wall_thickness / 2 + c.agent_radius
        if side != goal_side or in_doorway:
            clearance = c.wall_thickness / 2 + c.agent_radius + 0.03
            aligned = abs(y - c.door_center) < c.door_width / 2 - c.agent_radius - 0.01
            near_wall = abs(x - c.wall_x) < clearance + 0.01
            through = c.wall_x + goal_side * clearance
            door_x = through if in_doorway or (aligned and near_wall) else c.wall_x + side * clearance
            target = np.array([door_x, c.door_center])
        step = (target - np.array([x, y])) / c.max_step
        peak = np.max(np.abs(step))
        return (step / peak if peak > 1 else step).astype(np.float32)
