"""Memory node: short-term memory of latents and actions, and the surprise signal.

Subscribes `brain/latent` and `brain/action_block` (the normalised action block the planner
committed). When a block arrives, the latest latent is compared with what the world model
predicted for it one step back: `brain/surprise` (std_msgs/Float32) is ||z - ẑ||² / D, a
violation-of-expectation signal (see `ami_robot.memory`). A new goal clears the memory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from rcl_interfaces.msg import ParameterEvent
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Float32MultiArray

from ami_robot.memory import ShortTermMemory
from ami_robot.ros import params as P
from ami_robot.ros.conversions import ConversionError, event_to_settings, msg_to_array, msg_to_latent
from ami_robot.ros.node_base import FAILURE, OK, SUCCESS, WARN, BrainNode
from ami_robot.ros.qos import EVENTS, LATCHED, LATEST
from ami_robot.ros.runtime import run_nodes
from ami_robot.world_model.checkpoint import load_model


class MemoryNode(BrainNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("memory", P.MEMORY, **kwargs)
        self.model = None
        self.memory: ShortTermMemory | None = None
        self.latest: np.ndarray | None = None

    def on_configure(self, state):
        try:
            self._use_model(self.values()["checkpoint"])
        except Exception as exc:
            self.get_logger().error(f"cannot load the model: {exc}")
            return FAILURE
        self.surprise_pub = self.create_publisher(Float32, "brain/surprise", EVENTS)
        self.subs = [
            self.create_subscription(Image, "brain/latent", self.on_latent, LATEST),
            self.create_subscription(Float32MultiArray, "brain/action_block", self.on_action, EVENTS),
            self.create_subscription(Image, "brain/goal_latent", lambda _: self.memory.reset(), LATCHED),
            self.create_subscription(ParameterEvent, "brain/settings", self.on_settings, LATCHED),
        ]
        self.status_timer = self.create_timer(1.0, self.report)
        return SUCCESS

    def _use_model(self, checkpoint: str) -> None:
        self.model = load_model(checkpoint)
        self.memory = ShortTermMemory(self.model.latent_dim, self.model.action_dim, self.values()["memory_capacity"])
        self.latest = None

    def on_cleanup(self, state):
        for sub in self.subs:
            self.destroy_subscription(sub)
        self.destroy_publisher(self.surprise_pub)
        self.destroy_timer(self.status_timer)
        self.model = self.memory = None
        return SUCCESS

    def on_latent(self, msg: Image) -> None:
        try:
            self.latest = msg_to_latent(msg, self.model.latent_dim)
        except ConversionError as exc:
            self.diagnose(WARN, f"latent rejected: {exc}")

    def on_action(self, msg: Float32MultiArray) -> None:
        if not self.active or self.latest is None:
            return
        try:
            block = msg_to_array(msg, self.model.action_dim).reshape(-1)
        except ConversionError as exc:
            self.diagnose(WARN, f"action block rejected: {exc}")
            return
        surprise = self.memory.begin_model_step(self.latest, block, self._predict_next(block), self.model.history)
        if surprise is not None:
            self.surprise_pub.publish(Float32(data=float(surprise)))

    def _predict_next(self, block: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """history (k, D) -> the latent (D,) the model predicts after `block` (action_dim,)."""

        def predict(history: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return self.model.predict(torch.from_numpy(history)[None], torch.from_numpy(block[None]))[0].numpy()

        return predict

    def on_settings(self, msg: ParameterEvent) -> None:
        checkpoint = self.follow_checkpoint(event_to_settings(msg))
        if checkpoint:
            try:
                self._use_model(checkpoint)
            except Exception as exc:
                self.diagnose(WARN, f"model switch to {checkpoint} failed: {exc}")

    def report(self) -> None:
        surprises = self.memory.recent_surprises() if self.memory is not None else np.zeros(0)
        self.diagnose(
            OK if self.active else WARN,
            "tracking surprise" if self.active else "inactive",
            surprise=surprises[-1] if surprises.size else float("nan"),
            surprise_mean=float(surprises.mean()) if surprises.size else float("nan"),
            latents=len(self.memory) if self.memory is not None else 0,
        )


def main(argv: list[str] | None = None) -> int:
    return run_nodes([MemoryNode], argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
