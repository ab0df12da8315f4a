"""Simulated robots: gymnasium environments with pixel observations, experts, data collection, evaluation.

Importing `ami_sim` registers the environments with gymnasium (ami_sim/TwoRoom-v1, ami_sim/PushT-v1,
ami_sim/Reacher-v1, and their former versions, `registry.FORMER_VERSIONS`); the MuJoCo, dm-control and
pymunk back ends load only when their env is made.
"""

from ami_sim.registry import ENV_NAMES, make_env, make_expert, make_random, register_envs

register_envs()

__all__ = ["ENV_NAMES", "make_env", "make_expert", "make_random", "register_envs"]
