import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ami_robot import _core
from ami_robot.cost import ActionLimits


def _core_bounds(limits: ActionLimits):
    b = _core.ActionBounds()
    b.low, b.high = limits.low.tolist(), limits.high.tolist()
    b.max_rate = [] if limits.max_rate is None else limits.max_rate.tolist()
    return b


def test_clip_without_rate_limit():
    limits = ActionLimits.create(2, (-1.0, 0.0), (1.0, 0.5))
    a = np.array([[[2.0, -1.0], [-3.0, 0.25]]], np.float32)
    np.testing.assert_array_equal(limits.project(a), [[[1.0, 0.0], [-1.0, 0.25]]])


def test_rate_limit_starts_from_previous_action():
    limits = ActionLimits.create(1, -1.0, 1.0, max_rate=0.25)
    a = np.array([[[1.0], [1.0], [-1.0]]], np.float32)
    np.testing.assert_allclose(limits.project(a, np.array([0.0], np.float32)), [[[0.25], [0.5], [0.25]]])
    np.testing.assert_allclose(limits.project(a), [[[1.0], [1.0], [0.75]]])
    # A previous action outside the bounds is clipped into them first.
    np.testing.assert_allclose(limits.project(a, np.array([5.0], np.float32))[0, 0], [1.0])


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 6),
    st.integers(1, 3),
    st.floats(0.0, 1.0),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_projection_holds_and_numpy_torch_cpp_agree(action_dim, horizon, batch, rate, with_prev, seed):
    rng = np.random.default_rng(seed)
    low = rng.uniform(-2, 0, action_dim).astype(np.float32)
    high = low + rng.uniform(0, 2, action_dim).astype(np.float32)
    limits = ActionLimits.create(action_dim, low, high, max_rate=rate)
    a = (3 * rng.standard_normal((batch, horizon, action_dim))).astype(np.float32)
    prev = rng.uniform(-3, 3, action_dim).astype(np.float32) if with_prev else None
    out = limits.project(a, prev)
    assert (out >= low).all() and (out <= high).all()
    steps = np.diff(out, axis=1)
    assert (np.abs(steps) <= rate + 1e-6).all()
    if prev is not None:
        assert (np.abs(out[:, 0] - np.clip(prev, low, high)) <= rate + 1e-6).all()
    out_torch = limits.project(torch.from_numpy(a), None if prev is None else torch.from_numpy(prev))
    np.testing.assert_array_equal(out_torch.numpy(), out)
    np.testing.assert_array_equal(_core.project_actions(a, _core_bounds(limits), prev), out)


@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3)),
        elements=st.floats(-10, 10, width=32),
    )
)
@settings(max_examples=30, deadline=None)
def test_projection_is_idempotent(a):
    limits = ActionLimits.create(a.shape[-1], -1.0, 1.0, max_rate=0.3)
    once = limits.project(a, np.zeros(a.shape[-1], np.float32))
    np.testing.assert_array_equal(limits.project(once, np.zeros(a.shape[-1], np.float32)), once)


def test_projection_rejects_wrong_action_dim():
    with pytest.raises(ValueError, match="last dimension must be 2"):
        ActionLimits.create(2, -1.0, 1.0).project(np.zeros((1, 3, 3), np.float32))


def _bounds(low, high, max_rate):
    b = _core.ActionBounds()
    b.low, b.high, b.max_rate = low, high, max_rate
    return b


@pytest.mark.parametrize(
    "low, high, max_rate, match",
    [
        ([-1.0, -1.0], [1.0, 1.0], [0.1], r"bounds\.max_rate: expected 0 or 2 values .*got 1"),
        ([-1.0, -1.0], [1.0, 1.0], [0.1, 0.1, 0.1], r"bounds\.max_rate: expected 0 or 2 values .*got 3"),
        ([1.0, -1.0], [-1.0, 1.0], [], "low > high at index 0"),
        ([-1.0, float("nan")], [1.0, 1.0], [], "NaN at index 1"),
        ([-1.0, -1.0], [1.0, 1.0], [0.1, float("nan")], r"max_rate must be finite and >= 0 at index 1"),
        ([-1.0, -1.0], [1.0, 1.0], [float("inf"), 0.1], r"max_rate must be finite and >= 0 at index 0"),
        ([-1.0, -1.0], [1.0, 1.0], [0.1, -0.1], r"max_rate must be finite and >= 0 at index 1"),
    ],
)
def test_core_projection_rejects_bad_bounds(low, high, max_rate, match):
    with pytest.raises(ValueError, match=match):
        _core.project_actions(np.zeros((1, 3, 2), np.float32), _bounds(low, high, max_rate))
