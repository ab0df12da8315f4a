"""Planner backends behind one interface: `torch` (the reference oracle and baseline, any
torch.nn predictor), `cpu` and `reference` (the C++ core), `cuda` (when compiled in)."""

from ami_robot.planning.backends.base import Backend, RawPlan

__all__ = ["Backend", "RawPlan"]
