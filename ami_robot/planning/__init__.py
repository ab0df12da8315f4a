"""The actor: sampling planners (CEM, iCEM, MPPI) that search action sequences through the
world model to minimise the cost, on a C++/CUDA core, or in PyTorch for any predictor."""

from ami_robot.planning.api import CEMPlanner, MPPIPlanner, PlanResult
from ami_robot.planning.backends import available_backends
from ami_robot.planning.config import PlannerConfig
from ami_robot.planning.dynamics import MLPDynamics

__all__ = ["CEMPlanner", "MLPDynamics", "MPPIPlanner", "PlanResult", "PlannerConfig", "available_backends"]
