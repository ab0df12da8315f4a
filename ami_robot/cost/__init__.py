"""The cost module: the score of a predicted future as a weighted sum of small terms, and the hard
action limits that hold by construction (projection, not penalty).

    cost = Cost.from_config(CostConfig(goal_weight=1.0, smoothness_weight=0.1))
    c = cost(latents (N, H, D), actions (N, H, A), goal (D,), previous_action (A,) | None)  # (N,)
"""

from ami_robot.cost.config import CostConfig
from ami_robot.cost.limits import ActionLimits
from ami_robot.cost.terms import (
    ActionMagnitude,
    ActionSmoothness,
    Cost,
    CostInputs,
    CostTerm,
    CriticSteps,
    GoalDistance,
    LatentBounds,
    LatentCritic,
)

__all__ = [
    "ActionLimits",
    "ActionMagnitude",
    "ActionSmoothness",
    "Cost",
    "CostConfig",
    "CostInputs",
    "CostTerm",
    "CriticSteps",
    "GoalDistance",
    "LatentBounds",
    "LatentCritic",
]
