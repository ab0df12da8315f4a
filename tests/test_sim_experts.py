"""Scripted experts reach goals 25 steps ahead on held-out trajectories (the published protocols of
ami_sim.evaluation: noisy-expert data for TwoRoom and PushT, random-policy data for Reacher) at least
95% of the time; random actions rarely do (TwoRoom: as often as in the published protocol); the
expert's noise model."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ami_sim
from ami_sim.evaluation import PROTOCOLS, evaluate, held_out_trajectories, protocol_for, wilson_interval
from ami_sim.policies import ExpertPolicy

EPISODES = {"tworoom": 60, "pusht": 40, "reacher": 40}


@pytest.mark.parametrize("name", list(EPISODES))
def test_expert_succeeds_at_least_95_percent(name):
    env = ami_sim.make_env(name)
    expert = ami_sim.make_expert(name, noise=0.0, seed=0, env=env)
    result = evaluate(name, expert, episodes=EPISODES[name], seed=0, policy_name="expert")
    assert result.episodes == EPISODES[name]
    assert result.success_rate >= 0.95, f"{name} expert: {result.successes}/{result.episodes}"
    assert result.mean_steps_to_success <= PROTOCOLS[name].step_budget


def test_tworoom_expert_reaches_long_horizon_goals():
    result = evaluate("tworoom", ami_sim.make_expert("tworoom", seed=0), episodes=20, seed=0, protocol_name="long")
    assert result.protocol.goal_offset_steps == 100 and result.protocol.step_budget == 150
    assert result.successes == 20


def test_tworoom_expert_crosses_to_the_other_room():
    """Through the door to any goal in the other room; 150 steps, since a goal just beside a door post
    means sliding along the post (36 steps at the median)."""
    env = ami_sim.make_env("tworoom", goal_in_other_room=True, max_episode_steps=150)
    expert = ami_sim.make_expert("tworoom", env=env)
    for seed in range(40):
        _, info = env.reset(seed=seed)
        for _ in range(150):
            _, _, terminated, _, info = env.step(expert.act(None, info))
            if terminated:
                break
        assert info["success"], f"seed {seed}: stuck at {info['state']} with the goal at {info['goal_state']}"


def test_tworoom_random_matches_the_published_random_rate():
    """LeWorldModel's random policy reaches about 26% of TwoRoom goals at 25 / 50 steps."""
    result = evaluate("tworoom", ami_sim.make_random("tworoom", seed=0), episodes=300, seed=0, policy_name="random")
    low, high = result.ci95
    assert low <= 0.26 <= high, f"random {result.successes}/300, 95% CI {low:.3f}-{high:.3f}"


@pytest.mark.parametrize("name, ceiling", [("pusht", 0.1), ("reacher", 0.3)])
def test_random_policy_is_much_worse(name, ceiling):
    result = evaluate(name, ami_sim.make_random(name, seed=0), episodes=30, seed=0, policy_name="random")
    assert result.success_rate <= ceiling, (
        f"{name}: random actions succeed {result.successes}/30, the goals are too easy"
    )


class ConstantController:
    def reset(self) -> None:
        pass

    def action(self, state, goal_state):
        return np.array([0.5, -0.5])


def test_expert_noise_then_repeats_the_previous_action():
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    info = {"state": np.zeros(2), "goal_state": np.zeros(2)}
    always = ExpertPolicy(ConstantController(), box, noise=2.0, seed=0, repeat_probability=1.0)
    always.reset(info)
    first = always.act(None, info)
    assert all(np.array_equal(always.act(None, info), first) for _ in range(20))
    sometimes = ExpertPolicy(ConstantController(), box, noise=0.1, seed=0, repeat_probability=0.05)
    sometimes.reset(info)
    actions = np.stack([sometimes.act(None, info) for _ in range(4000)])
    repeats = np.mean(np.all(actions[1:] == actions[:-1], axis=1))
    assert 0.04 < repeats < 0.06
    published = ExpertPolicy(ConstantController(), box, noise=2.0, seed=0, repeat_probability=0.05)
    actions = np.stack([published.act(None, info) for _ in range(4000)])
    assert np.all(np.abs(actions) <= 1.0) and 0.6 < actions[:, 0].std() < 0.9, "noise std 2.0, clipped to the box"
    sometimes.reset(info)
    assert sometimes._last_action is None, "no repeat across episodes"
    with pytest.raises(ValueError, match="repeat_probability"):
        ExpertPolicy(ConstantController(), box, repeat_probability=1.5)


def test_expert_pace_scales_long_actions_down_before_the_noise():
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    info = {"state": np.zeros(2), "goal_state": np.zeros(2)}
    paced = ExpertPolicy(ConstantController(), box, seed=0, max_action=0.25)
    np.testing.assert_allclose(paced.act(None, info), np.array([0.5, -0.5]) * 0.25 / np.sqrt(0.5), rtol=1e-6)
    unhurried = ExpertPolicy(ConstantController(), box, seed=0, max_action=1.0)
    np.testing.assert_allclose(unhurried.act(None, info), [0.5, -0.5])
    noisy = ExpertPolicy(ConstantController(), box, noise=0.1, seed=0, max_action=0.25)
    actions = np.stack([noisy.act(None, info) for _ in range(2000)])
    np.testing.assert_allclose(actions.mean(axis=0), [0.177, -0.177], atol=0.01)
    assert 0.09 < actions[:, 0].std() < 0.11, "the noise is added after the pace, at its full size"
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="max_action"):
            ExpertPolicy(ConstantController(), box, max_action=bad)


def test_pusht_pairs_come_from_episodes_as_long_as_the_published_sets():
    """stable-worldmodel's pusht_expert_train: 100 to 200 steps per episode, 149 on average; the
    expert at full pace (the `fast_expert` variant) takes about 65."""
    env = ami_sim.make_env("pusht")
    lengths = {}
    for name in ("lewm", "fast_expert"):
        trajectories = held_out_trajectories("pusht", protocol_for("pusht", name), env)
        lengths[name] = np.mean([len(next(trajectories)) - 1 for _ in range(12)])
    assert 120 < lengths["lewm"] < 180 and lengths["fast_expert"] < 90, lengths


def test_tworoom_protocol_uses_the_published_data_noise():
    protocol = protocol_for("tworoom")
    assert (protocol.expert_noise, protocol.expert_repeat_probability) == (2.0, 0.05)
    assert (protocol.goal_offset_steps, protocol.step_budget) == (25, 50)


def test_noisy_expert_is_deterministic_under_its_seed():
    runs = [
        evaluate("tworoom", ami_sim.make_expert("tworoom", noise=0.5, seed=3), episodes=5, seed=1).to_dict(
            with_trajectories=True
        )
        for _ in range(2)
    ]
    for run in runs:
        run.pop("mean_plan_ms")
        for record in run["records"]:
            record.pop("plan_ms")
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    "successes, trials, low, high",
    [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634), (95, 100, 0.8882, 0.9785)],
)
def test_wilson_interval_matches_known_values(successes, trials, low, high):
    got = wilson_interval(successes, trials)
    assert got == pytest.approx((low, high), abs=1e-3)


def test_pusht_expert_brings_the_agent_to_the_goal_too():
    """The published success counts the agent's position: with the block in place, the expert goes
    round the block to the goal's agent position."""
    env = ami_sim.make_env("pusht")
    expert = ami_sim.make_expert("pusht", env=env)
    goal = np.array([400.0, 120.0, 256.0, 256.0, 0.3, 0.0, 0.0])
    start = goal + np.array([-300.0, 300.0, 0, 0, 0, 0, 0])
    _, info = env.reset(seed=0, options={"start_state": start, "goal_state": goal})
    expert.reset(info)
    for _ in range(50):
        _, _, terminated, _, info = env.step(expert.act(None, info))
        if terminated:
            break
    assert info["success"], f"stopped at {info['state']} for the goal {goal}"
