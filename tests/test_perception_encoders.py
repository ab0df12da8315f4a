"""Perception: image preprocessing and the CNN / keypoint / ViT-tiny encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ami_robot.perception import Encoder, EncoderConfig, resize_uint8, to_model_input


def test_uint8_images_become_scaled_channels_first() -> None:
    pixels = np.zeros((2, 8, 8, 3), np.uint8)
    pixels[0, ..., 0] = 255
    x = to_model_input(pixels, image_size=8)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32
    assert torch.all(x[0, 0] == 1.0) and torch.all(x[0, 1:] == -1.0) and torch.all(x[1] == -1.0)


def test_images_are_resized_and_float_input_passes_through() -> None:
    x = to_model_input(torch.randint(0, 256, (3, 64, 48, 3), dtype=torch.uint8), image_size=32)
    assert x.shape == (3, 3, 32, 32)
    f = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(to_model_input(f, 16), f)
    assert resize_uint8(np.zeros((2, 40, 40, 3), np.uint8), 20).shape == (2, 20, 20, 3)


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 8, 8), np.uint8), np.zeros((2, 8, 8, 4), np.uint8), torch.zeros(2, 8, 8, 3, dtype=torch.int32)]
)
def test_bad_images_raise(bad) -> None:
    with pytest.raises(ValueError):
        to_model_input(bad, 8)


@pytest.mark.parametrize(
    "config",
    [
        EncoderConfig(cnn_channels=(8, 16), feature_dim=32, projector_hidden_dim=32),
        EncoderConfig(kind="keypoints", cnn_channels=(8, 16, 16), keypoints=6, feature_dim=32, projector_hidden_dim=32),
        EncoderConfig(kind="vit", patch_size=8, vit_dim=32, vit_depth=2, vit_heads=2, projector_hidden_dim=32),
    ],
    ids=["cnn", "keypoints", "vit"],
)
def test_encoder_shapes_gradients_and_unnormalised_output(config: EncoderConfig) -> None:
    torch.manual_seed(0)
    encoder = Encoder(config, image_size=32, latent_dim=6)
    images = torch.randn(4, 3, 32, 32, requires_grad=True)
    z = encoder(images)
    assert z.shape == (4, 6)
    last = [m for m in encoder.modules() if not list(m.children())][-1]
    assert isinstance(last, nn.Linear), "the projector must end in a Linear, not a normalisation"
    assert any(isinstance(m, nn.BatchNorm1d) for m in encoder.projector.modules())
    (z * torch.randn_like(z)).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is not None for p in encoder.parameters())
    # scaling the output is not undone by a trailing norm: SIGReg can set its distribution
    with torch.no_grad():
        encoder.projector.net[-1].weight.mul_(3.0)
        encoder.projector.net[-1].bias.mul_(3.0)
    torch.testing.assert_close(encoder(images.detach()), 3.0 * z.detach(), rtol=1e-4, atol=1e-5)


def test_vit_rejects_image_size_not_multiple_of_patch() -> None:
    with pytest.raises(ValueError, match="patch_size"):
        Encoder(
            EncoderConfig(kind="vit", patch_size=8, vit_dim=16, vit_depth=1, vit_heads=2), image_size=30, latent_dim=4
        )


def test_keypoints_follow_a_bright_spot() -> None:
    """The spatial softmax reads out where a feature is: a spot moved right moves the keypoint right."""
    torch.manual_seed(0)
    backbone = Encoder(
        EncoderConfig(kind="keypoints", cnn_channels=(4, 4), keypoints=1, feature_dim=8), image_size=32, latent_dim=2
    ).backbone
    with torch.no_grad():
        for conv in [m for m in backbone.convs if isinstance(m, nn.Conv2d)]:
            conv.weight.zero_()
            conv.bias.zero_()
            centre = conv.kernel_size[0] // 2
            for channel in range(conv.out_channels):
                conv.weight[channel, :, centre, centre] = 1.0
        backbone.log_temperature.fill_(-3.0)
    images = torch.full((2, 3, 32, 32), -1.0)
    images[0, :, 14:18, 4:8] = 1.0
    images[1, :, 14:18, 24:28] = 1.0
    keypoints = backbone.keypoints(images)
    assert keypoints.shape == (2, 1, 2)
    assert keypoints[0, 0, 0] < -0.5 and keypoints[1, 0, 0] > 0.5
    torch.testing.assert_close(keypoints[0, 0, 1], keypoints[1, 0, 1], atol=0.1, rtol=0)


def test_unknown_encoder_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="keypoints"):
        EncoderConfig(kind="resnet")  # type: ignore[arg-type]
