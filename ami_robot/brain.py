"""The brain without ROS: camera image in, safe robot command out.

    perception   image (H, W, 3) uint8  -> z (D,)                         `LatentEncoder`
    memory       the last latents and actions; surprise                  `ShortTermMemory`
    actor        plan through the world model to the goal, MPC           `Actor`
    safety       bounds, rate limits, stale image, overrun, non-finite   `CommandGuard`
    configurator goal, cost weights, planner settings, active model      `Configurator`

`Brain` assembles them: `set_goal(image)`, then `act(image, now_s)` at the control rate. The ROS 2
nodes in `ami_robot.ros` wrap the same pieces one per node.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ami_robot.actor import Actor, BrainCommand, StopReason
from ami_robot.configurator import BrainSettings, Configurator
from ami_robot.perception.latent_encoder import LatentEncoder
from ami_robot.world_model import WorldModel
from ami_robot.world_model.checkpoint import load_model

logger = logging.getLogger(__name__)


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
    image check sees a camera at the control rate; the planning deadline is real time, and a plan
    that overruns it stops the robot for a step here as on a robot (counted in `overruns`; the first
    is warned of in the log, the others logged at debug level: the result then depends on the
    machine's speed and load).
    """

    def __init__(self, brain: Brain) -> None:
        self.brain = brain
        self.now_s = 0.0
        self.overruns = 0

    def reset(self, info: dict[str, Any]) -> None:
        self.brain.reset()
        self.brain.set_goal(info["goal_observation"])

    def act(self, observation: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        self.now_s += 1.0 / self.brain.settings.control_rate_hz
        command = self.brain.act(observation, self.now_s)
        if command.reason is StopReason.OVERRUN:
            self.overruns += 1
            if self.overruns == 1:
                logger.warning(
                    "a plan overran safety.deadline_s (%s) and the robot stopped for a step; offline, raise the "
                    "deadline (e.g. --set safety.deadline_s=60) for a result that does not depend on this machine's "
                    "load (further overruns are counted, not warned of)",
                    command.detail,
                )
            else:
                logger.debug("plan overrun %d: %s", self.overruns, command.detail)
        return command.action
