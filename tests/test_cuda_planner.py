"""The CUDA backend beyond parity with the oracle (that is tests/test_planning_parity.py): it is
deterministic by seed, draws the host's Philox stream, solves the analytic problem in every
precision with the same plan, plans on device arrays (torch CUDA tensors) with the planner's warm
start and counter, and says why it cannot run. GPU tests skip with the reason where there is no
GPU; the others run everywhere."""

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
from planning_helpers import linear_mlp_dynamics, random_dynamics

from ami_robot import _core, build_info
from ami_robot.cost import CostConfig
from ami_robot.errors import BackendUnavailableError
from ami_robot.planning import CEMPlanner, MPPIPlanner, PlannerConfig
from ami_robot.planning.backends import RawPlan
from ami_robot.planning.backends.cuda import CudaBackend, cuda_pointer, is_cuda_array

BUILT_WITH_CUDA = hasattr(_core, "cuda_planner")
HAS_GPU = BUILT_WITH_CUDA and _core.cuda_device_count() > 0
NO_GPU_REASON = "built without CUDA" if not BUILT_WITH_CUDA else "no CUDA GPU (cuda_device_count()==0)"


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
    config = PlannerConfig(horizon=2, samples=8, iterations=1, elites=2)
    with pytest.raises(BackendUnavailableError, match="backend 'cuda': no CUDA GPU"):
        CEMPlanner(dyn, config, backend="cuda")
    with pytest.raises(BackendUnavailableError, match="backend 'cuda': no CUDA GPU"):
        CudaBackend(dyn, config, config.action_limits(dyn.action_dim), "cem")
    if BUILT_WITH_CUDA:
        assert _core.cuda_device_count() == 0
    from ami_robot.commands import bench

    out = io.StringIO()
    args = argparse.Namespace(
        target="planner",
        device="cuda",
        json=None,
        configs="lewm",
        repeats=1,
        threads=0,
        no_compile=True,
        pairs=1,
        seeds=1,
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
    assert cuda_pointer(_FakeCudaArray((2, 3)), "z0", ((2, 3),), 0) == 4096
    assert cuda_pointer(_FakeCudaArray((2, 3), strides=(12, 4)), "z0", ((2, 3),), 0) == 4096
    with pytest.raises(TypeError, match="float32"):
        cuda_pointer(_FakeCudaArray((2, 3), typestr="<f8"), "z0", ((2, 3),), 0)
    with pytest.raises(ValueError, match="expected shape"):
        cuda_pointer(_FakeCudaArray((3, 2)), "z0", ((2, 3),), 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        cuda_pointer(_FakeCudaArray((2, 3), strides=(4, 8)), "z0", ((2, 3),), 0)
    with pytest.raises(TypeError, match="CUDA array"):
        cuda_pointer(np.zeros((2, 3), np.float32), "z0", ((2, 3),), 0)
    assert is_cuda_array(_FakeCudaArray((1,)))
    assert not is_cuda_array(np.zeros(3)) and not is_cuda_array(torch.zeros(3))


class _RecordingCudaBackend(CudaBackend):
    """A CudaBackend without a GPU: plan_device records its arguments and returns a plan whose mean
    is a torch tensor 100 * plan_index + [0, 1, ..., H*A) (the stand-in for a device tensor)."""

    def __init__(self, config: PlannerConfig, action_dim: int) -> None:  # no super(): no core planner
        self.name, self.config, self.action_dim = "cuda", config, action_dim
        self.calls: list[dict] = []

    def plan_device(self, z0, goal, previous_action, init_mean, init_std, noise, plan_index):
        self.calls.append(dict(z0=z0, init_mean=init_mean, init_std=init_std, noise=noise, plan_index=plan_index))
        H, A = self.config.horizon, self.action_dim
        mean = 100.0 * plan_index + torch.arange(H * A, dtype=torch.float32).view(H, A)
        return RawPlan(mean, torch.ones(H, A), 1.0, mean, 0.5, torch.ones(self.config.iterations, H, A))


@pytest.mark.parametrize("noise_beta", [0.0, 2.0])
def test_planner_runs_cuda_arrays_through_plan_device_with_its_warm_start_and_counter(noise_beta):
    """The planner, not the backend, shifts the previous plan and counts plans, on the device path
    as on the host path; a host plan after a device plan starts from the device plan, shifted."""
    _, dyn = random_dynamics()
    config = PlannerConfig(horizon=3, samples=8, iterations=2, elites=2, init_std=0.7, noise_beta=noise_beta)
    planner = CEMPlanner(dyn, config, backend="cpu")
    planner.backend = backend = _RecordingCudaBackend(config, dyn.action_dim)
    z0 = _FakeCudaArray((1, 8))
    first, second = planner.plan(z0, np.ones(8, np.float32)), planner.plan(z0, np.ones(8, np.float32))
    assert [c["plan_index"] for c in backend.calls] == [0, 1] and (first.plan_index, second.plan_index) == (0, 1)
    assert backend.calls[0]["z0"] is z0 and isinstance(first.actions, torch.Tensor) and first.cost == 1.0
    np.testing.assert_array_equal(backend.calls[0]["init_mean"], np.zeros((3, 3)))
    shifted = torch.cat([first.actions[1:], first.actions[-1:]])
    assert torch.equal(backend.calls[1]["init_mean"], shifted)
    np.testing.assert_array_equal(backend.calls[1]["init_std"], np.full((3, 3), 0.7, np.float32))
    for call in backend.calls:
        if noise_beta > 0:  # colored noise is drawn by the planner for its plan_index
            np.testing.assert_array_equal(call["noise"], planner.sample_noise(call["plan_index"]))
        else:  # white noise: the backend's own Philox stream
            assert call["noise"] is None
    np.testing.assert_array_equal(planner.initial_mean(), torch.cat([second.actions[1:], second.actions[-1:]]))
    planner.reset()
    planner.plan(z0, np.ones(8, np.float32))
    assert backend.calls[-1]["plan_index"] == 0
    np.testing.assert_array_equal(backend.calls[-1]["init_mean"], np.zeros((3, 3)))


# ------------------------------------------------------------------------------------ GPU only


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
def test_seeded_plan_is_deterministic(planner_cls):
    """Same seed, same bits; reset() restarts the stream; another seed differs. (Seeded plans equal
    the oracle's on this problem: test_planning_parity.test_seeded_plans_match_the_oracle[wide].)"""
    _, dyn = random_dynamics(latent_dim=16, action_dim=3, hidden_dim=64, depth=2)
    config = PlannerConfig(horizon=4, samples=100, iterations=5, elites=10, seed=99, temperature=0.3)
    z0, goal = np.zeros(16, np.float32), np.full(16, 0.5, np.float32)
    first, second = planner_cls(dyn, config, backend="cuda"), planner_cls(dyn, config, backend="cuda")
    for _ in range(3):
        a, b = first.plan(z0, goal), second.plan(z0, goal)
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
        std_decay=0.8,  # MPPI's exploration std anneals to min_std; CEM refits its own
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
        np.testing.assert_array_equal(actual.std_history.cpu().numpy(), expected.std_history)
        assert actual.cost == expected.cost and actual.plan_index == expected.plan_index
    with pytest.raises(TypeError, match="float32"):
        device.plan(torch.zeros(2, 12, dtype=torch.float64, device=dev), torch.as_tensor(goal, device=dev))
    with pytest.raises(ValueError, match="C-contiguous"):
        device.plan(torch.zeros(12, 2, device=dev).T, torch.as_tensor(goal, device=dev))
    with pytest.raises(ValueError, match="not device memory"):  # a host pointer reaches the core's check
        host_ptr = torch.as_tensor(z0).data_ptr()
        device.backend.core_planner.plan_device(host_ptr, host_ptr, 0, host_ptr, host_ptr, 0, 0, host_ptr)
