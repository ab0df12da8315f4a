import pytest
import torch

from ami_robot.cost import (
    ActionLimits,
    ActionMagnitude,
    ActionSmoothness,
    Cost,
    CostConfig,
    CostInputs,
    GoalDistance,
    LatentBounds,
)


def _inputs(prev=True):
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(4, 3, 5, generator=g)
    actions = torch.randn(4, 3, 2, generator=g)
    goal = torch.randn(5, generator=g)
    return CostInputs(latents, actions, goal, torch.randn(2, generator=g) if prev else None)


def test_goal_distance_terminal_and_running():
    x = _inputs()
    d = ((x.latents - x.goal) ** 2).sum(-1)
    torch.testing.assert_close(GoalDistance(2.0)(x), 2.0 * d[:, -1])
    torch.testing.assert_close(GoalDistance(0.5, every_step=True)(x), 0.5 * d.sum(1))


def test_action_terms():
    x = _inputs()
    torch.testing.assert_close(ActionMagnitude(3.0)(x), 3.0 * (x.actions**2).sum((1, 2)))
    seq = torch.cat([x.previous_action.expand(4, 1, 2), x.actions], 1)
    expected = sum(((seq[:, t + 1] - seq[:, t]) ** 2).sum(-1) for t in range(3))
    torch.testing.assert_close(ActionSmoothness(1.5)(x), 1.5 * expected)
    no_prev = _inputs(prev=False)
    expected = sum(((no_prev.actions[:, t + 1] - no_prev.actions[:, t]) ** 2).sum(-1) for t in range(2))
    torch.testing.assert_close(ActionSmoothness(1.0)(no_prev), expected)


def test_latent_bounds_penalise_only_the_excursion():
    z = torch.tensor([[[0.5, 2.0, -3.0]]])
    x = CostInputs(z, torch.zeros(1, 1, 1), torch.zeros(3))
    torch.testing.assert_close(LatentBounds(2.0, low=-1.0, high=1.0)(x), torch.tensor([2.0 * (1.0 + 4.0)]))


def test_cost_from_config_sums_enabled_terms():
    x = _inputs()
    config = CostConfig(
        goal_weight=1.0,
        goal_running_weight=0.1,
        action_weight=0.2,
        smoothness_weight=0.3,
        latent_bound_weight=0.4,
        latent_low=-0.5,
        latent_high=0.5,
    )
    cost = Cost.from_config(config)
    assert len(cost.terms) == 5
    expected = (
        GoalDistance(1.0)(x)
        + GoalDistance(0.1, True)(x)
        + ActionMagnitude(0.2)(x)
        + ActionSmoothness(0.3)(x)
        + LatentBounds(0.4, -0.5, 0.5)(x)
    )
    torch.testing.assert_close(cost(x.latents, x.actions, x.goal, x.previous_action), expected)
    assert len(Cost.from_config(CostConfig()).terms) == 1


@pytest.mark.parametrize(
    "kwargs", [dict(goal_weight=-1.0), dict(action_weight=float("nan")), dict(latent_low=1.0, latent_high=0.0)]
)
def test_cost_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        CostConfig(**kwargs)


def test_action_limits_reject_bad_bounds():
    with pytest.raises(ValueError, match="low > high at index 1"):
        ActionLimits.create(2, (0.0, 1.0), (1.0, 0.5))
    with pytest.raises(ValueError, match="max_rate"):
        ActionLimits.create(2, -1.0, 1.0, max_rate=-0.1)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        ActionLimits.create(3, (0.0, 1.0), 1.0)
