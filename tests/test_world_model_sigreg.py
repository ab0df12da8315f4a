"""SIGReg (Epps-Pulley on random 1-D projections) and VICReg."""

from __future__ import annotations

import math

import torch

from ami_robot.training.losses import vicreg
from ami_robot.world_model.sigreg import SIGRegConfig, epps_pulley, random_directions, sigreg

CONFIG = SIGRegConfig(directions=256, knots=17, t_max=3.0)
# For N(0, 1) samples E[EP] = integral (1 - exp(-t^2)) exp(-t^2/2) dt over [-3, 3], about 1.06, whatever N.
GAUSSIAN_EXPECTATION = math.sqrt(2 * math.pi) * (
    math.erf(3 / math.sqrt(2)) - math.erf(3 * math.sqrt(1.5)) / math.sqrt(3)
)


def test_gaussian_samples_score_near_the_null_expectation() -> None:
    torch.manual_seed(0)
    for n in (256, 4096):
        value = float(sigreg(torch.randn(n, 32), step=0, config=CONFIG))
        assert 0.5 * GAUSSIAN_EXPECTATION < value < 2 * GAUSSIAN_EXPECTATION, value
        assert value / n < 0.01  # the unscaled statistic, a distance between distributions, is ~0


def test_collapsed_constant_and_misscaled_embeddings_score_high() -> None:
    torch.manual_seed(0)
    n = 1024
    gaussian = float(sigreg(torch.randn(n, 32), 0, CONFIG))
    constant = float(sigreg(torch.full((n, 32), 0.3), 0, CONFIG))
    collapsed = float(sigreg(torch.randn(n, 1) * torch.ones(1, 32) / math.sqrt(32) * 0.1, 0, CONFIG))
    rank_one = float(sigreg(torch.randn(n, 1) @ torch.randn(1, 32), 0, CONFIG))
    shifted = float(sigreg(torch.randn(n, 32) + 2.0, 0, CONFIG))
    for bad in (constant, collapsed, rank_one, shifted):
        assert bad > 50 * gaussian, (bad, gaussian)


def test_directions_are_unit_and_depend_only_on_the_step() -> None:
    a, b, c = random_directions(16, 64, seed=7), random_directions(16, 64, seed=7), random_directions(16, 64, seed=8)
    torch.testing.assert_close(a.norm(dim=0), torch.ones(64))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_epps_pulley_matches_direct_numeric_integration() -> None:
    torch.manual_seed(1)
    x = torch.randn(200, 1, dtype=torch.float64) * 1.3 + 0.2
    t = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    ecf_real, ecf_imag = torch.cos(x * t).mean(0), torch.sin(x * t).mean(0)
    phi = torch.exp(-0.5 * t**2)
    dense = 200 * torch.trapezoid(((ecf_real - phi) ** 2 + ecf_imag**2) * phi, t)
    coarse = epps_pulley(x, knots=17, t_max=3.0)[0]
    assert abs(float(coarse) - float(dense)) / float(dense) < 0.05


def test_gradient_pushes_collapsed_embeddings_apart() -> None:
    z = (torch.randn(128, 8) * 0.01).requires_grad_()
    optimizer = torch.optim.Adam([z], lr=0.05)
    start = float(sigreg(z.detach(), 0, CONFIG))
    for step in range(200):
        loss = sigreg(z, step, CONFIG)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(sigreg(z.detach(), 0, CONFIG)) < start / 10
    assert float(z.detach().std(0).mean()) > 0.3


def test_vicreg_low_for_whitened_high_for_collapsed() -> None:
    torch.manual_seed(0)
    assert float(vicreg(torch.randn(2048, 16))) < 0.1
    assert float(vicreg(torch.zeros(2048, 16))) > 0.9
