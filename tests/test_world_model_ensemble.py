"""The predictor ensemble: its rollouts, its cost (members' mean plus disagreement), the planner
through it, its checkpoint and its training stage."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from model_helpers import DOT_WORLD_MODEL, TINY_MODEL, tiny_world_model

from ami_robot.actor.mpc import build_planner
from ami_robot.config import to_dict
from ami_robot.configurator.settings import BrainSettings
from ami_robot.cost import CostConfig
from ami_robot.cost.terms import Cost, disagreement
from ami_robot.data import read_episode
from ami_robot.data.windows import split_episode_files
from ami_robot.errors import ConfigError, DataError
from ami_robot.planning import CEMPlanner, PlannerConfig
from ami_robot.training import EnsembleTrainConfig, TrainConfig, train_ensemble
from ami_robot.training.ensemble import MixtureSampler, WindowSampler, directory_frames
from ami_robot.training.latents import LatentEpisodes
from ami_robot.world_model import (
    MLPPredictor,
    MLPPredictorConfig,
    PredictorEnsemble,
    WorldModel,
    WorldModelConfig,
    load_checkpoint,
    save_checkpoint,
)
from ami_robot.world_model.checkpoint import read_config
from ami_robot.world_model.rollout import autoregressive_rollout

MEMBER = MLPPredictorConfig(latent_dim=4, action_dim=2, hidden_dim=16, depth=2, history=2)


def _members(count: int) -> list[MLPPredictor]:
    torch.manual_seed(0)
    return [MLPPredictor(MEMBER) for _ in range(count)]


def test_ensemble_rolls_each_member_out_on_its_own_predictions() -> None:
    members = _members(3)
    ensemble = PredictorEnsemble(members)
    z_history, actions = torch.randn(5, 2, 4), torch.randn(5, 6, 2)
    latents = ensemble.rollout(z_history, actions)
    assert latents.shape == (3, 5, 6, 4)
    for member, rolled in zip(members, latents):
        torch.testing.assert_close(rolled, autoregressive_rollout(member, z_history, actions))
    assert ensemble.config == MEMBER and len(ensemble) == 3


def test_ensemble_needs_two_members_of_one_architecture() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        PredictorEnsemble(_members(1))
    other = MLPPredictor(dataclasses.replace(MEMBER, hidden_dim=8))
    with pytest.raises(ValueError, match="one architecture"):
        PredictorEnsemble([*_members(1), other])
    with pytest.raises(ValueError, match="ensemble"):
        WorldModelConfig(ensemble=1)


def test_ensemble_cost_is_the_members_mean_plus_their_disagreement() -> None:
    torch.manual_seed(0)
    latents, actions, goal = torch.randn(3, 7, 4, 5), torch.randn(7, 4, 2), torch.randn(5)
    config = CostConfig(
        goal_running_weight=0.5, action_weight=0.1, disagreement_weight=2.0, disagreement_running_weight=0.3
    )
    cost = Cost.from_config(config)
    members = torch.stack([cost(z, actions, goal) for z in latents])
    expected = members.mean(0) + 2.0 * disagreement(latents) + 0.3 * disagreement(latents, every_step=True)
    torch.testing.assert_close(cost(latents, actions, goal), expected)
    spread = latents - latents.mean(0)
    torch.testing.assert_close(disagreement(latents), spread[:, :, -1].square().mean(0).sum(-1))
    torch.testing.assert_close(disagreement(latents, every_step=True), spread.square().mean(0).sum((-2, -1)))
    agreeing = latents[:1].expand(3, -1, -1, -1)
    torch.testing.assert_close(cost(agreeing, actions, goal), cost(latents[0], actions, goal))


@pytest.mark.parametrize("backend", ["torch", "cpu", "reference"])
def test_planner_through_identical_members_plans_as_through_one(backend: str) -> None:
    predictor = _members(1)[0]
    ensemble = PredictorEnsemble([predictor, copy.deepcopy(predictor)])
    config = PlannerConfig(horizon=3, samples=32, iterations=3, elites=4, cost=CostConfig(disagreement_weight=5.0))
    z0, goal = torch.randn(2, 4).numpy(), torch.randn(4).numpy()
    through_ensemble = CEMPlanner(ensemble, config, backend=backend).plan(z0, goal)
    single = dataclasses.replace(config, cost=CostConfig())
    through_one = CEMPlanner(predictor, single, backend=backend).plan(z0, goal)
    assert through_ensemble.backend == backend
    np.testing.assert_allclose(through_ensemble.actions, through_one.actions, rtol=1e-5, atol=1e-6)
    assert through_ensemble.cost == pytest.approx(through_one.cost, rel=1e-5)


def test_planner_refuses_disagreement_without_an_ensemble() -> None:
    config = PlannerConfig(horizon=2, samples=8, iterations=1, elites=2, cost=CostConfig(disagreement_weight=1.0))
    with pytest.raises(ValueError, match="PredictorEnsemble"):
        CEMPlanner(_members(1)[0], config)
    running = dataclasses.replace(config, cost=CostConfig(disagreement_running_weight=1.0))
    with pytest.raises(ValueError, match="PredictorEnsemble"):
        CEMPlanner(_members(1)[0], running)


def test_a_model_with_an_ensemble_plans_through_it_and_keeps_it_in_its_checkpoint(tmp_path: Path) -> None:
    model = tiny_world_model(ensemble=3).eval()
    assert model.ensemble is not None and len(model.ensemble) == 3
    save_checkpoint(tmp_path / "ckpt", model)
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config.ensemble == 3 and loaded.ensemble is not None
    assert any(name.startswith("ensemble.members.2.") for name in loaded.state_dict())
    z_history, actions = torch.randn(4, 1, 8), torch.randn(4, 3, 2)
    torch.testing.assert_close(loaded.ensemble.rollout(z_history, actions), model.ensemble.rollout(z_history, actions))
    settings = BrainSettings(cost=CostConfig(disagreement_weight=1.0))
    assert build_planner(loaded, settings).backend_name == "cpu"

    save_checkpoint(tmp_path / "old", tiny_world_model())
    config_path = tmp_path / "old" / "config.json"
    config = json.loads(config_path.read_text())
    del config["world_model"]["ensemble"]  # as written before ensembles existed
    config_path.write_text(json.dumps(config))
    assert load_checkpoint(tmp_path / "old").ensemble is None
    assert TINY_MODEL.ensemble == 0


def _untrained_world_model(directory: Path) -> Path:
    torch.manual_seed(0)
    config = dataclasses.replace(DOT_WORLD_MODEL, action_mean=(0.0, 0.0), action_std=(0.5, 0.5))
    return save_checkpoint(directory, WorldModel(config))


TINY = TrainConfig(
    model=DOT_WORLD_MODEL,
    val_fraction=0.2,
    device="cpu",
    ensemble=EnsembleTrainConfig(members=2, steps=4, eval_every=2, batch_size=16, horizon=3, val_windows=64),
)


def test_ensemble_stage_resumes_exactly_and_refuses_to_overwrite(dot_data: Path, tmp_path: Path) -> None:
    _untrained_world_model(tmp_path / "full")
    _untrained_world_model(tmp_path / "split")
    result = train_ensemble(dot_data, tmp_path / "full", TINY, progress=False, json_path=tmp_path / "m.json")
    train_ensemble(dot_data, tmp_path / "split", TINY, progress=False, stop_at=5)  # inside the second member
    assert json.loads((tmp_path / "split" / "ensemble_train_state.json").read_text())["step"] == 5
    with pytest.raises(FileExistsError, match="--resume"):
        train_ensemble(dot_data, tmp_path / "split", TINY, progress=False)
    train_ensemble(dot_data, tmp_path / "split", TINY, progress=False, resume=True)
    full, split = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "split")
    assert full.ensemble is not None and split.ensemble is not None
    for name, tensor in full.ensemble.state_dict().items():
        torch.testing.assert_close(split.ensemble.state_dict()[name], tensor, rtol=1e-6, atol=1e-7, msg=name)
    members = full.ensemble.members
    assert not torch.equal(members[0].net[0].weight, members[1].net[0].weight)
    untrained = load_checkpoint(_untrained_world_model(tmp_path / "untouched"))
    torch.testing.assert_close(full.encoder.state_dict(), untrained.encoder.state_dict())
    torch.testing.assert_close(full.predictor.state_dict(), untrained.predictor.state_dict())
    assert result["step"] == 8 and len(result["ensemble_rollout_mse"]) == 3
    assert [h["step"] for h in json.loads((tmp_path / "m.json").read_text())["history"]] == [2, 4, 6, 8]
    assert json.loads((tmp_path / "full" / "config.json").read_text())["world_model"]["ensemble"] == 2


def test_ensemble_members_learn_the_dot_world(dot_data: Path, tmp_path: Path) -> None:
    """Trained members predict the frozen encoder's future latents far better than its untrained
    joint predictor does."""
    _untrained_world_model(tmp_path / "ckpt")
    config = dataclasses.replace(
        TINY, ensemble=dataclasses.replace(TINY.ensemble, steps=150, eval_every=150, lr=3e-3, warmup_steps=10)
    )
    result = train_ensemble(dot_data, tmp_path / "ckpt", config, progress=False)
    assert result["ensemble_rollout_mse"][-1] < 0.5 * result["joint_predictor_rollout_mse"][-1]


def test_cli_ensemble_only_needs_members(dot_data: Path, tmp_path: Path) -> None:
    from ami_robot.cli import main

    checkpoint = _untrained_world_model(tmp_path / "ckpt")
    argv = ["train", "--data", str(dot_data), "--out", str(checkpoint), "--no-progress", "--device", "cpu"]
    assert main([*argv, "--ensemble-only"]) != 0
    assert main([*argv, "--ensemble-only", "--critic-only", "--critic-steps", "2", "--ensemble-members", "2"]) != 0
    with pytest.raises(ConfigError, match="members"):
        EnsembleTrainConfig(members=1)


def test_cli_trains_the_ensemble_on_several_datasets_and_records_each(dot_data: Path, tmp_path: Path) -> None:
    from ami_robot.cli import main
    from ami_sim.dotworld import write_dot_dataset

    more = write_dot_dataset(tmp_path / "more_dots", episodes=6, steps=40, image_size=32, seed=1)
    checkpoint = _untrained_world_model(tmp_path / "ckpt")
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(to_dict(TINY)))
    argv = ["train", "--data", str(dot_data), str(more), "--out", str(checkpoint), "--config", str(config)]
    assert main([*argv, "--ensemble-only", "--no-progress", "--json", str(tmp_path / "m.json")]) == 0
    recorded = read_config(checkpoint)[1]["ensemble_data"]
    assert [part["name"] for part in recorded["datasets"]] == [dot_data.name, "more_dots"]
    assert recorded["episodes"] == 36
    train_frames = sum(len(read_episode(f).observations) for f in split_episode_files([dot_data, more], 0.2, 0)[0])
    assert recorded["train_frames"] == train_frames
    validated = read_config(checkpoint)[1]["ensemble"]
    assert [part["name"] for part in validated["datasets"]] == [dot_data.name, "more_dots"]
    for part in validated["datasets"]:
        for key in ("ensemble_rollout_mse", "joint_predictor_rollout_mse"):
            assert len(part[key]) == TINY.ensemble.horizon and all(np.isfinite(part[key])), (part["name"], key)
    assert validated["datasets"][0] != validated["datasets"][1], "each dataset validates on its own windows"


def _numbered_episodes(lengths: list[int]) -> LatentEpisodes:
    """Episodes of the given lengths, one after the other, whose 1-D latent is the frame's global index."""
    first = np.concatenate([np.full(n, sum(lengths[:i])) for i, n in enumerate(lengths)])
    last = np.concatenate([np.full(n, sum(lengths[: i + 1]) - 1) for i, n in enumerate(lengths)])
    frames = sum(lengths)
    return LatentEpisodes(
        torch.arange(frames, dtype=torch.float32)[:, None], torch.zeros(frames, 2), np.zeros((frames, 1)), first, last
    )


def test_window_sampler_anchors_only_in_the_frames_it_is_given() -> None:
    """Windows of a frame range start, end and take their history inside that range's episodes."""
    episodes = _numbered_episodes([12, 9, 15])
    second = range(12, 21)
    sampler = WindowSampler(episodes, history=2, frameskip=2, horizon=2, frames=second)
    assert sampler.anchors.tolist() == [14, 15, 16]
    windows = sampler.sample(64, np.random.default_rng(0))
    seen = torch.cat([windows.history.flatten(), windows.targets.flatten()])
    assert seen.min() >= second.start and seen.max() < second.stop
    with pytest.raises(DataError, match="too short"):
        WindowSampler(episodes, history=2, frameskip=2, horizon=4, frames=second)


def test_mixture_sampler_draws_each_dataset_by_its_weight() -> None:
    """Batches mix the directories by `dataset_weights`, not by their sizes; a weight of 0 leaves a
    directory out of training."""
    episodes = _numbered_episodes([40, 40, 400])
    samplers = [WindowSampler(episodes, 2, 2, 2, frames=r) for r in directory_frames(episodes, [1, 1, 1])]
    windows = MixtureSampler(samplers, (3.0, 0.0, 1.0)).sample(4000, np.random.default_rng(0))
    anchors = windows.history[:, -1, 0]
    shares = [float(((anchors >= r.start) & (anchors < r.stop)).float().mean()) for r in (range(40), range(40, 80))]
    assert shares[0] == pytest.approx(0.75, abs=0.03) and shares[1] == 0.0
    assert windows.actions.shape == (4000, 2, 4) and windows.targets.shape == (4000, 2, 1)


def test_ensemble_fine_tunes_from_another_checkpoint_and_resumes(dot_data: Path, tmp_path: Path) -> None:
    """--ensemble-from starts the members from a trained ensemble (a new checkpoint, the source left
    as it was), records where it started, mixes the datasets by weight, and resumes exactly."""
    from ami_sim.dotworld import write_dot_dataset

    more = write_dot_dataset(tmp_path / "more_dots", episodes=6, steps=40, image_size=32, seed=1)
    source = _untrained_world_model(tmp_path / "source")
    train_ensemble(dot_data, source, TINY, progress=False)
    before = copy.deepcopy(load_checkpoint(source).ensemble)
    assert before is not None
    negligible_lr = dataclasses.replace(TINY, ensemble=dataclasses.replace(TINY.ensemble, lr=1e-12, warmup_steps=0))
    train_ensemble([dot_data, more], tmp_path / "same", negligible_lr, progress=False, init_from=source)
    same = load_checkpoint(tmp_path / "same").ensemble
    assert same is not None
    for name, tensor in before.state_dict().items():
        torch.testing.assert_close(same.state_dict()[name], tensor, msg=f"{name}: a learning rate of 1e-12 keeps it")

    weighted = dataclasses.replace(TINY, ensemble=dataclasses.replace(TINY.ensemble, dataset_weights=(1.0, 3.0)))
    train_ensemble([dot_data, more], tmp_path / "full", weighted, progress=False, init_from=source)
    train_ensemble([dot_data, more], tmp_path / "split", weighted, progress=False, init_from=source, stop_at=5)
    with pytest.raises(FileExistsError, match="new --out"):
        train_ensemble([dot_data, more], tmp_path / "split", weighted, progress=False, init_from=source)
    with pytest.raises(ConfigError, match="fine-tuned from source, not from"):
        train_ensemble([dot_data, more], tmp_path / "split", weighted, progress=False, init_from=more, resume=True)
    train_ensemble([dot_data, more], tmp_path / "split", weighted, progress=False, init_from=source, resume=True)
    full, split = load_checkpoint(tmp_path / "full").ensemble, load_checkpoint(tmp_path / "split").ensemble
    assert full is not None and split is not None
    for name, tensor in full.state_dict().items():
        torch.testing.assert_close(split.state_dict()[name], tensor, rtol=1e-6, atol=1e-7, msg=name)
        assert not torch.equal(tensor, before.state_dict()[name]), f"{name} was fine-tuned"
    for directory in ("full", "split"):
        recorded = read_config(tmp_path / directory)[1]["ensemble_data"]
        assert recorded["fine_tuned_from"]["checkpoint"] == "source", directory
        assert recorded["fine_tuned_from"]["ensemble_data"]["name"] == dot_data.name
        assert recorded["dataset_weights"] == [1.0, 3.0]
    torch.testing.assert_close(load_checkpoint(source).ensemble.state_dict(), before.state_dict())

    with pytest.raises(ConfigError, match="2 weights for 1 directories"):
        train_ensemble(dot_data, tmp_path / "wrong", weighted, progress=False, init_from=source)
    with pytest.raises(ConfigError, match="not the 3"):
        three = dataclasses.replace(TINY, ensemble=dataclasses.replace(TINY.ensemble, members=3))
        train_ensemble(dot_data, tmp_path / "three", three, progress=False, init_from=source)
    with pytest.raises(ConfigError, match="not all be 0"):
        EnsembleTrainConfig(members=2, dataset_weights=(0.0, 0.0))


def test_cli_fine_tunes_an_ensemble_only_with_ensemble_only(
    dot_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ami_robot.cli import main

    source = _untrained_world_model(tmp_path / "source")
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(to_dict(TINY)))
    argv = ["train", "--data", str(dot_data), "--config", str(config), "--no-progress"]
    assert main([*argv, "--out", str(source), "--ensemble-only"]) == 0
    assert main([*argv, "--out", str(tmp_path / "tuned"), "--ensemble-from", str(source)]) == 2
    assert main([*argv, "--out", str(tmp_path / "tuned"), "--ensemble-from", str(source), "--ensemble-only"]) == 0
    assert read_config(tmp_path / "tuned")[1]["ensemble_data"]["fine_tuned_from"]["checkpoint"] == "source"
    capsys.readouterr()
    assert main(["info", str(tmp_path / "tuned")]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "fine_tuned_from" in line]
    assert f"fine_tuned_from source (its ensemble learned from {dot_data.name})" in line and "{" not in line
