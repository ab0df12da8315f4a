"""Short-term memory: the last latents, actions and one-step predictions, and the surprise signal."""

from ami_robot.memory.short_term import ShortTermMemory, surprise

__all__ = ["ShortTermMemory", "surprise"]
