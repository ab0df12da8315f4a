"""Reacher: gymnasium's Reacher-v5 two-link arm on MuJoCo, seen from a top-down camera.

State: (q0, q1, dq0, dq1): shoulder and elbow angles (rad, q0 wrapped to [-pi, pi)) and their
rates (rad/s). Action: the two joint torques in [-1, 1] (Reacher-v5's motors, gear 200), applied for
one step of 0.02 s. The goal is an arm configuration (goal_state, its rates ignored); Reacher-v5's
red target marker is hidden, the goal comes as the image of the arm at the goal configuration.
Success: fingertip within `success_radius` (0.02 m by default; the arm reaches 0.21 m) of the
fingertip at the goal configuration.

Headless rendering needs an OpenGL back end chosen before MuJoCo is imported. Unless MUJOCO_GL is
set, it is osmesa when libOSMesa is installed (Debian libosmesa6; software, works everywhere), else
egl (Mesa's surfaceless EGL also renders in software; on GPU machines it uses the GPU).
"""

from __future__ import annotations

import ctypes.util
import dataclasses
import os
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("MUJOCO_GL", "osmesa" if ctypes.util.find_library("OSMesa") else "egl")

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv as ReacherV5

from ami_sim.base import check_image_size, goal_info, option_state, wrap_angle

LINK_LENGTHS = (0.1, 0.11)  # shoulder->elbow, elbow->fingertip (m), from Reacher-v5's reacher.xml


@dataclass(frozen=True)
class ReacherConfig:
    """Rendering, start/goal sampling and success radius of Reacher (lengths in m, angles in rad)."""

    image_size: int = 64
    camera_distance: float = 0.6
    success_radius: float = 0.02
    elbow_range: float = 2.8

    def __post_init__(self) -> None:
        check_image_size(self.image_size)
        if self.success_radius <= 0 or self.camera_distance <= 0:
            raise ValueError("success_radius and camera_distance must be positive")
        if not 0 < self.elbow_range <= 3.0:
            raise ValueError(f"elbow_range must be in (0, 3] rad (the elbow's joint limit), got {self.elbow_range}")


def fingertip(state: np.ndarray) -> np.ndarray:
    """Fingertip (x, y) in m of arm configuration(s) `state[..., :2]`."""
    state = np.asarray(state, dtype=np.float64)
    q0, q1 = state[..., 0], state[..., 1]
    l0, l1 = LINK_LENGTHS
    return np.stack([l0 * np.cos(q0) + l1 * np.cos(q0 + q1), l0 * np.sin(q0) + l1 * np.sin(q0 + q1)], axis=-1)


class ReacherEnv(gym.Env):
    """Reacher-v5 from pixels with a goal configuration. See the module docstring for units."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}
    state_dim = 4
    map_extent = (-0.25, 0.25, -0.25, 0.25)

    def __init__(self, render_mode: str | None = None, config: ReacherConfig | None = None, **overrides: Any):
        self.config = dataclasses.replace(config or ReacherConfig(), **overrides)
        self.render_mode = render_mode
        size = self.config.image_size
        camera = {"distance": self.config.camera_distance, "elevation": -90.0, "azimuth": 90.0, "lookat": np.zeros(3)}
        self._sim = ReacherV5(render_mode="rgb_array", width=size, height=size, default_camera_config=camera)
        model = self._sim.model
        model.geom_rgba[model.geom("target").id, 3] = 0.0
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.success_threshold = self.config.success_radius
        self._goal = np.zeros(4)
        self._goal_observation = np.zeros((size, size, 3), np.uint8)

    def state(self) -> np.ndarray:
        qpos, qvel = self._sim.data.qpos, self._sim.data.qvel
        return np.array([wrap_angle(qpos[0]), qpos[1], qvel[0], qvel[1]])

    def _set_state(self, state: np.ndarray) -> None:
        qpos = np.concatenate([state[:2], fingertip(self._goal)])
        qvel = np.array([state[2], state[3], 0.0, 0.0])
        self._sim.set_state(qpos, qvel)

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """The (S, S, 3) uint8 top-down image of the arm at configuration `state[:2]`."""
        saved = self._sim.data.qpos.copy(), self._sim.data.qvel.copy()
        self._set_state(np.asarray(state, dtype=np.float64))
        image = np.ascontiguousarray(self._sim.render())
        self._sim.set_state(*saved)
        return image

    def goal_distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        return float(np.linalg.norm(fingertip(state) - fingertip(goal_state)))

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        return self.goal_distance(state, goal_state) < self.config.success_radius

    def trajectory_xy(self, states: np.ndarray) -> np.ndarray:
        return fingertip(states)

    def _sample_configuration(self) -> np.ndarray:
        r = self.config.elbow_range
        return np.array([self.np_random.uniform(-np.pi, np.pi), self.np_random.uniform(-r, r), 0.0, 0.0])

    def _info(self) -> dict[str, Any]:
        state = self.state()
        info = goal_info(state, self._goal, self._goal_observation, self.is_success(state, self._goal))
        return info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._sim.reset(seed=int(self.np_random.integers(2**31)))
        start = option_state(options, "start_state", 4)
        goal = option_state(options, "goal_state", 4)
        for name, state in (("start_state", start), ("goal_state", goal)):
            if state is not None and abs(state[1]) > 3.0:
                raise ValueError(f"options[{name!r}]: elbow angle {state[1]} is outside its limit [-3, 3] rad")
        self._goal = goal.copy() if goal is not None else self._sample_configuration()
        self._goal[2:] = 0.0
        self._goal[0] = wrap_angle(self._goal[0])
        self._goal_observation = self.render_state(self._goal)
        self._set_state(start if start is not None else self._sample_configuration())
        return self.render(), self._info()

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        _, _, _, _, sim_info = self._sim.step(action)
        info = self._info()
        reward = -self.goal_distance(info["state"], self._goal) - 0.1 * float(np.square(action).sum())
        info["reward_ctrl"] = sim_info["reward_ctrl"]
        return self.render(), reward, info["success"], False, info

    def render(self) -> np.ndarray:
        return np.ascontiguousarray(self._sim.render())

    def close(self) -> None:
        self._sim.close()


class ReacherExpert:
    """PD control of the joints to the goal configuration (shoulder by the shorter way round)."""

    def __init__(self, config: ReacherConfig | None = None, kp: float = 4.0, kd: float = 0.6):
        self.config = config or ReacherConfig()
        self.kp, self.kd = kp, kd

    def reset(self) -> None:
        pass

    def action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        error = np.array([wrap_angle(goal_state[0] - state[0]), goal_state[1] - state[1]])
        torque = self.kp * error - self.kd * np.asarray(state[2:4], dtype=np.float64)
        return np.clip(torque, -1.0, 1.0).astype(np.float32)
