"""`LatentEncoder`: perception at run time, one camera image to one latent state."""

from __future__ import annotations

import numpy as np
import torch

from ami_robot.perception.preprocess import validate_image
from ami_robot.world_model.model import WorldModel


class LatentEncoder:
    """Perception: one camera image uint8 (H, W, 3) -> latent z (D,) float32; other sizes are resized."""

    def __init__(self, model: WorldModel) -> None:
        self.model = model

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = validate_image(image)
        return self.model.encode(image[None]).float().cpu().numpy()[0]
