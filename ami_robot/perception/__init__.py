"""Perception: camera image -> latent state z (encoders trained jointly with the world model)."""

from ami_robot.perception.encoders import CNNBackbone, Encoder, EncoderConfig, Projector, ViTBackbone
from ami_robot.perception.preprocess import resize_uint8, to_model_input, validate_image

__all__ = [
    "CNNBackbone",
    "Encoder",
    "EncoderConfig",
    "Projector",
    "ViTBackbone",
    "resize_uint8",
    "to_model_input",
    "validate_image",
]
