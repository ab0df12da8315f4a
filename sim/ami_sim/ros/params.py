"""The parameters of the simulated robot node (`sim_robot`), declared with the brain's ROS parameter
interface (`ami_robot.ros.params.ParameterSpec`), and the episode protocol they select."""

from __future__ import annotations

import dataclasses

from ami_robot.ros.params import ParameterSpec
from ami_sim.evaluation import PROTOCOLS, EvalProtocol
from ami_sim.registry import ENV_NAMES

SIM_ROBOT = [
    ParameterSpec("env", "tworoom", "simulated environment (ami_sim.registry name)", choices=ENV_NAMES),
    ParameterSpec("image_size", 64, "camera image side (pixels)", min_value=16, max_value=1024),
    ParameterSpec("rate_hz", 10.0, "simulation steps and camera images per second", min_value=0.1, max_value=1000.0),
    ParameterSpec(
        "command_type",
        "twist",
        "command input: twist (cmd_vel TwistStamped) or array (command Float32MultiArray)",
        choices=("twist", "array"),
    ),
    ParameterSpec(
        "command_timeout_s",
        0.5,
        "apply the zero action when the last command is older than this (s)",
        min_value=0.001,
        max_value=3600.0,
    ),
    ParameterSpec(
        "episodes", 10, "start/goal pairs prepared from the evaluation protocol", min_value=1, max_value=100000
    ),
    ParameterSpec("seed", 0, "seed of the start/goal pairs", min_value=0, max_value=2**31 - 1),
    ParameterSpec(
        "step_budget",
        0,
        "steps per episode before it ends unsuccessfully (0: the protocol's)",
        min_value=0,
        max_value=100000,
    ),
    ParameterSpec(
        "start_on_motion",
        True,
        "count an episode's steps from the first nonzero command after its first camera image, so that the "
        "brain's first plan costs no steps, as in offline evaluation (false: from the reset)",
    ),
    ParameterSpec(
        "goal_offset",
        0,
        "steps between start and goal on the held-out expert trajectory (0: the protocol's)",
        min_value=0,
        max_value=100000,
    ),
]


def episode_protocol(env: str, goal_offset: int = 0, step_budget: int = 0) -> EvalProtocol:
    """The evaluation protocol of `env` with the robot's `goal_offset` and `step_budget` parameters
    in place of its own (0 keeps the protocol's)."""
    protocol = PROTOCOLS[env]
    return dataclasses.replace(
        protocol,
        goal_offset_steps=goal_offset or protocol.goal_offset_steps,
        step_budget=step_budget or protocol.step_budget,
    )
