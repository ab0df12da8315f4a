"""Predictors: the planner's MLP (exported and checked equal) and the AdaLN-zero transformer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ami_robot.perception import EncoderConfig
from ami_robot.training import Objective, TrainConfig
from ami_robot.world_model import PredictorConfig, WorldModel, WorldModelConfig
from ami_robot.world_model.mlp_predictor import MLPPredictor
from ami_robot.world_model.transformer_predictor import TransformerPredictor, TransformerPredictorConfig


def _world_model(kind: str, history: int = 1) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(
        WorldModelConfig(
            latent_dim=8,
            env_action_dim=2,
            image_size=32,
            history=history,
            encoder=EncoderConfig(cnn_channels=(8, 8), feature_dim=16, projector_hidden_dim=16),
            predictor=PredictorConfig(kind=kind, hidden_dim=32, depth=2, heads=2),
        )
    )


def test_default_world_model_predictor_is_the_planner_mlp() -> None:
    model = WorldModel(WorldModelConfig())
    assert isinstance(model.predictor, MLPPredictor)
    assert model.predictor.config.history == model.history and model.predictor.config.action_dim == model.action_dim


def test_mlp_export_to_planner_dynamics_is_equal() -> None:
    planning = pytest.importorskip("ami_robot.planning", reason="ami_robot.planning is not available")
    if not hasattr(planning, "MLPDynamics"):
        pytest.skip("ami_robot.planning.MLPDynamics is not implemented yet")
    model = _world_model("mlp", history=2).eval()
    with torch.no_grad():
        for p in model.predictor.parameters():
            p.add_(0.1 * torch.randn_like(p))
    dynamics = planning.MLPDynamics.from_module(model.predictor)
    assert dynamics.config == model.predictor.config
    exported = dynamics.state_dict()
    for name, tensor in model.predictor.state_dict().items():
        np.testing.assert_array_equal(exported[name], tensor.numpy(), err_msg=name)
    z = torch.randn(5, 2, 8)
    a = torch.randn(5, 2)
    with torch.no_grad():
        torch.testing.assert_close(dynamics.to_module()(z, a), model.predict(z, a), rtol=0, atol=0)
    with pytest.raises(TypeError):
        planning.MLPDynamics.from_module(_world_model("transformer").predictor)


def test_fresh_transformer_predictor_is_the_copy_model() -> None:
    predictor = TransformerPredictor(
        TransformerPredictorConfig(latent_dim=6, action_dim=3, history=3, width=16, depth=2, heads=2)
    )
    z = torch.randn(4, 3, 6)
    torch.testing.assert_close(predictor(z, torch.randn(4, 3)), z[:, -1])


def test_trained_transformer_uses_action_and_history() -> None:
    torch.manual_seed(0)
    predictor = TransformerPredictor(
        TransformerPredictorConfig(latent_dim=4, action_dim=2, history=2, width=16, depth=1, heads=2)
    )
    optimizer = torch.optim.Adam(predictor.parameters(), lr=3e-3)
    for _ in range(150):
        z = torch.randn(64, 2, 4)
        a = torch.randn(64, 2)
        target = z[:, -1] + torch.cat([a, z[:, -1, :2] - z[:, 0, :2]], dim=1)
        loss = (predictor(z, a) - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2, loss.item()
    with pytest.raises(ValueError, match="history of 2"):
        predictor(torch.randn(3, 1, 4), torch.randn(3, 2))


@pytest.mark.parametrize("kind", ["mlp", "transformer"])
@pytest.mark.parametrize("regularizer", ["sigreg", "vicreg"])
def test_gradients_reach_the_encoder(kind: str, regularizer: str) -> None:
    model = _world_model(kind, history=2).train()
    objective = Objective(model, TrainConfig(model=model.config, horizon=2, regularizer=regularizer))
    observations = torch.randint(0, 256, (6, 4, 32, 32, 3), dtype=torch.uint8)
    losses = objective(observations, torch.randn(6, 3, 2), step=0)
    losses["loss"].backward()
    first_conv = model.encoder.backbone.convs[0].weight
    assert first_conv.grad is not None and float(first_conv.grad.abs().sum()) > 0
    assert all(p.grad is not None for p in model.predictor.parameters() if p.requires_grad)


def test_rollout_feeds_predictions_back() -> None:
    model = _world_model("mlp", history=2).eval()
    z0, actions = torch.randn(3, 2, 8), torch.randn(3, 4, 2)
    with torch.no_grad():
        rolled = model.rollout(z0, actions)
        z1 = model.predict(z0, actions[:, 0])
        z2 = model.predict(torch.stack([z0[:, 1], z1], 1), actions[:, 1])
    assert rolled.shape == (3, 4, 8)
    torch.testing.assert_close(rolled[:, 1], z2)
