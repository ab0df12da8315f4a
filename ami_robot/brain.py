"""The brain without ROS: camera image in, safe robot command out.

    perception   image (H, W, 3) uint8  -> z (D,)                         `LatentEncoder`
    memory       the last latents and actions; surprise                  `ShortTermMemory`
    actor        plan through the world model to the goal, MPC           `Actor`
    safety       bounds, rate limits, stale image, overrun, non-finite   `CommandGuard`
    configurator goal, cost weights, planner settings, active model      `Configurator`

`Brain` assembles them: `set_goal(image)`, then `act(image, now_s)` at the control rate. The ROS 2
nodes in `ami_robot.ros` wrap the same pieces one per node.

Actions: the planner searches normalised action blocks (frameskip raw actions per model step, see
`ami_robot.world_model.model`); commands are raw robot actions. The actor replans once per model
step and sends the block's raw actions one per control tick.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ami_robot.configurator import BrainSettings, Configurator
from ami_robot.memory import ShortTermMemory
from ami_robot.planning import CEMPlanner, MPPIPlanner
from ami_robot.safety import CommandGuard, SafeCommand, StopReason, validate_image
from ami_robot.world_model import WorldModel, load_checkpoint


@functools.lru_cache(maxsize=4)
def _cached_model(checkpoint: str, mtime_ns: int) -> WorldModel:
    model = load_checkpoint(checkpoint)
    model.eval()
    return model


def load_model(checkpoint: str | Path) -> WorldModel:
    """The world model in `checkpoint`, loaded once per process (nodes in one process share it)."""
    path = Path(checkpoint).resolve()
    config = path / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"no world-model checkpoint at {path} (expected config.json and model.safetensors)")
    return _cached_model(str(path), config.stat().st_mtime_ns)


class LatentEncoder:
    """Perception: one camera image uint8 (H, W, 3) -> latent z (D,) float32; other sizes are resized."""

    def __init__(self, model: WorldModel) -> None:
        self.model = model

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = validate_image(image)
        return self.model.encode(image[None]).float().cpu().numpy()[0]


@dataclass(frozen=True)
class BrainCommand:
    """One control tick's output.

    action: raw robot command (env_action_dim,), already safe; reason: why it is a stop (NONE if not);
    plan: raw planned actions (H * frameskip, env_action_dim) or None when not replanned this tick;
    cost: plan cost; planning_s: time spent planning this tick; surprise: see `ShortTermMemory`.
    """

    action: np.ndarray
    reason: StopReason = StopReason.NONE
    detail: str = ""
    plan: np.ndarray | None = None
    cost: float = float("nan")
    planning_s: float = 0.0
    surprise: float | None = None
    replanned: bool = False

    @property
    def stopped(self) -> bool:
        return self.reason is not StopReason.NONE

    @property
    def is_error(self) -> bool:
        return self.reason.is_error


def build_planner(model: WorldModel, settings: BrainSettings):
    """The CEM or MPPI planner over `model`'s predictor, searching inside the model's action bounds
    (normalised, as seen in training; PlannerConfig's defaults when the model has none)."""
    planner_cls = CEMPlanner if settings.method == "cem" else MPPIPlanner
    bounds = model.action_bounds()
    config = settings.planner_config(*bounds) if bounds is not None else settings.planner_config()
    return planner_cls(model.predictor, config, backend=settings.backend)


class Actor:
    """Receding-horizon MPC with warm start, behind the command guard.

    `observe(z, now_s)` with each new latent, `set_goal_latent(z_goal)`, then `tick(now_s)` once per
    control period returns the command to send.
    """

    def __init__(self, model: WorldModel, settings: BrainSettings, planner=None) -> None:
        self.model = model
        self.settings = settings
        self.planner = planner if planner is not None else build_planner(model, settings)
        self.memory = ShortTermMemory(model.latent_dim, model.action_dim, settings.memory_capacity)
        self.guard = CommandGuard(settings.safety, model.env_action_dim)
        self.goal: np.ndarray | None = None
        self._latest: np.ndarray | None = None
        self._queue: deque[np.ndarray] = deque()

    @property
    def backend(self) -> str:
        return str(getattr(self.planner, "backend_name", self.settings.backend))

    def observe(self, z: np.ndarray, now_s: float) -> None:
        """The latest latent (D,) from a valid camera image received at `now_s`."""
        self._latest = np.asarray(z, dtype=np.float32).reshape(-1)
        self.guard.image_received(now_s)

    def set_goal_latent(self, z_goal: np.ndarray) -> None:
        self.goal = np.asarray(z_goal, dtype=np.float32).reshape(-1)
        self.reset()

    def take_over(self, previous: Actor) -> None:
        """Continue where `previous` (same robot, other settings or model) left off: the last image
        time, last command and, if the latent space is the same model's, the latest latent and goal."""
        self.guard.last_image_s = previous.guard.last_image_s
        self.guard.last_command = previous.guard.last_command.copy()
        if previous.model is self.model:
            self._latest = previous._latest
            if previous.goal is not None:
                self.set_goal_latent(previous.goal)

    def reset(self) -> None:
        """Forget the plan, warm start and history (a new goal or episode)."""
        self.memory.reset()
        self._queue.clear()
        if hasattr(self.planner, "reset"):
            self.planner.reset()

    def stop(self, reason: StopReason, detail: str = "") -> BrainCommand:
        self._queue.clear()
        return self._as_command(self.guard.stop(reason, detail))

    def tick(self, now_s: float) -> BrainCommand:
        """The command for this control period."""
        fault = self.guard.image_fault(now_s)
        if fault is not StopReason.NONE:
            return self.stop(fault)
        if self.goal is None:
            return self.stop(StopReason.NO_GOAL)
        if self._queue:
            return self._send_queued()
        return self._replan()

    def _send_queued(self) -> BrainCommand:
        action = self._queue.popleft()
        return self._as_command(self.guard.command(action[None], 0.0))

    def _replan(self) -> BrainCommand:
        surprise = self.memory.observe(self._latest)
        history = self.memory.latent_history(self.model.history)
        previous = self.memory.last_actions(1)
        start = time.perf_counter()
        try:
            result = self.planner.plan(history, self.goal, previous_action=previous[0] if len(previous) else None)
        except Exception as exc:  # noqa: BLE001 - whatever the planner raises, the robot stops
            self._queue.clear()
            return self.stop(StopReason.PLANNER_FAILED, f"{type(exc).__name__}: {exc}")
        planning_s = time.perf_counter() - start
        blocks = np.asarray(result.actions, dtype=np.float32)  # (H, action_dim), normalised
        cost = float(result.cost)
        raw_plan = self.model.denormalize_actions(blocks).reshape(-1, self.model.env_action_dim)
        safe = self.guard.command(raw_plan, planning_s, cost)
        if safe.stopped:
            self._queue.clear()
            if hasattr(self.planner, "reset"):
                self.planner.reset()
            return self._as_command(safe, plan=raw_plan, cost=cost, planning_s=planning_s, surprise=surprise, replanned=True)
        with torch.inference_mode():
            z_next = self.model.predict(torch.from_numpy(history)[None], torch.from_numpy(blocks[:1]))[0].numpy()
        self.memory.acted(blocks[0], z_next)
        self._queue.extend(raw_plan[1 : self.model.frameskip])
        return self._as_command(safe, plan=raw_plan, cost=cost, planning_s=planning_s, surprise=surprise, replanned=True)

    @staticmethod
    def _as_command(safe: SafeCommand, **extra) -> BrainCommand:
        return BrainCommand(action=safe.action, reason=safe.reason, detail=safe.detail, **extra)


class Brain:
    """All modules in one object: `set_goal(image)`, then `act(image, now_s)` each control period."""

    def __init__(self, configurator: Configurator | None = None, model: WorldModel | None = None) -> None:
        self.configurator = configurator or Configurator()
        self._build(model)

    def _build(self, model: WorldModel | None = None) -> None:
        settings = self.configurator.settings
        self.model = model if model is not None else load_model(settings.checkpoint)
        self.encoder = LatentEncoder(self.model)
        self.actor = Actor(self.model, settings)
        self._settings_version = self.configurator.version
        self._goal_version = -1

    @property
    def settings(self) -> BrainSettings:
        return self.configurator.settings

    def set_goal(self, image: np.ndarray) -> None:
        """The goal as an image like the camera's, uint8 (H, W, 3)."""
        self.configurator.set_goal_image(image)
        self._sync_goal()

    def _sync(self) -> None:
        if self.configurator.version != self._settings_version:
            old_checkpoint = self.actor.settings.checkpoint
            self._build(None if self.settings.checkpoint != old_checkpoint else self.model)
        self._sync_goal()

    def _sync_goal(self) -> None:
        goal = self.configurator.goal_image
        if goal is not None and self.configurator.goal_version != self._goal_version:
            self.actor.set_goal_latent(self.encoder(goal))
            self._goal_version = self.configurator.goal_version

    def observe(self, image: np.ndarray, now_s: float) -> np.ndarray:
        """Encode a camera image received at `now_s` (s); returns z (D,). Raises ImageError if malformed."""
        self._sync()
        z = self.encoder(image)
        self.actor.observe(z, now_s)
        return z

    def act(self, image: np.ndarray | None, now_s: float) -> BrainCommand:
        """Observe `image` (None: no new image this period), then the safe command for `now_s`."""
        if image is not None:
            self.observe(image, now_s)
        self._sync()
        return self.actor.tick(now_s)

    def reset(self) -> None:
        self.actor.reset()


class BrainPolicy:
    """The brain as an `ami_sim.policies.Policy`, for offline evaluation without ROS.

    Time is simulated: every `act` advances the brain's clock by one control period, so the stale
    image check sees a camera at the control rate; the planning deadline is real time.
    """

    def __init__(self, brain: Brain) -> None:
        self.brain = brain
        self.now_s = 0.0

    def reset(self, info) -> None:
        self.brain.reset()
        self.brain.set_goal(info["goal_observation"])

    def act(self, observation: np.ndarray, info) -> np.ndarray:
        self.now_s += 1.0 / self.brain.settings.control_rate_hz
        return self.brain.act(observation, self.now_s).action
