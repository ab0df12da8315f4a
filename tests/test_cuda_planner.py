"""The CUDA backend equals the reference on injected noise (fp32: relative 1e-4), stays within a
stated tolerance with tensor cores (tf32, bf16) and picks the same plan on a well-conditioned
problem, is deterministic by seed, draws the host's Philox stream, and solves the analytic problem.
GPU tests skip with the reason where there is no GPU; the others run everywhere."""

import argparse
import contextlib
import dataclasses
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from planning_helpers import (
    FULL_COST,
    PLANNER_OPTIONS,
    assert_plans_equal,
    assert_rel,
    injected_noise_problem,
    linear_mlp_dynamics,
    random_dynamics,
)

from ami_robot import _core, build_info
from ami_robot.cost import CostConfig
from ami_robot.planning import CEMPlanner, MPPIPlanner, PlannerConfig
from ami_robot.planning.backends import cuda_arrays
from ami_robot.planning.backends.native import NativeBackend

BUILT_WITH_CUDA = hasattr(_core, "cuda_planner")
HAS_GPU = BUILT_WITH_CUDA and _core.cuda_device_count() > 0
NO_GPU_REASON = "built without CUDA" if not BUILT_WITH_CUDA else "no CUDA GPU (cuda_device_count()==0)"

# Tensor-core tolerances, relative to the largest reference value (operands rounded to 10 / 7
# mantissa bits, float32 accumulation, a few layers and steps deep).
TOLERANCE = {"fp32": 1e-4, "tf32": 5e-3, "bf16": 2e-2}  # CPU emulation of these paths: 7e-4 and 3e-3


def _native(kind, dyn, config, method):
    return NativeBackend(kind, dyn, config, config.action_limits(dyn.action_dim), method)


# ------------------------------------------------------------------------------------ everywhere


def _cmake_cache() -> Path | None:
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    caches = sorted((Path(__file__).parents[1] / "build").glob(f"{tag}-*/CMakeCache.txt"))
    return caches[0] if len(caches) == 1 else None


def test_build_info_reports_cuda_as_configured():
    info = build_info()
    assert info["cuda"] == BUILT_WITH_CUDA == hasattr(_core, "cuda_device_count")
    assert bool(info["cuda_architectures"]) == info["cuda"]
    cache = _cmake_cache()
    if cache is None:
        pytest.skip("no single CMake cache of this interpreter's build under build/ to compare with")
    text = cache.read_text()
    option = re.search(r"^AMI_ROBOT_CUDA:STRING=(\w+)$", text, re.M)
    compiler = re.search(r"^CMAKE_CUDA_COMPILER:\w+=(.*)$", text, re.M)
    cuda_sources = list((Path(__file__).parents[1] / "csrc" / "cuda").glob("*.cu"))
    expected = (
        option is not None
        and option.group(1) != "OFF"
        and compiler is not None
        and compiler.group(1).strip() not in ("", "CMAKE_CUDA_COMPILER-NOTFOUND")
        and bool(cuda_sources)
    )
    assert info["cuda"] == expected, f"build_info()['cuda']={info['cuda']} but {cache} says {expected}"


def test_cuda_precision_is_validated():
    with pytest.raises(ValueError, match="cuda_precision"):
        PlannerConfig(cuda_precision="fp16")


@pytest.mark.skipif(HAS_GPU, reason="checks the behaviour without a GPU")
def test_cuda_without_gpu_says_so():
    _, dyn = random_dynamics()
    with pytest.raises(ValueError, match="no CUDA GPU"):
        CEMPlanner(dyn, PlannerConfig(horizon=2, samples=8, iterations=1, elites=2), backend="cuda")
    if BUILT_WITH_CUDA:
        assert _core.cuda_device_count() == 0
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            _native("cuda", dyn, PlannerConfig(horizon=2, samples=8, iterations=1, elites=2), "cem")
    from ami_robot.commands import bench

    out = io.StringIO()
    args = argparse.Namespace(
        target="planner", device="cuda", json=None, configs="lewm", repeats=1, threads=0, no_compile=True
    )
    with contextlib.redirect_stdout(out):
        assert bench.run(args) == 2
    assert out.getvalue().startswith("no CUDA GPU: ")


class _FakeCudaArray:
    def __init__(self, shape, typestr="<f4", strides=None, ptr=4096):
        self.__cuda_array_interface__ = dict(
            shape=shape, typestr=typestr, strides=strides, data=(ptr, False), version=3
        )


def test_cuda_array_checks():
    assert cuda_arrays.cuda_pointer(_FakeCudaArray((2, 3)), "z0", ((2, 3),), 0) == 4096
    assert cuda_arrays.cuda_pointer(_FakeCudaArray((2, 3), strides=(12, 4)), "z0", ((2, 3),), 0) == 4096
    with pytest.raises(TypeError, match="float32"):
        cuda_arrays.cuda_pointer(_FakeCudaArray((2, 3), typestr="<f8"), "z0", ((2, 3),), 0)
    with pytest.raises(ValueError, match="expected shape"):
        cuda_arrays.cuda_pointer(_FakeCudaArray((3, 2)), "z0", ((2, 3),), 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        cuda_arrays.cuda_pointer(_FakeCudaArray((2, 3), strides=(4, 8)), "z0", ((2, 3),), 0)
    with pytest.raises(TypeError, match="CUDA array"):
        cuda_arrays.cuda_pointer(np.zeros((2, 3), np.float32), "z0", ((2, 3),), 0)
    assert cuda_arrays.is_cuda_array(_FakeCudaArray((1,)))
    assert not cuda_arrays.is_cuda_array(np.zeros(3)) and not cuda_arrays.is_cuda_array(torch.zeros(3))


# ------------------------------------------------------------------------------------ GPU only


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason=NO_GPU_REASON)
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
@pytest.mark.parametrize("activation", ["gelu", "silu", "relu", "tanh"])
@pytest.mark.parametrize("history", [1, 3])
def test_rollout_cost_matches_reference(precision, activation, history):
    _, dyn = random_dynamics(
        latent_dim=12, action_dim=3, hidden_dim=40, depth=2, activation=activation, history=history
    )
    config = PlannerConfig(horizon=4, samples=37, iterations=1, elites=3, cost=FULL_COST, cuda_precision=precision)
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (37, 4, 3)).astype(np.float32)
    z0 = rng.standard_normal((history, 12)).astype(np.float32)
    goal = rng.standard_normal(12).astype(np.float32)
    prev = rng.uniform(-1, 1, 3).astype(np.float32)
    reference, cuda = _native("reference", dyn, config, "cem"), _native("cuda", dyn, config, "cem")
    tol = TOLERANCE[precision]
    for p in (prev, None):
        assert_rel(cuda.rollout_cost(actions, z0, goal, p), reference.rollout_cost(actions, z0, goal, p), tol)
    assert_rel(cuda.rollout_cost(actions[:5], z0, goal, prev), reference.rollout_cost(actions[:5], z0, goal, prev), tol)
    assert_rel(cuda.predict(actions, z0), reference.predict(actions, z0), tol)


@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
@pytest.mark.parametrize("options", PLANNER_OPTIONS)
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason=NO_GPU_REASON)
def test_plan_matches_reference_on_injected_noise(planner_cls, options):
    p = injected_noise_problem(**options)
    reference = planner_cls(p.dynamics, p.config, backend="reference")
    cuda = planner_cls(p.dynamics, p.config, backend="cuda")
    for step in range(2):  # the second call exercises the warm start
        noise = reference.sample_noise(step)
        for previous_action in (p.previous_action, None) if step == 0 else (p.previous_action,):
            expected = reference.plan(p.z0, p.goal, previous_action=previous_action, noise=noise)
            assert_plans_equal(cuda.plan(p.z0, p.goal, previous_action=previous_action, noise=noise), expected)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason=NO_GPU_REASON)
def test_device_philox_stream_equals_host():
    for seed, plan_index, start in [(0, 0, 0), (1234, 7, 3), (2**63 + 5, 2**32 + 1, 2**33 + 2)]:
        host = _core.philox_normal(seed, plan_index, start, 4099)
        device = _core.cuda_philox_normal(seed, plan_index, start, 4099)
        # double log/sin/cos differ by 1-2 double ulp between glibc and CUDA: at most one float ulp here
        np.testing.assert_allclose(device, host, rtol=2e-7, atol=1e-7)
        assert np.mean(device == host) > 0.999


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason=NO_GPU_REASON)
@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
def test_seeded_plan_matches_reference_and_is_deterministic(planner_cls):
    _, dyn = random_dynamics(latent_dim=16, action_dim=3, hidden_dim=64, depth=2)
    config = PlannerConfig(horizon=4, samples=100, iterations=5, elites=10, seed=99, temperature=0.3)
    z0, goal = np.zeros(16, np.float32), np.full(16, 0.5, np.float32)
    reference = planner_cls(dyn, config, backend="reference")
    first, second = planner_cls(dyn, config, backend="cuda"), planner_cls(dyn, config, backend="cuda")
    for _ in range(3):
        expected = reference.plan(z0, goal)
        a, b = first.plan(z0, goal), second.plan(z0, goal)
        assert_rel(a.actions, expected.actions)
        assert_rel(a.cost, expected.cost)
        np.testing.assert_array_equal(a.actions, b.actions)  # same seed, same bits
        assert a.cost == b.cost and a.best_cost == b.best_cost
    first.reset()
    fresh = planner_cls(dyn, config, backend="cuda")
    np.testing.assert_array_equal(first.plan(z0, goal).actions, fresh.plan(z0, goal).actions)
    other_seed = planner_cls(dyn, dataclasses.replace(config, seed=100), backend="cuda").plan(z0, goal)
    assert not np.array_equal(other_seed.actions, first.plan(z0, goal).actions)


LQ_B = np.array([[1.0, 0.2], [-0.3, 0.8], [0.1, 0.5]], np.float32)
LQ_Z0 = np.array([0.2, -0.1, 0.3], np.float32)
LQ_GOAL = np.array([1.0, 0.4, 1.1], np.float32)
LQ_H, LQ_LAM = 4, 0.5


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason=NO_GPU_REASON)
@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
def test_analytic_problem_converges_in_every_precision(planner_cls):
    """z' = z + B a (an exact MLP), cost |z_H - g|^2 + lam sum |a_t|^2: a well-conditioned problem
    whose optimum is known; fp32, tf32 and bf16 all find it and agree on the plan."""
    a = np.linalg.solve(LQ_H * LQ_B.T @ LQ_B + LQ_LAM * np.eye(2), LQ_B.T @ (LQ_GOAL - LQ_Z0))
    best = np.tile(a, (LQ_H, 1))
    config = PlannerConfig(
        horizon=LQ_H,
        samples=256,
        iterations=25,
        elites=32,
        init_std=0.5,
        min_std=0.002,
        temperature=0.05,
        cost=CostConfig(goal_weight=1.0, action_weight=LQ_LAM),
    )
    plans = {}
    for precision in ("fp32", "tf32", "bf16"):
        planner = planner_cls(
            linear_mlp_dynamics(LQ_B), dataclasses.replace(config, cuda_precision=precision), backend="cuda"
        )
        plans[precision] = planner.plan(LQ_Z0, LQ_GOAL).actions
        np.testing.assert_allclose(plans[precision], best, atol=0.03 if precision == "fp32" else 0.05)
    np.testing.assert_allclose(plans["tf32"], plans["fp32"], atol=0.02)
    np.testing.assert_allclose(plans["bf16"], plans["fp32"], atol=0.05)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason=NO_GPU_REASON)
def test_lewm_sized_plan_matches_reference():
    """The benchmark's shape (N=300, H=5, D=192, A=10, width 512, depth 4) on injected noise."""
    _, dyn = random_dynamics(latent_dim=192, action_dim=10, hidden_dim=512, depth=4)
    config = PlannerConfig(horizon=5, samples=300, iterations=3, elites=30)
    rng = np.random.default_rng(3)
    z0, goal = rng.standard_normal(192).astype(np.float32), rng.standard_normal(192).astype(np.float32)
    reference, cuda = CEMPlanner(dyn, config, backend="reference"), CEMPlanner(dyn, config, backend="cuda")
    noise = reference.sample_noise(0)
    expected, actual = reference.plan(z0, goal, noise=noise), cuda.plan(z0, goal, noise=noise)
    assert_rel(actual.actions, expected.actions)
    assert_rel(actual.cost, expected.cost)


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_GPU and torch.cuda.is_available()), reason=NO_GPU_REASON + " or torch without CUDA")
def test_plan_on_torch_cuda_tensors_equals_host_plan():
    _, dyn = random_dynamics(latent_dim=12, action_dim=3, hidden_dim=32, depth=2, history=2)
    config = PlannerConfig(horizon=4, samples=64, iterations=4, elites=8, seed=5)
    rng = np.random.default_rng(4)
    z0, goal = rng.standard_normal((2, 12)).astype(np.float32), rng.standard_normal(12).astype(np.float32)
    prev = np.array([0.1, -0.2, 0.3], np.float32)
    host, device = CEMPlanner(dyn, config, backend="cuda"), CEMPlanner(dyn, config, backend="cuda")
    dev = torch.device("cuda", device.backend.core_planner.device)
    for _ in range(2):  # second call: warm start from the device-resident previous plan
        expected = host.plan(z0, goal, previous_action=prev)
        actual = device.plan(
            torch.as_tensor(z0, device=dev),
            torch.as_tensor(goal, device=dev),
            previous_action=torch.as_tensor(prev, device=dev),
        )
        assert isinstance(actual.actions, torch.Tensor) and actual.actions.device == dev
        np.testing.assert_array_equal(actual.actions.cpu().numpy(), expected.actions)
        np.testing.assert_array_equal(actual.std.cpu().numpy(), expected.std)
        assert actual.cost == expected.cost and actual.plan_index == expected.plan_index
    with pytest.raises(TypeError, match="float32"):
        device.plan(torch.zeros(2, 12, dtype=torch.float64, device=dev), torch.as_tensor(goal, device=dev))
    with pytest.raises(ValueError, match="C-contiguous"):
        device.plan(torch.zeros(12, 2, device=dev).T, torch.as_tensor(goal, device=dev))
    with pytest.raises(ValueError, match="not device memory"):  # a host pointer reaches the core's check
        host_ptr = torch.as_tensor(z0).data_ptr()
        device.backend.core_planner.plan_device(host_ptr, host_ptr, 0, host_ptr, host_ptr, 0, 0, host_ptr)
