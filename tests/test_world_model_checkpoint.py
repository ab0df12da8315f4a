"""Checkpoints: round trip, resume state, and clear errors for damaged or mismatched files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from ami_robot.perception import EncoderConfig
from ami_robot.world_model import (
    CheckpointError,
    PredictorConfig,
    TrainState,
    WorldModel,
    WorldModelConfig,
    load_checkpoint,
    load_train_state,
    save_checkpoint,
)

TINY = WorldModelConfig(
    latent_dim=8,
    env_action_dim=2,
    image_size=32,
    history=2,
    frameskip=2,
    encoder=EncoderConfig(cnn_channels=(8, 8), feature_dim=16, projector_hidden_dim=16),
    predictor=PredictorConfig(hidden_dim=32, depth=2),
    action_mean=(0.1, -0.2),
    action_std=(0.5, 2.0),
    action_low=(-1.0, -1.0),
    action_high=(1.0, 1.0),
)


def _model(config: WorldModelConfig = TINY, seed: int = 0) -> WorldModel:
    torch.manual_seed(seed)
    model = WorldModel(config)
    model.train()
    model.encode(torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8))  # move BatchNorm running stats
    return model.eval()


def _same_outputs(a: WorldModel, b: WorldModel) -> None:
    pixels = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(a.encode(pixels), b.encode(pixels), rtol=0, atol=0)
        z, action = torch.randn(3, 2, 8), torch.randn(3, 4)
        torch.testing.assert_close(a.predict(z, action), b.predict(z, action), rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["mlp", "transformer"])
def test_round_trip_restores_weights_config_and_metrics(tmp_path: Path, kind: str) -> None:
    config = dataclasses.replace(TINY, predictor=PredictorConfig(kind=kind, hidden_dim=32, depth=2, heads=2))
    model = _model(config)
    save_checkpoint(tmp_path / "ckpt", model, metrics={"pred_loss": 0.5})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_checkpoint(tmp_path / "ckpt").eval()
    assert loaded.config == config
    assert (loaded.latent_dim, loaded.action_dim, loaded.history, loaded.image_size) == (8, 4, 2, 32)
    _same_outputs(model, loaded)
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["metrics"] == {"pred_loss": 0.5}


def test_action_normalisation_round_trip_and_bounds() -> None:
    model = _model()
    raw = torch.tensor([[0.6, 1.8, -0.4, -2.2]]).numpy()
    normalized = model.normalize_actions(raw)
    torch.testing.assert_close(torch.from_numpy(normalized), torch.tensor([[1.0, 1.0, -1.0, -1.0]]))
    torch.testing.assert_close(torch.from_numpy(model.denormalize_actions(normalized)), torch.from_numpy(raw))
    low, high = model.action_bounds()
    torch.testing.assert_close(torch.from_numpy(low), torch.tensor([-2.2, -0.4, -2.2, -0.4]))
    torch.testing.assert_close(torch.from_numpy(high), torch.tensor([1.8, 0.6, 1.8, 0.6]))


def test_train_state_round_trip(tmp_path: Path) -> None:
    model = _model()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.encode(torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)).square().mean().backward()
    optimizer.step()
    state = TrainState(
        step=7,
        optimizer=optimizer.state_dict(),
        train_config={"steps": 10},
        rng_state=torch.get_rng_state(),
        history=[{"step": 5}],
    )
    save_checkpoint(tmp_path / "ckpt", model, state)
    loaded = load_train_state(tmp_path / "ckpt")
    assert (loaded.step, loaded.train_config, loaded.history) == (7, {"steps": 10}, [{"step": 5}])
    torch.testing.assert_close(loaded.rng_state, state.rng_state)
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fresh.load_state_dict(loaded.optimizer)
    for key, value in optimizer.state_dict()["state"].items():
        for name, tensor in value.items():
            torch.testing.assert_close(fresh.state_dict()["state"][key][name], tensor)


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    save_checkpoint(tmp_path / "ckpt", _model())
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors: missing"):
        load_checkpoint(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json: missing"):
        load_checkpoint(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match=r"train_state\.json: missing"):
        load_train_state(tmp_path / "ckpt")


def test_truncated_weights_raise(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ckpt", _model())
    path = tmp_path / "ckpt" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        load_checkpoint(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    del config["sha256"]  # without the checksum, the safetensors reader itself must catch truncation
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "ckpt")


def test_corrupt_bytes_and_corrupt_json_raise(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ckpt", _model())
    path = tmp_path / "ckpt" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tmp_path / "ckpt")
    path.write_bytes(b"\x00" * 64)
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    del config["sha256"]
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "ckpt")


def test_mismatched_config_and_weights_raise(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ckpt", _model())
    save_checkpoint(tmp_path / "other", _model(dataclasses.replace(TINY, latent_dim=12)))
    (tmp_path / "ckpt" / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    del config["sha256"]
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"does not match config.json: .*shape mismatches"):
        load_checkpoint(tmp_path / "ckpt")
    config["world_model"]["latent_dim"] = "big"
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="latent_dim"):
        load_checkpoint(tmp_path / "ckpt")
    config["world_model"]["latent_dim"] = 8
    config["world_model"]["predictor"]["kind"] = "transformer"
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="missing tensors"):
        load_checkpoint(tmp_path / "ckpt")


def _rewrite_config(directory: Path, edit) -> None:
    path = directory / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


def test_non_finite_weights_with_a_matching_checksum_are_refused(tmp_path: Path) -> None:
    model = _model()
    with torch.no_grad():
        model.encoder.backbone.convs[0].weight[0, 0, 0, 0] = float("nan")
    save_checkpoint(tmp_path / "ckpt", model)  # the recorded SHA-256 matches the NaN weights
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor 'encoder\.backbone\.convs\.0\.weight'.*NaN"):
        load_checkpoint(tmp_path / "ckpt")


@pytest.mark.parametrize(
    "recorded, match",
    [
        ("deadbeef", r"config\.json: sha256 must map file names to SHA-256 digests, got 'deadbeef'"),
        ({"model.safetensors": "deadbeef"}, r"config\.json: sha256\.model\.safetensors must be 64 hexadecimal"),
        ({"model.safetensors": 7}, r"config\.json: sha256\.model\.safetensors must be 64 hexadecimal"),
    ],
)
def test_a_malformed_sha256_is_a_checkpoint_error(tmp_path: Path, recorded, match: str) -> None:
    save_checkpoint(tmp_path / "ckpt", _model())
    _rewrite_config(tmp_path / "ckpt", lambda config: config.update(sha256=recorded))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path / "ckpt")


def test_a_malformed_train_state_sha256_is_a_checkpoint_error(tmp_path: Path) -> None:
    model = _model()
    state = TrainState(step=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1).state_dict(), train_config={})
    save_checkpoint(tmp_path / "ckpt", model, state)
    path = tmp_path / "ckpt" / "train_state.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "sha256": "deadbeef"}))
    with pytest.raises(CheckpointError, match=r"train_state\.json: sha256 must map file names"):
        load_train_state(tmp_path / "ckpt")


@pytest.fixture
def no_real_model_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading may build a WorldModel on the meta device (shapes only), never a real one, until the
    config and the weights have been checked against each other."""
    from ami_robot.world_model import checkpoint

    class MetaOnlyWorldModel(WorldModel):
        def __init__(self, config: WorldModelConfig) -> None:
            assert torch.get_default_device().type == "meta", "a real model was allocated before validation"
            super().__init__(config)

    monkeypatch.setattr(checkpoint, "WorldModel", MetaOnlyWorldModel)


@pytest.mark.parametrize(
    "section, key, value, match",
    [
        ("predictor", "hidden_dim", 10**9, r"config\.json: world_model\.predictor\.hidden_dim = 1000000000 is larger"),
        (None, "image_size", 10**7, r"config\.json: world_model\.image_size = 10000000 is larger"),
        ("encoder", "cnn_channels", [8, 10**6], r"config\.json: world_model\.encoder\.cnn_channels\[1\] = 1000000"),
        ("predictor", "hidden_dim", 4096, r"model\.safetensors: does not match config\.json: .*predictor\.net"),
        (None, "image_size", 4096, r"model\.safetensors: does not match config\.json: .*encoder\.backbone\.head"),
    ],
)
@pytest.mark.usefixtures("no_real_model_construction")
def test_sizes_in_config_json_are_checked_before_any_allocation(
    tmp_path: Path, section: str | None, key: str, value, match: str
) -> None:
    save_checkpoint(tmp_path / "ckpt", _model())

    def edit(config: dict) -> None:
        (config["world_model"][section] if section else config["world_model"])[key] = value

    _rewrite_config(tmp_path / "ckpt", edit)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path / "ckpt")


@pytest.mark.usefixtures("no_real_model_construction")
def test_a_config_that_builds_no_model_is_a_checkpoint_error(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ckpt", _model())
    _rewrite_config(tmp_path / "ckpt", lambda config: config["world_model"].update(image_size=2))
    with pytest.raises(CheckpointError, match=r"config\.json: world_model describes no buildable model: image_size 2"):
        load_checkpoint(tmp_path / "ckpt")


def test_checkpoint_for_takes_the_given_directory_else_the_shipped_one(tmp_path: Path) -> None:
    from ami_robot.checkpoints import CHECKPOINTS, checkpoint_for, shipped_checkpoint
    from ami_robot.errors import CheckpointError

    assert checkpoint_for("pusht", None) == shipped_checkpoint("pusht") == (CHECKPOINTS / "pusht").resolve()
    assert checkpoint_for("pusht", CHECKPOINTS / "reacher") == (CHECKPOINTS / "reacher").resolve()
    with pytest.raises(CheckpointError, match=f"no trained world model at {tmp_path}.*ami-robot train"):
        checkpoint_for("pusht", tmp_path)
    with pytest.raises(
        CheckpointError, match=r"no shipped world model for 'cartpole' .*shipped: pusht, reacher, tworoom"
    ):
        shipped_checkpoint("cartpole")
