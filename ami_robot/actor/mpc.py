"""The actor: receding-horizon MPC through the world model, behind the command guard.

Actions: the planner searches normalised action blocks (frameskip raw actions per model step, see
`ami_robot.world_model.model`); commands are raw robot actions. The actor plans, then sends the
plan's first `BrainSettings.replan_every` blocks (one model step by default) one raw action per
control tick and plans again. At each model step it executes without planning, it still stores the
observed latent, the block and the latent predicted after it in short-term memory (the surprise).

Planning ahead (`BrainSettings.plan_ahead`): as soon as a plan is commanded, the next plan starts
from the latent the world model predicts after the blocks to execute, while their actions go out;
the image that starts the next plan's model step then takes that plan at once instead of waiting for
a fresh one. The observed image feeds the plan after it (one plan of feedback delay, the price of
answering at once when a plan takes longer than a camera period). Given an executor, the plan runs
there, and so does the first plan toward a goal: until it is ready, each image is answered with the
stop action (`StopReason.FIRST_PLAN`, not an error), so that no image waits for a plan. Without an
executor (offline evaluation) every plan runs at once, with the same inputs and noise, and the first
plan toward a goal is no overrun either: only the wait for a plan made ahead counts against the deadline.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ami_robot.actor.safety import CommandGuard, SafeCommand, StopReason
from ami_robot.memory import ShortTermMemory
from ami_robot.planning import CEMPlanner, MPPIPlanner, PlanResult
from ami_robot.world_model.model import WorldModel

if TYPE_CHECKING:
    from ami_robot.configurator.settings import BrainSettings


@dataclass(frozen=True)
class BrainCommand:
    """One control tick's output.

    action: raw robot command (env_action_dim,), already safe; reason: why it is a stop (NONE if not);
    plan: raw planned actions (H * frameskip, env_action_dim) or None when not replanned this tick;
    plan_std: the planner's final sampling std around `plan`, in raw action units, same shape;
    cost: plan cost; planning_s: the plan's computing time; surprise: see `ShortTermMemory`;
    replanned: a new plan starts this tick; prepared: that plan was made ahead (see `plan_ahead`);
    block: the normalised action block (action_dim,) whose model step starts this tick (None: none).
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
    prepared: bool = False
    block: np.ndarray | None = None

    @property
    def stopped(self) -> bool:
        return self.reason is not StopReason.NONE

    @property
    def is_error(self) -> bool:
        return self.reason.is_error


def build_planner(model: WorldModel, settings: BrainSettings) -> CEMPlanner | MPPIPlanner:
    """The CEM or MPPI planner over `model`'s predictor ensemble when it has one, else its predictor
    (and its critic, when it has one), searching inside the model's action bounds (normalised, as
    seen in training; PlannerConfig's defaults when the model has none)."""
    planner_cls = CEMPlanner if settings.method == "cem" else MPPIPlanner
    bounds = model.action_bounds()
    config = settings.planner_config(*bounds) if bounds is not None else settings.planner_config()
    dynamics = model.ensemble if model.ensemble is not None else model.predictor
    return planner_cls(dynamics, config, backend=settings.backend, critic=model.critic)


class Actor:
    """Receding-horizon MPC with warm start, behind the command guard.

    `set_goal_latent(z_goal)`, `observe(z, now_s)` with each new latent (a plan toward a goal starts
    from an image observed after it was set), then `tick(now_s)` once per control period returns the
    command to send. `executor` runs the plans made ahead (one worker,
    so that the planner's calls run one at a time, in order; None: at once).
    """

    def __init__(
        self,
        model: WorldModel,
        settings: BrainSettings,
        planner: CEMPlanner | MPPIPlanner | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.model = model
        self.settings = settings
        self.planner = planner if planner is not None else build_planner(model, settings)
        self.memory = ShortTermMemory(model.latent_dim, model.action_dim, settings.memory_capacity)
        self.guard = CommandGuard(settings.safety, model.env_action_dim)
        self.goal: np.ndarray | None = None
        self._latest: np.ndarray | None = None
        self._queue: deque[tuple[np.ndarray, np.ndarray | None]] = deque()
        """Raw actions still to send, each with the normalised block whose model step it starts (else None)."""
        self._executor = executor
        self._prepared: Future[PlanResult] | None = None
        self._first_plan_surprise: float | None = None
        self._first_plan_pending = False

    @property
    def backend(self) -> str:
        return str(getattr(self.planner, "backend_name", self.settings.backend))

    def observe(self, z: np.ndarray, now_s: float) -> None:
        """The latest latent (D,) from a valid camera image received at `now_s`."""
        self._latest = np.asarray(z, dtype=np.float32).reshape(-1)
        self.guard.image_received(now_s)

    def set_goal_latent(self, z_goal: np.ndarray) -> None:
        """A new goal (D,); plans toward it start from the next image (a goal may come with a reset that
        moves the robot, and the image before it would then start a plan from where the robot was)."""
        self.goal = np.asarray(z_goal, dtype=np.float32).reshape(-1)
        self._latest = None
        self.reset()

    def take_over(self, previous: Actor) -> None:
        """Continue where `previous` (same robot, other settings or model) left off: the last image
        time, last command and, if the latent space is the same model's, the latest latent and goal."""
        previous.discard_prepared()
        self.guard.last_image_s = previous.guard.last_image_s
        self.guard.last_command = previous.guard.last_command.copy()
        if previous.model is self.model:
            if previous.goal is not None:
                self.set_goal_latent(previous.goal)
            self._latest = previous._latest

    def reset(self) -> None:
        """Forget the plan, warm start and history (a new goal or episode)."""
        self.discard_prepared()
        self.memory.reset()
        self._queue.clear()
        self._reset_planner()

    @property
    def planning_ahead(self) -> bool:
        """A plan for the next model step is made or under way (see `plan_ahead`)."""
        return self._prepared is not None

    @property
    def _plans_on_executor(self) -> bool:
        return self._executor is not None and self.settings.plan_ahead

    def discard_prepared(self) -> None:
        """Drop the plan made ahead without waiting: one still running finishes unused (the executor
        runs the planner's calls one at a time, in order, so the next one starts after it)."""
        if self._prepared is not None:
            self._prepared.cancel()
        self._prepared, self._first_plan_pending = None, False

    def _reset_planner(self) -> None:
        """Forget the warm start and restart the noise stream, after any plan under way."""
        if not hasattr(self.planner, "reset"):
            return
        if self._plans_on_executor:
            assert self._executor is not None
            self._executor.submit(self.planner.reset)
        else:
            self.planner.reset()

    def stop(self, reason: StopReason, detail: str = "") -> BrainCommand:
        self.discard_prepared()
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
        action, block = self._queue.popleft()
        surprise = None
        if block is not None:  # a model step of the current plan starts, without planning
            assert self._latest is not None
            surprise = self.memory.begin_model_step(
                self._latest, block, lambda history: self._rollout(history, block[None])[0], self.model.history
            )
        return self._as_command(self.guard.command(action[None], 0.0), surprise=surprise, block=block)

    def _rollout(self, history: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        """The latents (k, D) the model predicts after each of `blocks` (k, action_dim) in turn, from
        `history` (history, D)."""
        with torch.inference_mode():
            return self.model.rollout(torch.from_numpy(history)[None], torch.from_numpy(blocks)[None])[0].numpy()

    def _replan(self) -> BrainCommand:
        if self._latest is None:
            return self.stop(StopReason.NO_IMAGE)
        if self._prepared is None and self._plans_on_executor:
            self._start_first_plan()
        if self._first_plan_pending:
            assert self._prepared is not None
            if not self._prepared.done():
                return self._as_command(self.guard.stop(StopReason.FIRST_PLAN))
            surprise, self._first_plan_pending = self._first_plan_surprise, False
        else:
            surprise = self.memory.observe(self._latest)
        history = self.memory.latent_history(self.model.history)
        prepared = self._prepared is not None
        start = time.perf_counter()
        try:
            result = self._take_prepared() if prepared else self._plan(history, self.goal, self._last_block())
        except Exception as exc:
            return self.stop(StopReason.PLANNER_FAILED, f"{type(exc).__name__}: {exc}")
        waited_s = time.perf_counter() - start
        blocks = np.asarray(result.actions, dtype=np.float32)  # (H, action_dim), normalised
        cost = float(result.cost)
        raw_plan = self.model.denormalize_actions(blocks).reshape(-1, self.model.env_action_dim)
        raw_std = self._raw_spread(getattr(result, "std", None), raw_plan.shape)
        held = self.settings.plan_ahead and not prepared  # the first plan toward the goal: the robot holds
        safe = self.guard.command(raw_plan, 0.0 if held else waited_s, cost)
        executed = blocks[: self.settings.replan_every]
        if safe.stopped:
            self._queue.clear()
            self._reset_planner()
        else:
            predicted = self._rollout(history, executed if self.settings.plan_ahead else executed[:1])
            self.memory.acted(executed[0], predicted[0])
            frameskip = self.model.frameskip
            for step, block in enumerate(executed):
                actions = raw_plan[step * frameskip : (step + 1) * frameskip]
                self._queue.extend((action, block if i == 0 else None) for i, action in enumerate(actions))
            self._queue.popleft()  # the plan's first action goes out now
            if self.settings.plan_ahead:
                self._prepare(np.concatenate([history, predicted])[-len(history) :], executed[-1])
        return self._as_command(
            safe,
            plan=raw_plan,
            plan_std=raw_std,
            cost=cost,
            planning_s=waited_s if not prepared else float(getattr(result, "elapsed_s", waited_s)),
            surprise=surprise,
            replanned=True,
            prepared=prepared,
            block=None if safe.stopped else executed[0],
        )

    def _last_block(self) -> np.ndarray | None:
        previous = self.memory.last_actions(1)
        return previous[0] if len(previous) else None

    def _plan(self, history: np.ndarray, goal: np.ndarray | None, previous_block: np.ndarray | None) -> PlanResult:
        """A plan from `history` (history, D) to `goal` (D,); the rate limit starts from `previous_block`,
        the warm start from the previous plan after the `replan_every` model steps executed of it."""
        return self.planner.plan(history, goal, previous_action=previous_block, advance=self.settings.replan_every)

    def _prepare(self, predicted_history: np.ndarray, block: np.ndarray) -> None:
        """Start the next plan from the history the model predicts once the blocks being executed,
        the last of them `block`, are done."""
        if self._executor is None:
            self._prepared = Future()
            try:
                self._prepared.set_result(self._plan(predicted_history, self.goal, block))
            except Exception as exc:
                self._prepared.set_exception(exc)
        else:
            self._prepared = self._executor.submit(self._plan, predicted_history, self.goal, block)

    def _start_first_plan(self) -> None:
        """Plan toward the goal from the latest image on the executor; the robot holds meanwhile, so
        that image's history is still the one the plan starts from when it is ready."""
        assert self._executor is not None and self._latest is not None
        self._first_plan_surprise = self.memory.observe(self._latest)
        history = self.memory.latent_history(self.model.history)
        self._prepared = self._executor.submit(self._plan, history, self.goal, self._last_block())
        self._first_plan_pending = True

    def _take_prepared(self) -> PlanResult:
        """The plan made ahead (waiting for it if it is still running); raises what planning raised."""
        prepared, self._prepared = self._prepared, None
        assert prepared is not None
        return prepared.result()

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
