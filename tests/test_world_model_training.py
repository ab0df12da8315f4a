"""Training on the synthetic dot world: learns dynamics, resumes exactly, CLI and DDP (mp.spawn and torchrun)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from model_helpers import DOT_WORLD_MODEL
from safetensors.torch import load_file, save_file

from ami_robot.config import to_dict
from ami_robot.data import dataset_digest
from ami_robot.perception import EncoderConfig
from ami_robot.training import TrainConfig, leave_process_group, load_train_config, train
from ami_robot.world_model import PredictorConfig, SIGRegConfig, load_checkpoint
from ami_robot.world_model.checkpoint import read_config

TINY = TrainConfig(
    model=DOT_WORLD_MODEL,
    steps=300,
    batch_size=32,
    warmup_steps=10,
    eval_every=100,
    val_fraction=0.2,
    val_windows=128,
    sigreg=SIGRegConfig(directions=256),
    device="cpu",
)


@pytest.mark.slow
def test_short_run_beats_copy_baseline_and_keeps_rank(dot_data: Path, tmp_path: Path) -> None:
    metrics = train(dot_data, tmp_path / "ckpt", TINY, json_path=tmp_path / "metrics.json", progress=False)
    print(
        {
            k: metrics[k]
            for k in ("pred_loss", "copy_baseline_loss", "effective_rank", "sigreg", "probe_r2", "elapsed_s")
        }
    )
    assert metrics["pred_loss"] < 0.6 * metrics["copy_baseline_loss"]
    assert metrics["effective_rank"] > 6.0  # of 16 dimensions; 1 would be collapse
    assert metrics["std_min"] > 0.1
    assert metrics["probe_r2"] > 0.7
    written = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("pred_loss", "copy_baseline_loss", "effective_rank", "sigreg", "probe_r2"):
        assert written[key] == metrics[key]
    assert [h["step"] for h in written["history"]] == [100, 200, 300]
    model = load_checkpoint(tmp_path / "ckpt")
    assert model.config.action_mean and model.config.env_action_dim == 2
    recorded = read_config(tmp_path / "ckpt")[1]["data"]
    assert recorded["name"] == dot_data.name and recorded["sha256"] == dataset_digest(dot_data)
    assert recorded["episodes"] > 0
    assert recorded["train_episodes"] + recorded["val_episodes"] == recorded["episodes"]
    assert recorded["train_frames"] == metrics["train_frames"]


def test_resumed_run_matches_uninterrupted_run(dot_data: Path, tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, steps=8, eval_every=4, val_windows=32, probe_frames=64)
    train(dot_data, tmp_path / "full", config, progress=False)
    train(dot_data, tmp_path / "split", config, progress=False, stop_at=4)
    assert json.loads((tmp_path / "split" / "train_state.json").read_text())["step"] == 4
    with pytest.raises(FileExistsError, match="--resume"):
        train(dot_data, tmp_path / "split", config, progress=False)
    train(dot_data, tmp_path / "split", config, progress=False, resume=True)
    full, split = load_checkpoint(tmp_path / "full").state_dict(), load_checkpoint(tmp_path / "split").state_dict()
    for name in full:
        torch.testing.assert_close(split[name], full[name], rtol=1e-6, atol=1e-7, msg=name)


def test_cli_with_yaml_config_and_flag_overrides(dot_data: Path, tmp_path: Path) -> None:
    from ami_robot.cli import main

    data = to_dict(dataclasses.replace(TINY, steps=50, eval_every=2))
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(data))
    assert load_train_config(tmp_path / "train.yaml") == dataclasses.replace(TINY, steps=50, eval_every=2)
    argv = [
        "train",
        "--data",
        str(dot_data),
        "--out",
        str(tmp_path / "ckpt"),
        "--config",
        str(tmp_path / "train.yaml"),
        "--steps",
        "3",
        "--json",
        str(tmp_path / "m.json"),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["step"] == 3 and [h["step"] for h in metrics["history"]] == [2, 3]
    for key in ("pred_loss", "copy_baseline_loss", "effective_rank", "sigreg", "probe_r2"):
        assert isinstance(metrics[key], float)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, data: str, out: str, config: TrainConfig) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world_size),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        GLOO_SOCKET_IFNAME="lo",
    )
    torch.set_num_threads(1)
    import torch.distributed as dist

    # SIGReg of a batch split over ranks equals SIGReg of the whole batch
    from ami_robot.world_model.sigreg import sigreg

    dist.init_process_group("gloo")
    full = torch.randn(64, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    local = full[rank * 32 : (rank + 1) * 32].clone().requires_grad_()
    value = sigreg(local, step=3, config=SIGRegConfig(directions=32))
    value.backward()
    Path(out).mkdir(parents=True, exist_ok=True)
    save_file({"value": value.detach(), "grad": local.grad}, str(Path(out, f"sigreg{rank}.safetensors")))

    metrics = train(data, out, config, progress=False)
    total = torch.tensor([metrics["pred_loss"]], dtype=torch.float64)
    gathered = [torch.zeros_like(total) for _ in range(world_size)]
    dist.all_gather(gathered, total)
    Path(out, f"rank{rank}.json").write_text(
        json.dumps({"metrics": metrics, "pred_losses": [float(g) for g in gathered]})
    )
    leave_process_group()


@pytest.mark.slow
def test_two_process_gloo_ddp(dot_data: Path, tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    config = dataclasses.replace(TINY, steps=6, eval_every=6, val_windows=32, probe_frames=64, batch_size=16)
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(dot_data), str(tmp_path / "ckpt"), config), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / "ckpt" / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["metrics"]["world_size"] == 2
    # every rank evaluated the same synchronised weights on the same validation windows
    assert ranks[0]["pred_losses"][0] == ranks[0]["pred_losses"][1]
    from ami_robot.world_model.sigreg import sigreg

    full = torch.randn(64, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64).requires_grad_()
    expected = sigreg(full, step=3, config=SIGRegConfig(directions=32))
    expected.backward()
    for r in range(2):
        got = load_file(str(tmp_path / "ckpt" / f"sigreg{r}.safetensors"))
        torch.testing.assert_close(got["value"], expected.detach())
        # each rank's gradient is world_size x its share, which DDP's gradient averaging undoes
        torch.testing.assert_close(got["grad"], 2 * full.grad[r * 32 : (r + 1) * 32])
    state = json.loads((tmp_path / "ckpt" / "train_state.json").read_text())
    assert state["step"] == 6
    load_checkpoint(tmp_path / "ckpt")


@pytest.mark.slow
def test_torchrun_two_processes_train_from_the_cli(dot_data: Path, tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, steps=6, eval_every=6, val_windows=32, probe_frames=64, batch_size=16)
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(to_dict(config)))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "ami_robot.cli",
        "train",
        "--data",
        str(dot_data),
        "--out",
        str(tmp_path / "ckpt"),
        "--config",
        str(tmp_path / "train.yaml"),
        "--json",
        str(tmp_path / "m.json"),
        "--no-progress",
    ]
    # --standalone keeps the rendezvous on localhost, GLOO_SOCKET_IFNAME the gloo links; one thread per rank
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["world_size"] == 2 and metrics["step"] == 6
    assert json.loads((tmp_path / "ckpt" / "train_state.json").read_text())["step"] == 6
    load_checkpoint(tmp_path / "ckpt")


@pytest.mark.slow
def test_vit_transformer_rollout_frameskip_vicreg_options_train(dot_data: Path, tmp_path: Path) -> None:
    model = dataclasses.replace(
        TINY.model,
        history=2,
        frameskip=2,
        encoder=EncoderConfig(kind="vit", patch_size=8, vit_dim=32, vit_depth=1, vit_heads=2, projector_hidden_dim=32),
        predictor=PredictorConfig(kind="transformer", hidden_dim=32, depth=1, heads=2),
    )
    config = dataclasses.replace(
        TINY,
        model=model,
        horizon=2,
        rollout=True,
        regularizer="vicreg",
        steps=4,
        eval_every=4,
        batch_size=8,
        val_windows=16,
        probe_frames=32,
    )
    metrics = train(dot_data, tmp_path / "ckpt", config, progress=False)
    assert {"rollout_loss", "pred_loss", "probe_r2"} <= set(metrics)
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert (loaded.history, loaded.action_dim, loaded.frameskip) == (2, 4, 2)
