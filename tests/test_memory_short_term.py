"""Short-term memory: ring buffers in order, history padding, and the surprise signal."""

from __future__ import annotations

import numpy as np
import pytest

from ami_robot.memory import ShortTermMemory, surprise


def test_surprise_is_mean_squared_error_per_dimension() -> None:
    assert surprise(np.zeros(4), np.zeros(4)) == 0.0
    assert surprise(np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(4)) == pytest.approx(0.25)
    assert surprise(np.full(8, 2.0), np.zeros(8)) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="latents must both be"):
        surprise(np.zeros(3), np.zeros(4))


def test_observe_returns_surprise_only_for_a_pending_prediction() -> None:
    memory = ShortTermMemory(latent_dim=2, action_dim=1, capacity=4)
    assert memory.observe(np.array([0.0, 0.0])) is None
    memory.acted(np.array([0.5]), z_predicted=np.array([1.0, 1.0]))
    assert memory.observe(np.array([1.0, 3.0])) == pytest.approx(2.0)
    assert memory.observe(np.array([1.0, 3.0])) is None, "a prediction is compared once"
    memory.acted(np.array([0.1]))
    assert memory.observe(np.zeros(2)) is None, "no prediction, no surprise"
    np.testing.assert_allclose(memory.recent_surprises(), [2.0])


def test_ring_buffer_keeps_the_last_entries_oldest_first() -> None:
    memory = ShortTermMemory(latent_dim=1, action_dim=1, capacity=3)
    for t in range(5):
        memory.observe(np.array([float(t)]))
        memory.acted(np.array([10.0 + t]))
    assert len(memory) == 3
    np.testing.assert_array_equal(memory.latent_history(3)[:, 0], [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(memory.last_actions(2)[:, 0], [13.0, 14.0])
    np.testing.assert_array_equal(memory.latest_latent(), [4.0])


def test_history_repeats_the_oldest_latent_until_full() -> None:
    memory = ShortTermMemory(latent_dim=2, action_dim=1, capacity=8)
    with pytest.raises(ValueError, match="no latent"):
        memory.latent_history(3)
    memory.observe(np.array([1.0, 1.0]))
    memory.observe(np.array([2.0, 2.0]))
    np.testing.assert_array_equal(memory.latent_history(3)[:, 0], [1.0, 1.0, 2.0])


def test_reset_forgets_everything_and_shapes_are_checked() -> None:
    memory = ShortTermMemory(latent_dim=2, action_dim=2, capacity=2)
    memory.observe(np.zeros(2))
    memory.acted(np.zeros(2), np.ones(2))
    memory.reset()
    assert len(memory) == 0 and memory.latest_latent() is None and memory.last_surprise is None
    assert memory.observe(np.zeros(2)) is None
    with pytest.raises(ValueError, match="latent must have 2 values"):
        memory.observe(np.zeros(3))
    with pytest.raises(ValueError, match="action must have 2 values"):
        memory.acted(np.zeros(1))
    with pytest.raises(ValueError, match="capacity"):
        ShortTermMemory(2, 2, capacity=0)


def test_a_model_step_stores_the_latent_then_the_block_with_its_prediction() -> None:
    memory = ShortTermMemory(latent_dim=2, action_dim=1)
    seen: list[np.ndarray] = []

    def predict_next(history: np.ndarray) -> np.ndarray:
        seen.append(history)
        return history[-1] + 1.0

    assert memory.begin_model_step(np.zeros(2), np.array([0.5]), predict_next, history=3) is None
    np.testing.assert_array_equal(seen[0], np.zeros((3, 2)))
    np.testing.assert_array_equal(memory.last_actions(1), [[0.5]])
    surprise = memory.begin_model_step(np.array([1.0, 3.0]), np.array([-0.5]), predict_next, history=2)
    assert surprise == pytest.approx((0.0**2 + 2.0**2) / 2)
    np.testing.assert_array_equal(seen[1], [[0.0, 0.0], [1.0, 3.0]])
