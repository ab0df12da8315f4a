"""The simulated robots: gymnasium API, determinism, goal options, rendering, TwoRoom collisions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import ami_sim
from ami_sim.tworoom import TWOROOM_V0, TwoRoomConfig, TwoRoomEnv, px

ENVS = ["tworoom", "pusht", "reacher"]


@pytest.fixture(scope="module", params=ENVS)
def env(request):
    env = ami_sim.make_env(request.param)
    yield env
    env.close()


@pytest.mark.parametrize("name", ENVS)
def test_env_checker_is_clean(name):
    env = ami_sim.make_env(name, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


def rollout(env, seed: int, steps: int = 30):
    observation, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    frames, states = [observation], [info["state"]]
    for _ in range(steps):
        observation, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        frames.append(observation)
        states.append(info["state"])
        if terminated or truncated:
            break
    return np.stack(frames), np.stack(states)


def test_same_seed_same_frames(env):
    frames_a, states_a = rollout(env, seed=7)
    frames_b, states_b = rollout(env, seed=7)
    frames_c, _ = rollout(env, seed=8)
    np.testing.assert_array_equal(frames_a, frames_b)
    np.testing.assert_array_equal(states_a, states_b)
    assert not np.array_equal(frames_a[0], frames_c[0])
    assert len(np.unique(frames_a.reshape(len(frames_a), -1), axis=0)) > 1, "the robot never moved in the image"


def test_observation_and_info_contract(env):
    observation, info = env.reset(seed=3)
    raw = env.unwrapped
    size = raw.config.image_size
    assert observation.shape == (size, size, 3) and observation.dtype == np.uint8
    assert info["state"].shape == (raw.state_dim,) and info["goal_state"].shape == (raw.state_dim,)
    assert info["goal_observation"].shape == observation.shape and info["goal_observation"].dtype == np.uint8
    np.testing.assert_array_equal(info["goal_observation"], raw.render_state(info["goal_state"]))
    np.testing.assert_array_equal(observation, raw.render_state(info["state"]))
    assert info["success"] == raw.is_success(info["state"], info["goal_state"])
    assert env.action_space.dtype == np.float32 and env.action_space.shape == (2,)


def test_reset_to_start_and_goal_states(env):
    _, first = env.reset(seed=11)
    _, second = env.reset(seed=12)
    observation, info = env.reset(seed=99, options={"start_state": first["state"], "goal_state": second["goal_state"]})
    np.testing.assert_allclose(info["state"], first["state"], atol=1e-5)
    np.testing.assert_allclose(info["goal_state"], second["goal_state"], atol=1e-5)
    np.testing.assert_array_equal(info["goal_observation"], second["goal_observation"])
    assert env.unwrapped.is_success(info["goal_state"], info["goal_state"])


def test_bad_start_state_is_rejected(env):
    with pytest.raises(ValueError, match="start_state"):
        env.reset(options={"start_state": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})


@pytest.mark.parametrize("size", [32, 96])
def test_image_size_is_configurable(size):
    env = ami_sim.make_env("tworoom", image_size=size)
    observation, _ = env.reset(seed=0)
    assert observation.shape == (size, size, 3)
    with pytest.raises(ValueError, match="image_size"):
        ami_sim.make_env("tworoom", image_size=5)


GEOMETRIES = {"published": TwoRoomConfig(), "v0": TWOROOM_V0}


def test_tworoom_default_is_the_published_geometry_in_pixels_of_224():
    c = ami_sim.make_env("tworoom").unwrapped.config
    in_px = {
        "border": 14,
        "wall_thickness": 10,
        "door_center": 49,
        "door_half_size": 14,
        "agent_radius": 7,
        "max_step": 5,
        "success_radius": 16,
    }
    assert {name: getattr(c, name) * 224 for name in in_px} == pytest.approx(in_px)
    assert c.wall_x * 224 == 112 and c.door_margin * 224 == pytest.approx(1.75)


def test_tworoom_renders_border_wall_and_door_where_the_published_env_has_them():
    background = TwoRoomEnv(image_size=224).background
    floor, wall = background[112, 60], background[0, 0]
    assert not np.array_equal(floor, wall)
    assert np.array_equal(background[49, 112], floor), "door centred at y = 49 px"
    for y in (30, 70, 150, 200):
        assert np.array_equal(background[y, 112], wall), f"wall at x = 112 px, y = {y} px"
    for x in (108, 116):
        assert np.array_equal(background[150, x], wall), "wall 10 px thick"
    for x, y in ((112, 7), (7, 112), (216, 112), (112, 216)):
        assert np.array_equal(background[y, x], wall), "14 px border"
    assert np.array_equal(background[16, 16], floor)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_tworoom_wall_blocks_and_door_lets_through(geometry):
    env = TwoRoomEnv(config=GEOMETRIES[geometry])
    c = env.config
    env.reset(seed=0, options={"start_state": [0.3, 0.75], "goal_state": [0.8, 0.5]})
    for _ in range(40):
        _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
    assert info["state"][0] == pytest.approx(c.wall_x - c.wall_thickness / 2 - c.agent_radius, abs=1e-4), (
        "stopped by the wall, touching it"
    )
    env.reset(seed=0, options={"start_state": [0.3, c.door_center], "goal_state": [0.8, 0.5]})
    for _ in range(40):
        _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
    assert info["state"][0] > c.wall_x + c.wall_thickness / 2 + c.agent_radius, "could not pass the door"


def test_tworoom_centre_crosses_the_wall_only_within_the_published_door_span():
    c = TwoRoomConfig()
    env = TwoRoomEnv(config=c)
    edge = c.door_center + px(14 + 1.75)
    for y, passes in ((edge - px(0.1), True), (edge + px(0.1), False), (c.door_center - px(15.6), True)):
        env.reset(seed=0, options={"start_state": [px(90), y], "goal_state": [0.8, 0.8]})
        for _ in range(10):
            _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
        assert (info["state"][0] > 0.5) == passes, f"y = {y * 224:.2f} px"


def test_tworoom_moves_action_times_5_px_per_step():
    env = TwoRoomEnv()
    start = np.array([px(60), px(150)])
    for action, moved_px in (((1.0, 0.0), (5, 0)), ((-0.5, 1.0), (-2.5, 5)), ((3.0, -2.0), (5, -5))):
        env.reset(seed=0, options={"start_state": start, "goal_state": [0.8, 0.8]})
        _, _, _, _, info = env.step(np.array(action, np.float32))
        np.testing.assert_allclose((info["state"] - start) * 224, moved_px, atol=1e-3)


def test_tworoom_success_within_16_px_at_any_step():
    env = TwoRoomEnv()
    goal = np.array([px(180), px(150)])
    assert env.is_success(goal + np.array([px(15.9), 0]), goal)
    assert not env.is_success(goal + np.array([px(16.1), 0]), goal)
    _, info = env.reset(seed=0, options={"start_state": goal - np.array([px(30), 0]), "goal_state": goal})
    assert not info["success"]
    _, _, terminated, _, info = env.step(np.array([1.0, 0.0], np.float32))
    _, _, terminated, _, info = env.step(np.array([1.0, 0.0], np.float32))
    assert not terminated
    _, _, terminated, _, info = env.step(np.array([1.0, 0.0], np.float32))
    assert terminated and info["success"], "15 px from the goal after three steps of 5 px"


def test_tworoom_v0_is_kept_under_its_gymnasium_id():
    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        env = gym.make("ami_sim/TwoRoom-v0")
    assert env.unwrapped.config == TWOROOM_V0
    assert ami_sim.make_env("tworoom").spec.id == "ami_sim/TwoRoom-v1"


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    geometry=st.sampled_from(sorted(GEOMETRIES)),
    seed=st.integers(0, 10_000),
    step_scale=st.floats(0.4, 8.0),
    actions=st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 1)), min_size=1, max_size=60),
)
def test_tworoom_never_enters_or_jumps_a_wall(geometry, seed, step_scale, actions):
    config = GEOMETRIES[geometry]
    max_step = config.max_step * step_scale
    env = TwoRoomEnv(config=config, max_step=max_step)
    _, info = env.reset(seed=seed)
    c = env.config
    passage_lo, passage_hi = c.door_passage
    for action in actions:
        before = info["state"].astype(np.float64)
        _, _, _, _, info = env.step(np.array(action, np.float32))
        after = info["state"].astype(np.float64)
        assert env.is_free(after), f"{before} + {action} -> {after} is inside a wall"
        unblocked = np.allclose(after - before, np.array(action) * max_step, atol=1e-5)
        if unblocked and (before[0] - c.wall_x) * (after[0] - c.wall_x) < 0:
            y = before[1] + (after[1] - before[1]) * (c.wall_x - before[0]) / (after[0] - before[0])
            assert passage_lo - 1e-4 <= y <= passage_hi + 1e-4, f"jumped the wall at y={y}"


def test_unknown_env_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown environment 'cartpole'"):
        ami_sim.make_env("cartpole")


def test_pusht_geometry_matches_gym_pusht():
    from ami_sim.pusht import T_COG, T_MASS, T_MOMENT, T_POLYGONS, to_world

    env = ami_sim.make_env("pusht")
    _, info = env.reset(seed=4)
    sim = env.unwrapped._sim
    pose = info["state"][2:5].astype(np.float64)
    ours = np.concatenate([to_world(pose, p) for p in T_POLYGONS])
    theirs = sim.get_keypoints(sim.block.shapes)
    np.testing.assert_allclose(np.sort(ours, axis=0), np.sort(theirs, axis=0), atol=1e-3)
    np.testing.assert_allclose(tuple(sim.block.center_of_gravity), T_COG)
    assert (sim.block.mass, sim.block.moment) == pytest.approx((T_MASS, T_MOMENT))
