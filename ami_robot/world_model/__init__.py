"""World model: encoder (pixels -> z) and action-conditioned JEPA predictor trained with SIGReg.

from ami_robot.world_model import WorldModel, load_checkpoint
model = load_checkpoint("runs/tworoom").eval()
with torch.no_grad():
    z = model.encode(pixels_uint8_bhwc)                   # (B, D)
    z_next = model.predict(z.unsqueeze(1), action)        # (B, D)
    steps = model.critic(z, z_goal)                       # (B,) predicted steps, when trained
"""

from ami_robot.world_model.checkpoint import (
    CheckpointError,
    TrainState,
    load_checkpoint,
    load_train_state,
    read_config,
    save_checkpoint,
)
from ami_robot.world_model.critic import Critic, CriticConfig
from ami_robot.world_model.ensemble import PredictorEnsemble
from ami_robot.world_model.mlp_predictor import MLPPredictor, MLPPredictorConfig
from ami_robot.world_model.model import PredictorConfig, WorldModel, WorldModelConfig
from ami_robot.world_model.sigreg import SIGRegConfig, sigreg
from ami_robot.world_model.transformer_predictor import TransformerPredictor, TransformerPredictorConfig

__all__ = [
    "CheckpointError",
    "Critic",
    "CriticConfig",
    "MLPPredictor",
    "MLPPredictorConfig",
    "PredictorConfig",
    "PredictorEnsemble",
    "SIGRegConfig",
    "TrainState",
    "TransformerPredictor",
    "TransformerPredictorConfig",
    "WorldModel",
    "WorldModelConfig",
    "load_checkpoint",
    "load_train_state",
    "read_config",
    "save_checkpoint",
    "sigreg",
]
