"""Scripted experts reach goals 25 (Reacher: 15) steps ahead on held-out expert trajectories (the
LeWorldModel protocol of ami_sim.evaluation) at least 95% of the time; random actions rarely do."""

from __future__ import annotations

import pytest

import ami_sim
from ami_sim.evaluation import PROTOCOLS, evaluate, wilson_interval

EPISODES = {"tworoom": 60, "pusht": 40, "reacher": 40}


@pytest.mark.parametrize("name", list(EPISODES))
def test_expert_succeeds_at_least_95_percent(name):
    env = ami_sim.make_env(name)
    expert = ami_sim.make_expert(name, noise=0.0, seed=0, env=env)
    result = evaluate(name, expert, episodes=EPISODES[name], seed=0, policy_name="expert")
    assert result.episodes == EPISODES[name]
    assert result.success_rate >= 0.95, f"{name} expert: {result.successes}/{result.episodes}"
    assert result.mean_steps_to_success <= PROTOCOLS[name].step_budget


@pytest.mark.parametrize("name, ceiling", [("tworoom", 0.2), ("pusht", 0.2), ("reacher", 0.6)])
def test_random_policy_is_much_worse(name, ceiling):
    result = evaluate(name, ami_sim.make_random(name, seed=0), episodes=30, seed=0, policy_name="random")
    assert result.success_rate <= ceiling, (
        f"{name}: random actions succeed {result.successes}/30, the goals are too easy"
    )


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
