"""The actor: receding-horizon MPC through the world model, behind the command guard.

Actions: the planner searches normalised action blocks (frameskip raw actions per model step, see
`ami_robot.world_model.model`); commands are raw robot actions. The actor replans once per model
step and sends the block's raw actions one per control tick.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ami_robot.actor.safety import CommandGuard, SafeCommand, StopReason
from ami_robot.memory import ShortTermMemory
from ami_robot.planning import CEMPlanner, MPPIPlanner
from ami_robot.world_model.model import WorldModel

if TYPE_CHECKING:
    from ami_robot.configurator.settings import BrainSettings


@dataclass(frozen=True)
class BrainCommand:
    """One control tick's output.

    action: raw robot command (env_action_dim,), already safe; reason: why it is a stop (NONE if not);
    plan: raw planned actions (H * frameskip, env_action_dim) or None when not replanned this tick;
    plan_std: the planner's final sampling std around `plan`, in raw action units, same shape;
    cost: plan cost; planning_s: time spent planning this tick; surprise: see `ShortTermMemory`.
    """

    action: np.ndarray
    reason: StopReason = StopReason.NONE
    detail: str = ""
    plan: np.ndarray | None = None
    plan_std: np.ndarray | None = None
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


def build_planner(model: WorldModel, settings: BrainSettings) -> CEMPlanner | MPPIPlanner:
    """The CEM or MPPI planner over `model`'s predictor (and its critic, when it has one), searching
    inside the model's action bounds (normalised, as seen in training; PlannerConfig's defaults
    when the model has none)."""
    planner_cls = CEMPlanner if settings.method == "cem" else MPPIPlanner
    bounds = model.action_bounds()
    config = settings.planner_config(*bounds) if bounds is not None else settings.planner_config()
    return planner_cls(model.predictor, config, backend=settings.backend, critic=model.critic)


class Actor:
    """Receding-horizon MPC with warm start, behind the command guard.

    `observe(z, now_s)` with each new latent, `set_goal_latent(z_goal)`, then `tick(now_s)` once per
    control period returns the command to send.
    """

    def __init__(
        self, model: WorldModel, settings: BrainSettings, planner: CEMPlanner | MPPIPlanner | None = None
    ) -> None:
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
        fault, detail = self.guard.image_fault(now_s)
        if fault is not StopReason.NONE:
            return self.stop(fault, detail)
        if self.goal is None:
            return self.stop(StopReason.NO_GOAL)
        if self._queue:
            return self._send_queued()
        return self._replan()

    def _send_queued(self) -> BrainCommand:
        action = self._queue.popleft()
        return self._as_command(self.guard.command(action[None], 0.0))

    def _replan(self) -> BrainCommand:
        if self._latest is None:
            return self.stop(StopReason.NO_IMAGE)
        surprise = self.memory.observe(self._latest)
        history = self.memory.latent_history(self.model.history)
        previous = self.memory.last_actions(1)
        start = time.perf_counter()
        try:
            result = self.planner.plan(history, self.goal, previous_action=previous[0] if len(previous) else None)
        except Exception as exc:
            self._queue.clear()
            return self.stop(StopReason.PLANNER_FAILED, f"{type(exc).__name__}: {exc}")
        planning_s = time.perf_counter() - start
        blocks = np.asarray(result.actions, dtype=np.float32)  # (H, action_dim), normalised
        cost = float(result.cost)
        raw_plan = self.model.denormalize_actions(blocks).reshape(-1, self.model.env_action_dim)
        raw_std = self._raw_spread(getattr(result, "std", None), raw_plan.shape)
        safe = self.guard.command(raw_plan, planning_s, cost)
        if safe.stopped:
            self._queue.clear()
            if hasattr(self.planner, "reset"):
                self.planner.reset()
        else:
            with torch.inference_mode():
                z_next = self.model.predict(torch.from_numpy(history)[None], torch.from_numpy(blocks[:1]))[0].numpy()
            self.memory.acted(blocks[0], z_next)
            self._queue.extend(raw_plan[1 : self.model.frameskip])
        return self._as_command(
            safe,
            plan=raw_plan,
            plan_std=raw_std,
            cost=cost,
            planning_s=planning_s,
            surprise=surprise,
            replanned=True,
        )

    def _raw_spread(self, std: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
        """The planner's normalised sampling std (H, action_dim) in raw action units, shaped like the raw plan."""
        if std is None:
            return None
        spread = np.asarray(std, dtype=np.float32)
        zero = self.model.denormalize_actions(np.zeros_like(spread))
        return (self.model.denormalize_actions(spread) - zero).reshape(shape)

    @staticmethod
    def _as_command(safe: SafeCommand, **extra: Any) -> BrainCommand:
        return BrainCommand(action=safe.action, reason=safe.reason, detail=safe.detail, **extra)
