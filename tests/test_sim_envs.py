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
    _observation, info = env.reset(seed=99, options={"start_state": first["state"], "goal_state": second["goal_state"]})
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


def test_pusht_success_counts_agent_and_block_positions_and_the_block_angle():
    """stable-worldmodel's test: |(agent x, y, block x, y) - goal's| < 20 px and block angle within pi/9."""
    env = ami_sim.make_env("pusht").unwrapped
    goal = np.array([200.0, 300.0, 256.0, 256.0, 0.5, 0.0, 0.0])

    def moved(agent=(0.0, 0.0), block=(0.0, 0.0), angle=0.0):
        return goal + np.array([*agent, *block, angle, 30.0, 30.0])

    assert env.is_success(moved(agent=(12.0, 0.0), block=(0.0, 12.0)), goal), "16.97 px apart, velocity ignored"
    assert not env.is_success(moved(agent=(15.0, 0.0), block=(0.0, 15.0)), goal), "21.2 px apart in 4-D"
    assert not env.is_success(moved(agent=(21.0, 0.0)), goal), "the block is in place but the agent is not"
    assert env.is_success(moved(angle=np.pi / 9 - 0.01), goal)
    assert not env.is_success(moved(angle=np.pi / 9 + 0.01), goal)
    assert env.is_success(moved(angle=2 * np.pi - 0.1), goal), "angles compared modulo 2 pi"


def test_pusht_moves_the_pd_target_100_px_per_unit_action():
    """Published 100 px per unit action; the former version's 40 px: in free space the agent's first
    step covers 2.5 times as much (the PD controller is linear)."""
    from ami_sim.pusht import PUSHT_V0, PushTEnv

    start = np.array([100.0, 100.0, 350.0, 350.0, 0.0, 0.0, 0.0])
    moves = []
    for config in (None, PUSHT_V0):
        env = PushTEnv(config=config)
        _, info = env.reset(seed=0, options={"start_state": start})
        _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
        moves.append(info["state"][0] - start[0])
    assert moves[0] > 0 and moves[0] / moves[1] == pytest.approx(2.5, rel=1e-3)


def test_reacher_is_dm_control_reacher():
    """dm-control's reacher.xml: links of 0.12 m, wrist limited to 160 deg, gear 0.05; two physics steps
    of 0.02 s per action, as stable-worldmodel's wrapper (action_repeat 2)."""
    from ami_sim.reacher import DMC_WRIST_LIMIT, fingertip

    env = ami_sim.make_env("reacher").unwrapped
    model = env._model
    assert model.opt.timestep == pytest.approx(0.02)
    np.testing.assert_allclose(model.actuator_gear[:, 0], [0.05, 0.05])
    np.testing.assert_allclose(model.jnt_range[1], [-DMC_WRIST_LIMIT, DMC_WRIST_LIMIT], atol=1e-6)
    state = np.array([0.7, -1.2, 0.0, 0.0])
    env.reset(seed=0, options={"start_state": state})
    np.testing.assert_allclose(env._data.geom("finger").xpos[:2], fingertip(state), atol=1e-6)
    env.step(np.zeros(2, np.float32))
    assert env._data.time == pytest.approx(0.04)


def test_reacher_success_when_every_joint_is_within_0_05_rad():
    env = ami_sim.make_env("reacher").unwrapped
    goal = np.array([1.0, 0.5, 0.0, 0.0])

    def moved(shoulder=0.0, wrist=0.0, rates=0.0):
        return goal + np.array([shoulder, wrist, rates, rates])

    assert env.is_success(moved(0.045, -0.045, rates=3.0), goal), "rates ignored"
    assert not env.is_success(moved(shoulder=0.055), goal)
    assert not env.is_success(moved(wrist=0.055), goal)
    assert env.is_success(moved(shoulder=2 * np.pi - 0.01), goal), "the shoulder turns freely"


@pytest.mark.parametrize(
    "gym_id, current",
    [("ami_sim/TwoRoom-v0", "tworoom"), ("ami_sim/PushT-v0", "pusht"), ("ami_sim/Reacher-v0", "reacher")],
)
def test_former_versions_are_kept_under_their_gymnasium_ids(gym_id, current):
    import gymnasium as gym

    from ami_sim.pusht import PUSHT_V0
    from ami_sim.reacher import ReacherV0Env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        env = gym.make(gym_id)
    assert ami_sim.make_env(current).spec.id.endswith("-v1")
    raw = env.unwrapped
    if current == "pusht":
        assert raw.config == PUSHT_V0
        goal = np.array([256.0, 400.0, 256.0, 256.0, 0.5, 0.0, 0.0])
        agent_away = goal + np.array([100.0, 0, 0, 0, 0, 0, 0])
        assert raw.is_success(agent_away, goal), "v0's success looks at the block only"
    if current == "reacher":
        assert isinstance(raw, ReacherV0Env)
        _, info = env.reset(seed=0)
        assert info["state"].shape == (4,)
    env.close()
