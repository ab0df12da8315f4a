"""Configurator: the task and settings of the brain (goal, cost weights, planner, active model),
validated and switchable at run time."""

from ami_robot.configurator.configurator import Configurator, load_goal_image
from ami_robot.configurator.settings import BrainSettings, flatten_settings, load_brain_settings, settings_from_flat

__all__ = [
    "BrainSettings",
    "Configurator",
    "flatten_settings",
    "load_brain_settings",
    "load_goal_image",
    "settings_from_flat",
]
