"""Conversions between ROS 2 messages and numpy arrays; malformed messages raise `ConversionError`.

Images: `rgb8` and `bgr8` are accepted (bgr8 is reordered to RGB); `rgba8`/`bgra8` lose their
alpha channel. Any other encoding, `mono8` included, is rejected: the model sees colour
images and a grey frame would be out of its training distribution. Images of any size are
accepted here; the encoder resizes them to the model's `image_size`.

Twist commands: action[0] -> linear.x, action[1] -> linear.y, action[2] -> angular.z (as many
as the action has, at most 3). For TwoRoom this is the point robot's velocity (x, y).

Latents travel as sensor_msgs/Image with encoding 32FC1, height 1 and width D, carrying the header
(stamp, frame) of the camera image they were encoded from, so the planner knows the age of what it
acts on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import Parameter, ParameterEvent, ParameterType, ParameterValue
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, Header, MultiArrayDimension

from ami_robot.errors import ImageError

CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}
TWIST_FIELDS = (("linear", "x"), ("linear", "y"), ("angular", "z"))


class ConversionError(ImageError):
    """A message that cannot be turned into the array the brain needs; says why."""


def image_to_numpy(msg: Image) -> np.ndarray:
    """sensor_msgs/Image -> uint8 (H, W, 3) RGB. Raises ConversionError for a malformed image."""
    if msg.encoding not in CHANNELS:
        raise ConversionError(f"image encoding {msg.encoding!r} not supported; use one of {sorted(CHANNELS)}")
    channels = CHANNELS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ConversionError(f"image is empty ({width}x{height})")
    if step < width * channels:
        raise ConversionError(f"image step {step} is smaller than width * channels = {width * channels}")
    if len(msg.data) != step * height:
        raise ConversionError(f"image data has {len(msg.data)} bytes, expected step * height = {step * height}")
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, step)
    pixels = rows[:, : width * channels].reshape(height, width, channels)[:, :, :3]
    if msg.encoding.startswith("bgr"):
        pixels = pixels[:, :, ::-1]
    return np.ascontiguousarray(pixels)


def numpy_to_image(pixels: np.ndarray, stamp: Time, frame_id: str = "camera") -> Image:
    """uint8 (H, W, 3) RGB -> sensor_msgs/Image (rgb8)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ConversionError(f"expected an RGB image (H, W, 3), got shape {pixels.shape}")
    msg = Image()
    msg.header = Header(stamp=stamp, frame_id=frame_id)
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = pixels.tobytes()
    return msg


def latent_to_msg(z: np.ndarray, header: Header) -> Image:
    """Latent (D,) -> sensor_msgs/Image 32FC1, 1 x D, with the camera image's header."""
    z = np.ascontiguousarray(z, dtype="<f4").reshape(-1)
    return Image(
        header=header, height=1, width=z.size, encoding="32FC1", is_bigendian=0, step=4 * z.size, data=z.tobytes()
    )


def msg_to_latent(msg: Image, latent_dim: int) -> np.ndarray:
    """Inverse of `latent_to_msg`: float32 (latent_dim,); checks encoding, size and finiteness."""
    if msg.encoding != "32FC1" or msg.height != 1 or msg.width != latent_dim or len(msg.data) != 4 * latent_dim:
        raise ConversionError(
            f"expected a 1 x {latent_dim} 32FC1 latent, got {msg.height} x {msg.width} {msg.encoding}"
        )
    z = np.frombuffer(msg.data, dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(z)):
        raise ConversionError("latent holds a non-finite value")
    return z


def stamp_s(header: Header) -> float:
    """A header's stamp in seconds."""
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def array_to_msg(values: np.ndarray, label: str = "") -> Float32MultiArray:
    """A vector (N,) or matrix (R, C) -> std_msgs/Float32MultiArray with its layout."""
    values = np.asarray(values, dtype=np.float32)
    msg = Float32MultiArray()
    stride = values.size
    for i, size in enumerate(values.shape):
        msg.layout.dim.append(MultiArrayDimension(label=f"{label}{i}", size=int(size), stride=int(stride)))
        stride //= max(int(size), 1)
    msg.data = values.reshape(-1).tolist()
    return msg


def msg_to_array(msg: Float32MultiArray, size: int | None = None) -> np.ndarray:
    """std_msgs/Float32MultiArray -> float32 array shaped by its layout; checks `size` if given."""
    values = np.asarray(msg.data, dtype=np.float32)
    if size is not None and values.size != size:
        raise ConversionError(f"expected {size} values, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise ConversionError("array holds a non-finite value")
    shape = [d.size for d in msg.layout.dim]
    if shape and int(np.prod(shape)) == values.size:
        values = values.reshape(shape)
    return values


def action_to_twist(action: np.ndarray, stamp: Time, frame_id: str = "base_link") -> TwistStamped:
    """Action (A,), A <= 3 -> TwistStamped: a0 linear.x, a1 linear.y, a2 angular.z."""
    action = np.asarray(action, dtype=np.float64).reshape(-1)
    if action.size > len(TWIST_FIELDS):
        raise ConversionError(f"a twist carries at most {len(TWIST_FIELDS)} action values, got {action.size}")
    msg = TwistStamped()
    msg.header = Header(stamp=stamp, frame_id=frame_id)
    for value, (part, axis) in zip(action, TWIST_FIELDS):
        setattr(getattr(msg.twist, part), axis, float(value))
    return msg


def twist_to_action(msg: TwistStamped, action_dim: int) -> np.ndarray:
    """Inverse of `action_to_twist`: (action_dim,) float32."""
    if action_dim > len(TWIST_FIELDS):
        raise ConversionError(f"a twist carries at most {len(TWIST_FIELDS)} action values, asked for {action_dim}")
    return np.array([getattr(getattr(msg.twist, p), a) for p, a in TWIST_FIELDS[:action_dim]], dtype=np.float32)


def plan_to_path(raw_plan: np.ndarray, dt_s: float, stamp: Time, frame_id: str = "base_link") -> Path:
    """A planned velocity sequence (T, A) integrated from the robot's current position (x, y) into a
    nav_msgs/Path in `frame_id` (action[0] is x velocity, action[1] y velocity)."""
    raw_plan = np.asarray(raw_plan, dtype=np.float64)
    xy = np.zeros((raw_plan.shape[0] + 1, 2))
    dims = min(2, raw_plan.shape[1])
    xy[1:, :dims] = np.cumsum(raw_plan[:, :dims] * dt_s, axis=0)
    msg = Path()
    msg.header = Header(stamp=stamp, frame_id=frame_id)
    for x, y in xy:
        pose = PoseStamped()
        pose.header = msg.header
        pose.pose.position.x, pose.pose.position.y = float(x), float(y)
        pose.pose.orientation.w = 1.0
        msg.poses.append(pose)
    return msg


def _parameter_value(value: Any) -> ParameterValue:
    if isinstance(value, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    if isinstance(value, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    if isinstance(value, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    if isinstance(value, str):
        return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    if isinstance(value, Sequence) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=[float(v) for v in value])
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=list(value))
    raise ConversionError(f"cannot send setting value {value!r} as a ROS parameter")


def _plain_value(value: ParameterValue) -> Any:
    return {
        ParameterType.PARAMETER_BOOL: lambda: value.bool_value,
        ParameterType.PARAMETER_INTEGER: lambda: value.integer_value,
        ParameterType.PARAMETER_DOUBLE: lambda: value.double_value,
        ParameterType.PARAMETER_STRING: lambda: value.string_value,
        ParameterType.PARAMETER_DOUBLE_ARRAY: lambda: list(value.double_array_value),
        ParameterType.PARAMETER_STRING_ARRAY: lambda: list(value.string_array_value),
        ParameterType.PARAMETER_INTEGER_ARRAY: lambda: list(value.integer_array_value),
    }.get(value.type, lambda: None)()


def settings_to_event(flat: dict[str, Any], node_name: str, stamp: Time) -> ParameterEvent:
    """A snapshot of dotted settings as rcl_interfaces/ParameterEvent (all in `new_parameters`)."""
    return ParameterEvent(
        stamp=stamp,
        node=node_name,
        new_parameters=[Parameter(name=k, value=_parameter_value(v)) for k, v in sorted(flat.items())],
    )


def event_to_settings(msg: ParameterEvent) -> dict[str, Any]:
    """Inverse of `settings_to_event`: {"dotted.name": plain value}."""
    return {p.name: _plain_value(p.value) for p in (*msg.new_parameters, *msg.changed_parameters)}
