"""Reacher: DeepMind Control's two-link reacher (dm-control), seen from its top-down camera.

`ReacherEnv` (`ami_sim/Reacher-v1`, the default) is the task of stable-worldmodel's
`swm/ReacherDMControl-v0` with `task=qpos_match`, used by LeWorldModel: dm-control's `reacher.xml`
(arm 0.12 m, hand 0.12 m to the fingertip, joints damped 0.01 N m s/rad, motors of gear 0.05 with
controls in [-1, 1]; each action held for `action_repeat` = 2 physics steps of 0.02 s, the episode
ending as soon as the goal is met, after either), the target marker hidden, the goal given
as the image of the arm at the goal configuration. Success: every joint within `success_angle`
(0.05 rad) of the goal configuration (the shoulder compared modulo 2 pi).

State: (q0, q1, dq0, dq1): shoulder and wrist angles (rad, q0 wrapped to [-pi, pi), |q1| <= 160 deg)
and their rates (rad/s). Action: the two joint controls in [-1, 1]. Without options, reset draws start
and goal configurations as dm-control's reacher does (shoulder uniform, wrist uniform in its range),
at rest.

`ReacherV0Env` (`ami_sim/Reacher-v0`) keeps our first version: gymnasium's Reacher-v5 arm (links 0.1
and 0.11 m, motors of gear 200), success with the fingertip within 0.02 m of the goal configuration's.

Headless rendering needs an OpenGL back end chosen before MuJoCo is imported. Unless MUJOCO_GL is
set, it is osmesa when libOSMesa is installed (Debian libosmesa6; software, works everywhere), else
egl (Mesa's surfaceless EGL also renders in software; on GPU machines it uses the GPU).
"""

from __future__ import annotations

import ctypes.util
import dataclasses
import os
from dataclasses import dataclass
from typing import Any, ClassVar

os.environ.setdefault("MUJOCO_GL", "osmesa" if ctypes.util.find_library("OSMesa") else "egl")

import gymnasium as gym
import mujoco
import numpy as np

from ami_sim.base import check_image_size, goal_info, option_state, wrap_angle

DMC_LINK_LENGTHS = (0.12, 0.12)  # shoulder->wrist, wrist->fingertip (m), from dm-control's reacher.xml
DMC_WRIST_LIMIT = float(np.deg2rad(160.0))
V0_LINK_LENGTHS = (0.1, 0.11)  # the same, from gymnasium Reacher-v5's reacher.xml
WRIST_LIMIT_SLACK = 0.2  # rad: MuJoCo's joint limits are soft, recorded states pass them a little
# Floor reflection, shadows and skybox cost ~70 ms a frame in software OpenGL and change little at 64 px.
_SLOW_RENDER_FLAGS = (
    mujoco.mjtRndFlag.mjRND_REFLECTION,
    mujoco.mjtRndFlag.mjRND_SHADOW,
    mujoco.mjtRndFlag.mjRND_SKYBOX,
)


@dataclass(frozen=True)
class ReacherConfig:
    """Rendering and success test of the dm-control Reacher (angles in rad)."""

    image_size: int = 64
    success_angle: float = 0.05
    action_repeat: int = 2

    def __post_init__(self) -> None:
        check_image_size(self.image_size)
        if self.success_angle <= 0:
            raise ValueError(f"success_angle must be positive, got {self.success_angle}")
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {self.action_repeat}")


def fingertip(state: np.ndarray, link_lengths: tuple[float, float] = DMC_LINK_LENGTHS) -> np.ndarray:
    """Fingertip (x, y) in m of arm configuration(s) `state[..., :2]`."""
    state = np.asarray(state, dtype=np.float64)
    q0, q1 = state[..., 0], state[..., 1]
    l0, l1 = link_lengths
    return np.stack([l0 * np.cos(q0) + l1 * np.cos(q0 + q1), l0 * np.sin(q0) + l1 * np.sin(q0 + q1)], axis=-1)


def joint_errors(state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
    """|shoulder error| (modulo 2 pi) and |wrist error| in rad, (..., 2)."""
    state, goal_state = np.asarray(state, dtype=np.float64), np.asarray(goal_state, dtype=np.float64)
    shoulder = np.abs(wrap_angle(state[..., 0] - goal_state[..., 0]))
    return np.stack([shoulder, np.abs(state[..., 1] - goal_state[..., 1])], axis=-1)


def _check_wrist(state: np.ndarray | None, key: str, limit: float) -> None:
    if state is not None and abs(state[1]) > limit + WRIST_LIMIT_SLACK:
        raise ValueError(
            f"options[{key!r}]: wrist angle {state[1]} is outside its limit [-{limit:.3f}, {limit:.3f}] rad"
        )


class ReacherEnv(gym.Env):
    """dm-control's reacher from pixels with a goal configuration. See the module docstring for units."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 50}
    state_dim = 4
    map_extent = (-0.3, 0.3, -0.3, 0.3)

    def __init__(self, render_mode: str | None = None, config: ReacherConfig | None = None, **overrides: Any):
        from dm_control.suite import reacher as dmc_reacher

        self.config = dataclasses.replace(config or ReacherConfig(), **overrides)
        self.render_mode = render_mode
        size = self.config.image_size
        self._physics = dmc_reacher.Physics.from_xml_string(*dmc_reacher.get_model_and_assets())
        self._model: mujoco.MjModel = self._physics.model.ptr
        self._data: mujoco.MjData = self._physics.data.ptr
        self._model.geom_rgba[self._model.geom("target").id, 3] = 0.0
        self._renderer = mujoco.Renderer(self._model, size, size)
        for flag in _SLOW_RENDER_FLAGS:
            self._renderer.scene.flags[flag] = False
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.success_threshold = self.config.success_angle
        self._goal = np.zeros(4)
        self._goal_observation = np.zeros((size, size, 3), np.uint8)

    def state(self) -> np.ndarray:
        qpos, qvel = self._data.qpos, self._data.qvel
        return np.array([wrap_angle(qpos[0]), qpos[1], qvel[0], qvel[1]])

    def _set_state(self, state: np.ndarray) -> None:
        self._data.qpos[:] = state[:2]
        self._data.qvel[:] = state[2:4]
        self._data.ctrl[:] = 0.0
        mujoco.mj_forward(self._model, self._data)

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """The (S, S, 3) uint8 top-down image of the arm at configuration `state[:2]`."""
        saved = self._data.qpos.copy(), self._data.qvel.copy()
        self._data.qpos[:] = np.asarray(state, dtype=np.float64)[:2]
        mujoco.mj_kinematics(self._model, self._data)
        image = self._render()
        self._data.qpos[:], self._data.qvel[:] = saved
        mujoco.mj_forward(self._model, self._data)
        return image

    def _render(self) -> np.ndarray:
        self._renderer.update_scene(self._data, camera="fixed")
        return np.ascontiguousarray(self._renderer.render())

    def goal_distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """The largest joint error (rad): success when below `success_angle`."""
        return float(joint_errors(state, goal_state).max())

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        return self.goal_distance(state, goal_state) < self.config.success_angle

    def trajectory_xy(self, states: np.ndarray) -> np.ndarray:
        return fingertip(states)

    def _sample_configuration(self) -> np.ndarray:
        rng = self.np_random
        return np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-DMC_WRIST_LIMIT, DMC_WRIST_LIMIT), 0.0, 0.0])

    def _info(self) -> dict[str, Any]:
        state = self.state()
        return goal_info(state, self._goal, self._goal_observation, self.is_success(state, self._goal))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        start = option_state(options, "start_state", 4)
        goal = option_state(options, "goal_state", 4)
        _check_wrist(start, "start_state", DMC_WRIST_LIMIT)
        _check_wrist(goal, "goal_state", DMC_WRIST_LIMIT)
        self._goal = goal.copy() if goal is not None else self._sample_configuration()
        self._goal[0] = wrap_angle(self._goal[0])
        self._goal[2:] = 0.0
        self._goal_observation = self.render_state(self._goal)
        self._set_state(start if start is not None else self._sample_configuration())
        return self._render(), self._info()

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self._data.ctrl[:] = action
        for _ in range(self.config.action_repeat):
            mujoco.mj_step(self._model, self._data)
            if self.is_success(self.state(), self._goal):
                break
        info = self._info()
        reward = -self.goal_distance(info["state"], self._goal)
        return self._render(), reward, info["success"], False, info

    def render(self) -> np.ndarray:
        return self._render()

    def close(self) -> None:
        self._renderer.close()


class ReacherExpert:
    """PD control of both joints to the goal configuration (shoulder by the shorter way round); gains
    in control units per rad and per rad/s. The defaults suit `ReacherEnv`; `ReacherV0Env`'s stronger
    motors took kp=4, kd=0.6."""

    def __init__(self, config: Any = None, kp: float = 20.0, kd: float = 0.5):
        self.config = config
        self.kp, self.kd = kp, kd

    def reset(self) -> None:
        pass

    def action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        error = np.array([wrap_angle(goal_state[0] - state[0]), goal_state[1] - state[1]])
        torque = self.kp * error - self.kd * np.asarray(state[2:4], dtype=np.float64)
        return np.clip(torque, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class ReacherV0Config:
    """Rendering, start/goal sampling and success radius of Reacher-v0 (lengths in m, angles in rad)."""

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


class ReacherV0Env(gym.Env):
    """`ami_sim/Reacher-v0`: gymnasium's Reacher-v5 arm from pixels, fingertip success (see the module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 50}
    state_dim = 4
    map_extent = (-0.25, 0.25, -0.25, 0.25)

    def __init__(self, render_mode: str | None = None, config: ReacherV0Config | None = None, **overrides: Any):
        self.config = dataclasses.replace(config or ReacherV0Config(), **overrides)
        self.render_mode = render_mode
        size = self.config.image_size
        from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv as ReacherV5

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
        qpos = np.concatenate([state[:2], fingertip(self._goal, V0_LINK_LENGTHS)])
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
        return float(np.linalg.norm(fingertip(state, V0_LINK_LENGTHS) - fingertip(goal_state, V0_LINK_LENGTHS)))

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        return self.goal_distance(state, goal_state) < self.config.success_radius

    def trajectory_xy(self, states: np.ndarray) -> np.ndarray:
        return fingertip(states, V0_LINK_LENGTHS)

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


def make_reacher_v0(**kwargs: Any) -> ReacherV0Env:
    """`ami_sim/Reacher-v0`: our first Reacher (gymnasium Reacher-v5 arm); kwargs as for `ReacherV0Env`."""
    return ReacherV0Env(**kwargs)
