"""Camera pixels to encoder input.

`to_model_input` accepts uint8 RGB images (B, H, W, 3) as a camera or an episode file gives
them, or float images (B, 3, H, W) already in model layout, and returns float32 (B, 3, S, S)
scaled to [-1, 1] (float input is taken as already scaled and only resized).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ami_robot.errors import ImageError


def to_model_input(pixels: torch.Tensor | np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) or float (B, 3, H, W) -> float32 (B, 3, image_size, image_size)."""
    if isinstance(pixels, np.ndarray):
        pixels = torch.from_numpy(pixels)
    if pixels.dim() == 3:
        pixels = pixels.unsqueeze(0)
    if pixels.dim() != 4:
        raise ValueError(f"expected a batch of images (B, H, W, 3) or (B, 3, H, W), got shape {tuple(pixels.shape)}")
    if pixels.dtype == torch.uint8:
        if pixels.shape[-1] != 3:
            raise ValueError(f"uint8 images must be (B, H, W, 3) RGB, got shape {tuple(pixels.shape)}")
        x = pixels.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    elif pixels.is_floating_point():
        if pixels.shape[1] != 3:
            raise ValueError(f"float images must be (B, 3, H, W), got shape {tuple(pixels.shape)}")
        x = pixels.float()
    else:
        raise ValueError(f"images must be uint8 or floating point, got {pixels.dtype}")
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous()


def resize_uint8(images: np.ndarray, image_size: int) -> np.ndarray:
    """Resize uint8 (N, H, W, 3) to (N, image_size, image_size, 3) with area averaging; no-op if equal."""
    if images.shape[1:3] == (image_size, image_size):
        return images
    import cv2

    out = np.empty((len(images), image_size, image_size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = cv2.resize(image, (image_size, image_size), interpolation=cv2.INTER_AREA)
    return out


def validate_image(image: np.ndarray) -> np.ndarray:
    """Check a camera frame is uint8 (H, W, 3), non-empty and contiguous; return it as such."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"image must be uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"image is empty: shape {image.shape}")
    return np.ascontiguousarray(image)
