"""Data-parallel training under torchrun (DDP; gloo on CPU, nccl on GPU): joining and leaving the
process group, the device of each rank, and BatchNorm statistics averaged over ranks."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> Distributed:
    """Join the process group that torchrun describes in the environment (WORLD_SIZE > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def leave_process_group() -> None:
    """Leave the process group (if any) once every rank is past its last collective.

    Gloo aborts a rank whose peer closes its connection while a message is still on the way, which
    a barrier followed by teardown can do under load (pytorch/gloo#155). The ranks first meet in
    the rendezvous store, which carries no gloo traffic; rank 0 leaves last.
    """
    if not dist.is_initialized():
        return
    rank, world_size = dist.get_rank(), dist.get_world_size()
    if world_size > 1:
        store = dist.distributed_c10d._get_default_store()
        store.set(f"ami_robot/past_last_collective/{rank}", "1")
        store.wait([f"ami_robot/past_last_collective/{r}" for r in range(world_size)])
        if rank != 0:
            store.set(f"ami_robot/leaving/{rank}", "1")
        else:
            store.wait([f"ami_robot/leaving/{r}" for r in range(1, world_size)])
    dist.destroy_process_group()


def rank_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def average_buffers(model: nn.Module, world_size: int) -> None:
    """Average BatchNorm running statistics over processes (DDP keeps each rank's own)."""
    if world_size <= 1:
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            buffer.div_(world_size)
