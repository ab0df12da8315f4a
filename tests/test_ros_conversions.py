"""Message <-> numpy conversions: images (encodings, malformed input), twists, plans, settings, latents."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ami_robot.errors import ImageError
from ami_robot.ros.conversions import (
    ConversionError,
    action_to_twist,
    array_to_msg,
    event_to_settings,
    image_to_numpy,
    latent_to_msg,
    msg_to_array,
    msg_to_latent,
    numpy_to_image,
    plan_to_path,
    settings_to_event,
    twist_to_action,
)

STAMP = Time(sec=12, nanosec=5)


def rgb(height: int = 6, width: int = 5) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_rgb8_round_trip_and_bgr8_is_reordered() -> None:
    pixels = rgb()
    msg = numpy_to_image(pixels, STAMP)
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 6, 5, 15)
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)
    bgr = Image(height=6, width=5, encoding="bgr8", step=15, data=pixels[:, :, ::-1].tobytes())
    np.testing.assert_array_equal(image_to_numpy(bgr), pixels)


def test_padded_rows_and_alpha_are_dropped() -> None:
    pixels = rgb()
    rgba = np.concatenate([pixels, np.full((6, 5, 1), 255, np.uint8)], axis=2)
    padded = np.concatenate([rgba.reshape(6, 20), np.zeros((6, 4), np.uint8)], axis=1)
    msg = Image(height=6, width=5, encoding="rgba8", step=24, data=padded.tobytes())
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)


@pytest.mark.parametrize(
    ("msg", "message"),
    [
        (Image(height=2, width=2, encoding="mono8", step=2, data=bytes(4)), "not supported"),
        (Image(height=2, width=2, encoding="32FC1", step=8, data=bytes(16)), "not supported"),
        (Image(height=0, width=0, encoding="rgb8", step=0, data=b""), "empty"),
        (Image(height=2, width=2, encoding="rgb8", step=5, data=bytes(10)), "step 5"),
        (Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(11)), "11 bytes"),
    ],
)
def test_malformed_images_raise_a_clear_error(msg: Image, message: str) -> None:
    with pytest.raises(ConversionError, match=message):
        image_to_numpy(msg)
    assert issubclass(ConversionError, ImageError)


def test_twist_carries_up_to_three_action_values() -> None:
    msg = action_to_twist(np.array([0.5, -0.25]), STAMP, "base_link")
    assert (msg.twist.linear.x, msg.twist.linear.y, msg.twist.angular.z) == (0.5, -0.25, 0.0)
    assert msg.header.frame_id == "base_link"
    np.testing.assert_allclose(twist_to_action(msg, 2), [0.5, -0.25])
    with pytest.raises(ConversionError, match="at most 3"):
        action_to_twist(np.zeros(4), STAMP)


def test_arrays_keep_their_shape_and_reject_non_finite() -> None:
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(msg_to_array(array_to_msg(values)), values)
    with pytest.raises(ConversionError, match="expected 4 values"):
        msg_to_array(array_to_msg(values), size=4)
    with pytest.raises(ConversionError, match="non-finite"):
        msg_to_array(array_to_msg(np.array([np.nan])))


def test_plan_path_integrates_velocities() -> None:
    path = plan_to_path(np.array([[1.0, 0.0], [1.0, 2.0]]), dt_s=0.5, stamp=STAMP, frame_id="base_link")
    xy = [(p.pose.position.x, p.pose.position.y) for p in path.poses]
    assert xy == [(0.0, 0.0), (0.5, 0.0), (1.0, 1.0)]


def test_settings_snapshot_round_trip() -> None:
    flat = {
        "planner.horizon": 7,
        "cost.goal_weight": 0.5,
        "method": "mppi",
        "planner.warm_start": False,
        "safety.action_low": [-1.0, -2.0],
    }
    assert event_to_settings(settings_to_event(flat, "/configurator", STAMP)) == flat


def test_latent_message_round_trip_and_checks() -> None:
    z = np.linspace(-1, 1, 8, dtype=np.float32)
    msg = latent_to_msg(z, Header(stamp=STAMP, frame_id="camera"))
    assert (msg.encoding, msg.height, msg.width) == ("32FC1", 1, 8) and msg.header.stamp == STAMP
    np.testing.assert_array_equal(msg_to_latent(msg, 8), z)
    with pytest.raises(ConversionError, match="1 x 4"):
        msg_to_latent(msg, 4)
    with pytest.raises(ConversionError, match="non-finite"):
        msg_to_latent(latent_to_msg(np.full(8, np.nan), Header()), 8)
