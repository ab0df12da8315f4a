"""The actor: pick the action. Receding-horizon MPC (`Actor`) over the planners of
`ami_robot.planning`, behind the command guard (`CommandGuard`) whose hard limits hold by
construction."""

from ami_robot.actor.mpc import Actor, BrainCommand, build_planner
from ami_robot.actor.safety import CommandGuard, SafeCommand, SafetyConfig, StopReason

__all__ = ["Actor", "BrainCommand", "CommandGuard", "SafeCommand", "SafetyConfig", "StopReason", "build_planner"]
