"""Training the world model: the recipe (`TrainConfig`), the objective, data-parallel plumbing and
the loop; then the critic stage (`train_critic`) and the predictor ensemble stage (`train_ensemble`)
on the frozen model. `ami-robot train` is the command-line front end."""

from ami_robot.training.config import (
    CriticTrainConfig,
    EnsembleTrainConfig,
    TrainConfig,
    learning_rate,
    load_train_config,
)
from ami_robot.training.critic import train_critic
from ami_robot.training.distributed import leave_process_group
from ami_robot.training.ensemble import train_ensemble
from ami_robot.training.loop import train
from ami_robot.training.objective import Objective

__all__ = [
    "CriticTrainConfig",
    "EnsembleTrainConfig",
    "Objective",
    "TrainConfig",
    "learning_rate",
    "leave_process_group",
    "load_train_config",
    "train",
    "train_critic",
    "train_ensemble",
]
