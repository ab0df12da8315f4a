"""The configurator: current settings, the goal image, and validated switches at run time."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ami_robot.configurator.settings import BrainSettings, flatten_settings, settings_from_flat
from ami_robot.errors import ImageError
from ami_robot.perception import validate_image


def load_goal_image(path: str | Path) -> np.ndarray:
    """A stored goal: a PNG/JPEG (read as RGB) or a .npy uint8 (H, W, 3) array."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"goal image {path} does not exist")
    if path.suffix == ".npy":
        image = np.load(path, allow_pickle=False)
    else:
        import cv2

        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ImageError(f"{path} is not an image OpenCV can read")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return validate_image(image)


class Configurator:
    """Holds `BrainSettings` and the goal image; every change is validated before it applies.

    `version` increases with every accepted change so users can tell what to rebuild:
    `model_changed(old)` says whether the checkpoint differs.
    """

    def __init__(self, settings: BrainSettings | None = None) -> None:
        self._settings = settings or BrainSettings()
        self._goal_image: np.ndarray | None = None
        self._lock = threading.Lock()
        self.version = 0
        self.goal_version = 0

    @property
    def settings(self) -> BrainSettings:
        return self._settings

    def flat(self) -> dict[str, Any]:
        return flatten_settings(self._settings)

    def update(self, changes: dict[str, Any]) -> BrainSettings:
        """Apply dotted-name changes, e.g. {"planner.horizon": 8}; raises ConfigError, changing nothing."""
        with self._lock:
            new = settings_from_flat(changes, self._settings)
            if new != self._settings:
                self._settings = new
                self.version += 1
            return new

    def replace(self, settings: BrainSettings) -> None:
        with self._lock:
            if settings != self._settings:
                self._settings = settings
                self.version += 1

    def switch_model(self, checkpoint: str | Path) -> BrainSettings:
        """Make `checkpoint` the active model (checked to exist)."""
        if not Path(checkpoint).is_dir():
            raise FileNotFoundError(f"checkpoint directory {checkpoint} does not exist")
        return self.update({"checkpoint": str(checkpoint)})

    def set_goal_image(self, image: np.ndarray) -> None:
        """The goal as a camera-like uint8 (H, W, 3) image."""
        image = validate_image(image).copy()
        with self._lock:
            self._goal_image = image
            self.goal_version += 1

    def load_goal(self, path: str | Path) -> None:
        self.set_goal_image(load_goal_image(path))

    @property
    def goal_image(self) -> np.ndarray | None:
        return self._goal_image
