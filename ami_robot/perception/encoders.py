"""Image encoders: pixels (B, 3, S, S) in [-1, 1] -> latent z (B, latent_dim).

encoder = backbone (CNN, keypoint CNN or ViT-tiny) -> projector (Linear, BatchNorm1d, GELU, Linear).
The projector ends in a plain Linear, never a normalisation: SIGReg shapes the distribution of z
and a final LayerNorm/BatchNorm would pin its scale and block that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

EncoderKind = Literal["cnn", "keypoints", "vit"]


@dataclass(frozen=True)
class EncoderConfig:
    """kind "cnn" (default, fast on CPU), "keypoints" (a CNN read out by a spatial softmax: where
    things are, for objects whose pose matters) or "vit" (ViT-tiny: dim 192, depth 12, 3 heads)."""

    kind: EncoderKind = "cnn"
    cnn_channels: tuple[int, ...] = (32, 64, 64, 64)
    feature_dim: int = 256
    projector_hidden_dim: int = 512
    keypoints: int = 32
    patch_size: int = 8
    vit_dim: int = 192
    vit_depth: int = 12
    vit_heads: int = 3

    def __post_init__(self) -> None:
        kinds = get_args(EncoderKind)
        if self.kind not in kinds:
            raise ValueError(f"encoder kind must be one of {', '.join(kinds)}, got {self.kind!r}")
        if not self.cnn_channels:
            raise ValueError("cnn_channels must list at least one layer")
        if self.keypoints < 1:
            raise ValueError(f"keypoints must be at least 1, got {self.keypoints}")


class CNNBackbone(nn.Module):
    """Stride-2 4x4 convolutions with GELU, then flatten -> Linear -> LayerNorm. (B, 3, S, S) -> (B, F)."""

    def __init__(self, config: EncoderConfig, image_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for channels in config.cnn_channels:
            layers += [nn.Conv2d(in_channels, channels, kernel_size=4, stride=2, padding=1), nn.GELU()]
            in_channels = channels
        self.convs = nn.Sequential(*layers)
        side = image_size
        for _ in config.cnn_channels:
            side = side // 2
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for {len(config.cnn_channels)} stride-2 layers")
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(in_channels * side * side, config.feature_dim), nn.LayerNorm(config.feature_dim)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(images))


class KeypointBackbone(nn.Module):
    """3x3 convolutions with GELU (the first two of stride 2, the rest of stride 1), a 1x1 convolution
    to K maps, a spatial softmax over each map, and its expected image position (x, y in [-1, 1]);
    then Linear -> LayerNorm. (B, 3, S, S) -> (B, F), through K keypoints at resolution S/4.

    Where a part of the scene is, not only what is there, reaches the latent: the pose of a pushed
    object is a few keypoints' positions. The spatial-softmax read-out of deep spatial autoencoders
    (Finn et al., 2016) and of Diffusion Policy's image encoder."""

    strided_layers = 2
    grid: torch.Tensor

    def __init__(self, config: EncoderConfig, image_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for index, channels in enumerate(config.cnn_channels):
            stride = 2 if index < self.strided_layers else 1
            layers += [nn.Conv2d(in_channels, channels, kernel_size=3, stride=stride, padding=1), nn.GELU()]
            in_channels = channels
        layers.append(nn.Conv2d(in_channels, config.keypoints, kernel_size=1))
        self.convs = nn.Sequential(*layers)
        side = image_size
        for _ in range(min(self.strided_layers, len(config.cnn_channels))):
            side = (side + 1) // 2
        coordinates = torch.linspace(-1.0, 1.0, side)
        grid_y, grid_x = torch.meshgrid(coordinates, coordinates, indexing="ij")
        self.register_buffer("grid", torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1), persistent=False)
        self.log_temperature = nn.Parameter(torch.zeros(()))
        self.head = nn.Sequential(nn.Linear(2 * config.keypoints, config.feature_dim), nn.LayerNorm(config.feature_dim))

    def keypoints(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, K, 2): each map's expected (x, y), -1 at the left/top edge, +1 at the right/bottom."""
        maps = self.convs(images).flatten(2)
        return torch.softmax(maps / self.log_temperature.exp(), dim=-1) @ self.grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.keypoints(images).flatten(1))


class ViTBackbone(nn.Module):
    """Pre-norm ViT on non-overlapping patches; returns the normalised CLS token. (B, 3, S, S) -> (B, vit_dim)."""

    def __init__(self, config: EncoderConfig, image_size: int) -> None:
        super().__init__()
        if image_size % config.patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {config.patch_size}")
        n_patches = (image_size // config.patch_size) ** 2
        self.patchify = nn.Conv2d(3, config.vit_dim, kernel_size=config.patch_size, stride=config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.vit_dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, n_patches + 1, config.vit_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            config.vit_dim,
            config.vit_heads,
            dim_feedforward=4 * config.vit_dim,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, config.vit_depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.vit_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.patchify(images).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1) + self.pos_embedding
        return self.norm(self.blocks(tokens)[:, 0])


class Projector(nn.Module):
    """Linear -> BatchNorm1d -> GELU -> Linear. (B, F) -> (B, latent_dim)."""

    def __init__(self, in_dim: int, hidden_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.GELU(), nn.Linear(hidden_dim, latent_dim)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class Encoder(nn.Module):
    """Backbone then projector: images (B, 3, S, S) in [-1, 1] -> z (B, latent_dim)."""

    def __init__(self, config: EncoderConfig, image_size: int, latent_dim: int) -> None:
        super().__init__()
        self.config = config
        if config.kind == "cnn":
            self.backbone: nn.Module = CNNBackbone(config, image_size)
            feature_dim = config.feature_dim
        elif config.kind == "keypoints":
            self.backbone = KeypointBackbone(config, image_size)
            feature_dim = config.feature_dim
        else:
            self.backbone = ViTBackbone(config, image_size)
            feature_dim = config.vit_dim
        self.projector = Projector(feature_dim, config.projector_hidden_dim, latent_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(images))
