"""PushT: push a T-shaped block to a target pose (the task of Diffusion Policy, DINO-WM and LeWorldModel).

Physics is gym-pusht's, which stable-worldmodel's `swm/PushT-v1` (used by LeWorldModel) shares:
pymunk world 512 x 512 px, image row = y; a kinematic disc of radius 15 px driven by a PD controller
(kp 100, kv 20) at 10 Hz; the T is 120 px wide and 120 px tall, frictionless contacts, no momentum:
it moves only while pushed. Rendering is our own (OpenCV, straight to `image_size`), and the goal zone
is not drawn: the goal comes as an image.

State (7,): agent x, y (px), block x, y (px, the T's body origin: middle of the top of its bar),
block angle (rad, wrapped to [-pi, pi)), agent vx, vy (px/s), as in DINO-WM and stable-worldmodel.
Action: a in [-1, 1]^2; the PD target of the agent is its position + a * `action_scale` px
(100 px, as in stable-worldmodel and DINO-WM).
Success (DINO-WM's and stable-worldmodel's test): the distance between (agent x, y, block x, y) and
the goal state's is below 20 px and the block angle is within pi/9 rad (20 deg) of the goal's.
`info["coverage"]` also reports gym-pusht's measure (fraction of the goal pose covered by the block;
gym-pusht's own success is coverage > 0.95).

`PUSHT_V0` (`ami_sim/PushT-v0`) keeps our first version: 40 px per unit action and success on the
block alone (position within 20 px, angle within pi/9).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import gymnasium as gym
import numpy as np
from gym_pusht.envs.pusht import PushTEnv as GymPushT

from ami_sim.base import check_image_size, goal_info, option_state, wrap_angle

WORLD = 512.0
AGENT_RADIUS = 15.0
# The T in its body frame (px): the bar and the stem, as gym-pusht's add_tee(scale=30) builds them.
T_BOXES = np.array([[-60.0, 0.0, 60.0, 30.0], [-15.0, 30.0, 15.0, 120.0]])  # (x0, y0, x1, y1)
T_COG = np.array([0.0, 45.0])
T_MASS, T_MOMENT = 1.0, 3000.0  # gym-pusht's block: mass and moment of inertia about the COG (px^2)
T_POLYGONS = [np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]]) for b in T_BOXES]
DEFAULT_GOAL = np.array([256.0, 400.0, 256.0, 256.0, np.pi / 4, 0.0, 0.0])


@dataclass(frozen=True)
class PushTConfig:
    """Rendering, action scale and success test of PushT (px, rad).

    success_with_agent: the position error is that of (agent x, y, block x, y), as published; False:
    of the block alone (our first version).
    """

    image_size: int = 64
    action_scale: float = 100.0
    success_position: float = 20.0
    success_angle: float = float(np.pi / 9)
    success_with_agent: bool = True
    random_goal: bool = False

    def __post_init__(self) -> None:
        check_image_size(self.image_size)
        if self.action_scale <= 0 or self.success_position <= 0 or self.success_angle <= 0:
            raise ValueError("action_scale and the success thresholds must be positive")


PUSHT_V0 = PushTConfig(action_scale=40.0, success_with_agent=False)
"""Our first PushT (`ami_sim/PushT-v0`): 40 px per unit action, success on the block alone."""


def rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def to_world(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Body-frame points (N, 2) of a block at `pose` = (x, y, angle) in world px."""
    return points @ rotation(pose[2]).T + pose[:2]


def to_body(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (np.asarray(points) - pose[:2]) @ rotation(pose[2])


def distance_to_t(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance (px) from world points (N, 2) to the T at `pose`; 0 inside."""
    local = to_body(pose, np.atleast_2d(points))
    best = np.full(len(local), np.inf)
    for x0, y0, x1, y1 in T_BOXES:
        dx = np.maximum(np.maximum(x0 - local[:, 0], local[:, 0] - x1), 0.0)
        dy = np.maximum(np.maximum(y0 - local[:, 1], local[:, 1] - y1), 0.0)
        best = np.minimum(best, np.hypot(dx, dy))
    return best


class PushTEnv(gym.Env):
    """Goal-conditioned PushT from pixels on gym-pusht's physics. See the module docstring for units."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}
    state_dim = 7
    map_extent = (0.0, WORLD, WORLD, 0.0)

    def __init__(self, render_mode: str | None = None, config: PushTConfig | None = None, **overrides: Any):
        self.config = dataclasses.replace(config or PushTConfig(), **overrides)
        self.render_mode = render_mode
        size = self.config.image_size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.success_threshold = 1.0
        self._sim = GymPushT(obs_type="state")
        self._goal = DEFAULT_GOAL.copy()
        self._goal_observation = np.zeros((size, size, 3), np.uint8)
        self._coverage = 0.0

    def state(self) -> np.ndarray:
        agent, block = self._sim.agent, self._sim.block
        return np.array([*agent.position, *block.position, wrap_angle(block.angle), *agent.velocity])

    def _set_state(self, state: np.ndarray) -> None:
        sim = self._sim
        sim.agent.position = (float(state[0]), float(state[1]))
        sim.agent.velocity = (float(state[5]), float(state[6]))
        sim.block.angle = float(state[4])  # angle first: pymunk rotates about the centre of gravity
        sim.block.position = (float(state[2]), float(state[3]))
        sim.block.velocity, sim.block.angular_velocity = (0.0, 0.0), 0.0
        sim.space.reindex_shapes_for_body(sim.agent)
        sim.space.reindex_shapes_for_body(sim.block)

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """The (S, S, 3) uint8 image of agent and block at `state` (goal zone not drawn)."""
        s, shift = self.config.image_size, 4
        scale = s / WORLD * (1 << shift)
        image = np.full((s, s, 3), 255, np.uint8)
        border = max(1, round(7 * s / WORLD))
        image[:border], image[-border:], image[:, :border], image[:, -border:] = 211, 211, 211, 211
        pose = np.asarray(state[2:5], dtype=np.float64)
        polygons = [np.round(to_world(pose, p) * scale).astype(np.int32) for p in T_POLYGONS]
        cv2.fillPoly(image, polygons, (119, 136, 153), cv2.LINE_AA, shift)
        centre = tuple(int(v) for v in np.round(np.asarray(state[:2]) * scale))
        cv2.circle(image, centre, int(AGENT_RADIUS * scale), (65, 105, 225), -1, cv2.LINE_AA, shift)
        return image

    def goal_errors(self, state: np.ndarray, goal_state: np.ndarray) -> tuple[float, float]:
        """(position error in px: of agent and block together, or of the block alone, as the config says;
        block angle error in rad)."""
        first = 0 if self.config.success_with_agent else 2
        difference = np.asarray(state[first:4], dtype=np.float64) - np.asarray(goal_state[first:4], dtype=np.float64)
        return float(np.linalg.norm(difference)), float(abs(wrap_angle(state[4] - goal_state[4])))

    def goal_distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """max(position error / 20 px, angle error / (pi/9)): success when below 1."""
        position, angle = self.goal_errors(state, goal_state)
        return max(position / self.config.success_position, angle / self.config.success_angle)

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        return self.goal_distance(state, goal_state) < 1.0

    def trajectory_xy(self, states: np.ndarray) -> np.ndarray:
        """Block centre of gravity (T, 2) in px."""
        states = np.asarray(states, dtype=np.float64)
        return np.array([to_world(s[2:5], T_COG[None])[0] for s in states])

    def _sample_state(self) -> np.ndarray:
        rng = self.np_random
        return np.array([*rng.uniform(50, 450, 2), *rng.uniform(100, 400, 2), rng.uniform(-np.pi, np.pi), 0.0, 0.0])

    def _info(self) -> dict[str, Any]:
        state = self.state()
        info = goal_info(state, self._goal, self._goal_observation, self.is_success(state, self._goal))
        info["coverage"] = self._coverage
        return info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        start = option_state(options, "start_state", 7)
        goal = option_state(options, "goal_state", 7)
        if goal is None:
            goal = self._sample_state() if self.config.random_goal else DEFAULT_GOAL.copy()
        self._goal = goal.copy()
        self._goal[4] = wrap_angle(goal[4])
        self._goal[5:] = 0.0
        self._goal_observation = self.render_state(self._goal)
        self._sim._setup()
        self._sim.goal_pose = self._goal[2:5].copy()
        self._set_state(start if start is not None else self._sample_state())
        self._coverage = float(self._sim._get_coverage())
        return self.render_state(self.state()), self._info()

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        target = np.asarray(self._sim.agent.position) + action * self.config.action_scale
        _, _, _, _, sim_info = self._sim.step(np.clip(target, 0.0, WORLD))
        self._coverage = float(sim_info["coverage"])
        info = self._info()
        reward = -self.goal_distance(info["state"], self._goal)
        return self.render_state(info["state"]), reward, info["success"], False, info

    def render(self) -> np.ndarray:
        return self.render_state(self.state())


def _contact_candidates(spacing: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 2) on the T's outline in its body frame, with outward normals (N, 2)."""
    edges = [  # (start, end, outward normal) of the outline
        ((-60, 0), (60, 0), (0, -1)),
        ((60, 0), (60, 30), (1, 0)),
        ((60, 30), (15, 30), (0, 1)),
        ((15, 30), (15, 120), (1, 0)),
        ((15, 120), (-15, 120), (0, 1)),
        ((-15, 120), (-15, 30), (-1, 0)),
        ((-15, 30), (-60, 30), (0, 1)),
        ((-60, 30), (-60, 0), (-1, 0)),
    ]
    points, normals = [], []
    for a, b, n in edges:
        a, b = np.array(a, float), np.array(b, float)
        length = np.linalg.norm(b - a)
        for t in np.arange(4.0, length - 3.9, spacing) / length:
            points.append(a + t * (b - a))
            normals.append(n)
    return np.array(points), np.array(normals, float)


def make_pusht_v0(**kwargs: Any) -> PushTEnv:
    """`ami_sim/PushT-v0`: PushT with the `PUSHT_V0` settings; kwargs as for `PushTEnv`."""
    return PushTEnv(config=PUSHT_V0, **kwargs)


class PushTExpert:
    """Pushing controller: pick the point of the T's outline where a push best moves the block toward
    the goal pose (position and angle together), go round the block to just outside that point,
    then push through it; re-planned every step, with hysteresis on the chosen point. When the success
    test counts the agent too and the block is within `settle_fraction` of both thresholds, it takes
    the agent to the goal's agent position instead, round the block."""

    def __init__(
        self,
        config: PushTConfig | None = None,
        margin: float = 4.0,
        rotation_radius: float = 60.0,
        settle_fraction: float = 0.5,
    ):
        self.config = config or PushTConfig()
        self.margin = margin
        self.rotation_radius = rotation_radius
        self.settle_fraction = settle_fraction
        self.points, self.normals = _contact_candidates()
        lever = self.points - T_COG
        # Frictionless contact: an impulse along -n moves the COG along -n / m and turns it by (r x -n) / I.
        self.turn_per_push = -(lever[:, 0] * self.normals[:, 1] - lever[:, 1] * self.normals[:, 0]) * T_MASS / T_MOMENT
        self.current: int | None = None

    def reset(self) -> None:
        self.current = None

    def _scores(self, pose: np.ndarray, goal_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cosine between the twist each contact's push induces and the wanted twist (body frame, the
        turn as arc length at `rotation_radius` px), and the wanted twist."""
        cog, goal_cog = to_world(pose, T_COG[None])[0], to_world(goal_pose, T_COG[None])[0]
        translation_body = (goal_cog - cog) @ rotation(pose[2])
        turn = float(wrap_angle(goal_pose[2] - pose[2]))
        desired = np.array([*translation_body, self.rotation_radius * turn])
        induced = np.column_stack([-self.normals, self.rotation_radius * self.turn_per_push])
        induced /= np.linalg.norm(induced, axis=1, keepdims=True)
        return induced @ desired / (np.linalg.norm(desired) + 1e-9), desired

    def action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float64)
        agent, pose, goal_pose = state[:2], state[2:5], np.asarray(goal_state[2:5], dtype=np.float64)
        clearance = AGENT_RADIUS + self.margin
        if self.config.success_with_agent and self._block_settled(pose, goal_pose):
            goal_agent = np.asarray(goal_state[:2], dtype=np.float64)
            target = self._route(agent, goal_agent, pose, clearance, free_end=2 * clearance)
            return np.clip((target - agent) / self.config.action_scale, -1.0, 1.0).astype(np.float32)
        scores, desired = self._scores(pose, goal_pose)
        approach = to_world(pose, self.points + self.normals * clearance)
        reachable = distance_to_t(pose, approach) > clearance - 1.0
        reachable &= np.all((approach > AGENT_RADIUS + 6) & (approach < WORLD - AGENT_RADIUS - 6), axis=1)
        scores = np.where(reachable, scores, -np.inf)
        best = int(np.argmax(scores))
        if self.current is None or not reachable[self.current] or scores[self.current] < scores[best] - 0.15:
            self.current = best
        i = self.current
        contact = to_world(pose, self.points[i : i + 1])[0]
        push_dir = -(rotation(pose[2]) @ self.normals[i])
        offset = agent - contact
        along, across = -offset @ push_dir, offset @ np.array([-push_dir[1], push_dir[0]])
        if 0.0 < along < clearance + 8.0 and abs(across) < 8.0:
            depth = float(np.clip(0.6 * np.linalg.norm(desired), 6.0, 30.0))
            target = contact + push_dir * depth
        else:
            target = self._route(agent, approach[i], pose, clearance)
        return np.clip((target - agent) / self.config.action_scale, -1.0, 1.0).astype(np.float32)

    def _block_settled(self, pose: np.ndarray, goal_pose: np.ndarray) -> bool:
        position = float(np.linalg.norm(pose[:2] - goal_pose[:2]))
        angle = float(abs(wrap_angle(pose[2] - goal_pose[2])))
        c, f = self.config, self.settle_fraction
        return position < f * c.success_position and angle < f * c.success_angle

    def _route(
        self, agent: np.ndarray, goal: np.ndarray, pose: np.ndarray, clearance: float, free_end: float = 0.0
    ) -> np.ndarray:
        """Next point toward `goal` that keeps clear of the T: straight if free (the last `free_end` px
        before the goal need not be), else round the block."""
        path = agent + np.linspace(0.0, 1.0, 12)[:, None] * (goal - agent)
        checked = path[1:][np.linalg.norm(path[1:] - goal, axis=1) >= free_end]
        if np.all(distance_to_t(pose, checked) > clearance - 2.0):
            return goal
        cog = to_world(pose, T_COG[None])[0]
        radius = max(float(np.linalg.norm(agent - cog)), 80.0 + clearance)
        a_agent = np.arctan2(*(agent - cog)[::-1])
        a_goal = np.arctan2(*(goal - cog)[::-1])
        turn = float(wrap_angle(a_goal - a_agent))
        step = np.sign(turn) * min(abs(turn), 0.6)
        waypoint = cog + radius * np.array([np.cos(a_agent + step), np.sin(a_agent + step)])
        return np.clip(waypoint, AGENT_RADIUS + 6, WORLD - AGENT_RADIUS - 6)
