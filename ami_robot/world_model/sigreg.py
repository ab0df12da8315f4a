"""SIGReg: Sketched Isotropic Gaussian Regularisation (LeJEPA, Balestriero & LeCun 2025).

Embeddings z (N, D) are pushed towards an isotropic Gaussian by testing, along M random unit
directions u, whether the 1-D projections x = z u are N(0, 1). The test is Epps-Pulley's:

    EP = N * integral |phi_N(t) - exp(-t^2/2)|^2 w(t) dt,   w(t) = exp(-t^2/2),

with phi_N(t) = mean_n exp(i t x_n) the empirical characteristic function, integrated by the
trapezoid rule on `knots` points of [-t_max, t_max], and averaged over the M directions.
No standardisation is applied: mean and scale are part of what is tested.

The directions are drawn from a generator seeded by the training step, so every process of a
distributed run draws the same ones; under torch.distributed the characteristic function is
averaged over processes (with gradient), so the statistic is that of the global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class SIGRegConfig:
    directions: int = 1024
    knots: int = 17
    t_max: float = 3.0

    def __post_init__(self) -> None:
        if self.directions < 1 or self.knots < 2 or self.t_max <= 0:
            raise ValueError(f"invalid SIGReg config {self}")


def random_directions(dim: int, count: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """`count` unit vectors in R^dim as columns (dim, count), a pure function of `seed`."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    directions = torch.randn(dim, count, generator=generator)
    return (directions / directions.norm(dim=0, keepdim=True)).to(device)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _mean_over_processes(local: torch.Tensor, world_size: int) -> torch.Tensor:
    """The mean of `local` over processes, with gradient flowing to this process's term only.

    The gradient carries a factor world_size (d mean / d local = 1 instead of 1/world_size),
    which cancels DDP's averaging of parameter gradients, so the update is the gradient of the
    statistic of the global batch.
    """
    total = local.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return local + (total / world_size - local.detach())


def epps_pulley(
    projections: torch.Tensor, knots: int = 17, t_max: float = 3.0, reduce_across_processes: bool = True
) -> torch.Tensor:
    """Epps-Pulley statistic of each column of `projections` (N, M) against N(0, 1) -> (M,).

    With `reduce_across_processes` under torch.distributed, N is the global batch.
    """
    t = torch.linspace(-t_max, t_max, knots, device=projections.device, dtype=projections.dtype)
    gaussian_cf = torch.exp(-0.5 * t.square())
    xt = projections.unsqueeze(-1) * t
    cos_mean, sin_mean = xt.cos().mean(0), xt.sin().mean(0)
    n = projections.shape[0]
    if reduce_across_processes and _distributed():
        world = dist.get_world_size()
        cos_mean, sin_mean = _mean_over_processes(cos_mean, world), _mean_over_processes(sin_mean, world)
        n = n * world
    error = (cos_mean - gaussian_cf).square() + sin_mean.square()
    return n * torch.trapezoid(error * gaussian_cf, t, dim=-1)


def sigreg(
    z: torch.Tensor, step: int, config: SIGRegConfig = SIGRegConfig(), reduce_across_processes: bool = True
) -> torch.Tensor:
    """SIGReg of embeddings z (N, D) with directions drawn for `step`; a scalar."""
    if z.dim() != 2:
        raise ValueError(f"sigreg expects embeddings (N, D), got shape {tuple(z.shape)}")
    directions = random_directions(z.shape[1], config.directions, seed=step, device=z.device).to(z.dtype)
    return epps_pulley(z @ directions, config.knots, config.t_max, reduce_across_processes).mean()
