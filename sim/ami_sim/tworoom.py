"""TwoRoom: a point-mass robot in two rooms joined by a door (the navigation task of PLDM and LeWorldModel).

Units. The arena is the unit square (x right, y down, so image row = y). It maps one-to-one onto the
224 x 224 px frame of the published environment (stable-worldmodel `swm/TwoRoom-v1`, used by
LeWorldModel): arena units = their pixels / 224, whatever our rendering size. `px(n)` converts.

Published geometry (the default, `TwoRoomConfig()`): a 14 px border on every side, a vertical wall
10 px thick centred at x = 112 px (0.5), one door of half-size 14 px centred at y = 49 px, a robot
of radius 7 px moving `action * 5` px per step (action in [-1, 1]^2), success within 16 px of the
goal. As there, the robot's centre may cross the wall where |y - door centre| <= half-size + 1.75 px
(`door_margin`), so the robot's disc may brush the door posts.
`TWOROOM_V0` keeps the geometry of our first version (border 0, wall 0.04 thick, door 0.16 wide at
y = 0.5 that the whole robot must fit through, 0.025 per step, success within 0.05).

State: (x, y) of the robot in arena units. The robot stops at walls and slides along them (swept
collision test, so it never tunnels); for collisions it is a square of half-side `agent_radius`.
Without options, reset puts the robot anywhere free and the goal anywhere free (`goal_in_other_room`:
only in the other room, the PLDM task). Pure numpy/OpenCV, deterministic under a seed.
Where we differ from the published code, on purpose: a blocked robot slides along the wall (theirs is
put back beside the wall, which can jump it across the doorway), and sampled goals are free positions
(theirs can lie inside the wall). Random actions reach 27% (95% CI 25-30%, 1000 episodes) of the
goals of the default evaluation protocol, as against the published 26%.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import gymnasium as gym
import numpy as np

from ami_sim.base import check_image_size, goal_info, option_state

_EPS = 1e-5  # stand-off from walls, larger than float32 rounding of states
PUBLISHED_FRAME_PX = 224


def px(pixels: float) -> float:
    """A length in pixels of the published 224 px frame, in arena units."""
    return pixels / PUBLISHED_FRAME_PX


@dataclass(frozen=True)
class TwoRoomConfig:
    """Geometry and rendering of TwoRoom; lengths in arena units (the unit square = the published 224 px frame).

    door_margin: how far beyond the door's edges the robot's centre may be while crossing the wall
    (-agent_radius: the whole robot must fit through the door).
    door_reach_tolerance: the expert heads for the door centre until this close, then for the goal.
    """

    image_size: int = 64
    border: float = px(14)
    wall_thickness: float = px(10)
    door_center: float = px(49)
    door_half_size: float = px(14)
    door_margin: float = px(1.75)
    agent_radius: float = px(7)
    max_step: float = px(5)
    success_radius: float = px(16)
    door_reach_tolerance: float = px(10.5)
    goal_in_other_room: bool = False

    def __post_init__(self) -> None:
        check_image_size(self.image_size)
        if not 0 <= self.border:
            raise ValueError(f"border must be >= 0, got {self.border}")
        if not 0 < self.agent_radius < (self.wall_x - self.wall_thickness / 2 - self.border) / 2:
            raise ValueError(f"agent_radius {self.agent_radius} leaves the robot no room between border and wall")
        if not 0 < self.max_step < 1:
            raise ValueError(f"max_step must be in (0, 1) arena units, got {self.max_step}")
        lo, hi = self.door_passage
        if not hi > lo:
            raise ValueError(
                f"the door ({self.door_half_size} half-size, {self.door_margin} margin) lets nothing through"
            )
        if not (self.border + self.agent_radius <= lo and hi <= 1 - self.border - self.agent_radius):
            raise ValueError(f"door passage [{lo}, {hi}] must lie inside the arena")
        if self.success_radius <= 0 or self.door_reach_tolerance <= 0:
            raise ValueError("success_radius and door_reach_tolerance must be positive")

    @property
    def wall_x(self) -> float:
        return 0.5

    @property
    def door_passage(self) -> tuple[float, float]:
        """The y interval the robot's centre may cross the wall in."""
        half = self.door_half_size + self.door_margin
        return (self.door_center - half, self.door_center + half)

    def obstacles(self) -> tuple[tuple[float, float, float, float], ...]:
        """Boxes (x0, y0, x1, y1) the robot's centre may not enter: walls grown by the robot's radius."""
        r, h, inner = self.agent_radius, self.wall_thickness / 2, self.border + self.agent_radius
        x0, x1 = self.wall_x - h - r, self.wall_x + h + r
        passage_lo, passage_hi = self.door_passage
        big = 10.0
        return (
            (x0, -big, x1, passage_lo),  # wall above the door
            (x0, passage_hi, x1, big),  # wall below the door
            (-big, -big, inner, big),  # arena sides
            (1 - inner, -big, big, big),
            (-big, -big, big, inner),
            (-big, 1 - inner, big, big),
        )


TWOROOM_V0 = TwoRoomConfig(
    border=0.0,
    wall_thickness=0.04,
    door_center=0.5,
    door_half_size=0.08,
    door_margin=-0.025,
    agent_radius=0.025,
    max_step=0.025,
    success_radius=0.05,
    door_reach_tolerance=0.04,
    goal_in_other_room=True,
)
"""The geometry of our first TwoRoom (`ami_sim/TwoRoom-v0`), which the first shipped model was trained on."""


def make_tworoom_v0(**kwargs: Any) -> TwoRoomEnv:
    """`ami_sim/TwoRoom-v0`: TwoRoom with the `TWOROOM_V0` geometry; kwargs as for `TwoRoomEnv`."""
    return TwoRoomEnv(config=TWOROOM_V0, **kwargs)


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

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}
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
        image = np.full((s, s, 3), 40, np.uint8)
        inner_lo, inner_hi = round(c.border * s), round((1 - c.border) * s)
        image[inner_lo:inner_hi, inner_lo:inner_hi] = 235
        h = c.wall_thickness / 2
        x0, x1 = round((c.wall_x - h) * s), round((c.wall_x + h) * s)
        door_lo = round((c.door_center - c.door_half_size) * s)
        door_hi = round((c.door_center + c.door_half_size) * s)
        image[:door_lo, x0:x1] = 40
        image[door_hi:, x0:x1] = 40
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
        inner = self.config.border + self.config.agent_radius
        while True:
            state = self.np_random.uniform(inner, 1 - inner, size=2)
            if self.is_free(state) and side * (state[0] - self.config.wall_x) >= 0:
                return state

    def _info(self) -> dict[str, Any]:
        return goal_info(
            self._position, self._goal, self._goal_observation, self.is_success(self._position, self._goal)
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        start = option_state(options, "start_state", 2)
        keep_state = bool((options or {}).get("keep_state"))  # the robot stays; only the goal is new
        if keep_state and start is not None:
            raise ValueError("options keep_state and start_state exclude each other")
        goal = option_state(options, "goal_state", 2)
        for name, state in (("start_state", start), ("goal_state", goal)):
            if state is not None and not self.is_free(state):
                raise ValueError(f"options[{name!r}] = {state.tolist()} is inside a wall or outside the arena")
        if not keep_state:
            self._position = start if start is not None else self._sample_free()
        if goal is None:
            other_room = 1.0 if self._position[0] < self.config.wall_x else -1.0
            goal = self._sample_free(side=other_room if self.config.goal_in_other_room else 0.0)
        self._goal = goal
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
    """The published expert: when the goal is in the other room, head for the door centre until within
    `door_reach_tolerance` of it, then for the goal; full speed (a unit action vector) throughout."""

    def __init__(self, config: TwoRoomConfig | None = None):
        self.config = config or TwoRoomConfig()

    def reset(self) -> None:
        pass

    def action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        c = self.config
        position = np.asarray(state[:2], dtype=np.float64)
        target = np.asarray(goal_state[:2], dtype=np.float64)
        door = np.array([c.wall_x, c.door_center])
        other_room = (position[0] > c.wall_x) != (target[0] > c.wall_x)
        if other_room and np.linalg.norm(door - position) > c.door_reach_tolerance:
            target = door
        direction = target - position
        norm = float(np.linalg.norm(direction))
        return (direction / norm if norm > 1e-8 else np.zeros(2)).astype(np.float32)
