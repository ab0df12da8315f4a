import ast
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from planning_helpers import LinearDynamics, float64_cost_and_rounding, random_dynamics

import ami_robot
from ami_robot import _core
from ami_robot.config import ConfigError
from ami_robot.cost import CostConfig
from ami_robot.errors import BackendUnavailableError, PlanningError
from ami_robot.planning import CEMPlanner, MLPDynamics, MPPIPlanner, PlannerConfig, api, available_backends, backends
from ami_robot.planning.backends.native import NativeBackend
from ami_robot.world_model.ensemble import PredictorEnsemble

SMALL = PlannerConfig(horizon=3, samples=24, iterations=2, elites=4)


def test_available_backends_and_auto():
    names = available_backends()
    assert names[-1] == "torch" and "cpu" in names
    _, dyn = random_dynamics()
    assert CEMPlanner(dyn, SMALL, backend="auto").backend_name == names[0]
    info = ami_robot.build_info()
    assert {"cuda", "cuda_architectures", "compiler", "openmp", "threads", "simd_flags"} <= set(info)


def test_auto_plans_an_mlp_ensemble_on_the_cpu_backend_and_cuda_refuses_it(monkeypatch):
    ensemble = PredictorEnsemble([random_dynamics(seed=seed)[0] for seed in range(3)])
    config = PlannerConfig(horizon=3, samples=24, iterations=2, elites=4, cost=CostConfig(disagreement_weight=2.0))
    z0, goal = np.zeros(8, np.float32), np.linspace(-1, 1, 8, dtype=np.float32)
    auto = CEMPlanner(ensemble, config, backend="auto")
    assert auto.backend_name == "cpu"
    expected = CEMPlanner(ensemble, config, backend="torch").plan(z0, goal)
    np.testing.assert_allclose(auto.plan(z0, goal).actions, expected.actions, atol=1e-4)
    B = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)
    others = PredictorEnsemble([LinearDynamics(B), LinearDynamics(2 * B)])
    assert CEMPlanner(others, config, backend="auto", action_dim=2).backend_name == "torch"
    with pytest.raises(TypeError, match="MLPPredictor"):
        CEMPlanner(others, config, backend="cpu", action_dim=2)
    monkeypatch.setattr(backends, "core_module", lambda: None)
    assert CEMPlanner(ensemble, config, backend="auto").backend_name == "torch"
    monkeypatch.setattr(api, "resolve_backend", lambda choice: "cuda")
    with pytest.raises(BackendUnavailableError, match="'cuda' does not run a predictor ensemble"):
        CEMPlanner(ensemble, config, backend="cuda")


def test_backend_names_are_declared_once():
    assert backends.BACKEND_NAMES == ("cuda", "cpu", "torch", "reference")
    assert backends.BACKEND_CHOICES == ("auto", *backends.BACKEND_NAMES)
    assert set(available_backends()) <= set(backends.BACKEND_NAMES)


def test_a_backend_this_build_cannot_run_raises_backend_unavailable(monkeypatch):
    _, dyn = random_dynamics()
    monkeypatch.setattr(backends, "core_module", lambda: None)
    assert available_backends() == ["torch"]
    assert CEMPlanner(dyn, SMALL, backend="auto").backend_name == "torch"
    for name in ("cpu", "reference", "cuda"):
        with pytest.raises(BackendUnavailableError, match=f"backend '{name}': .*not importable"):
            CEMPlanner(dyn, SMALL, backend=name)


def test_backends_do_not_import_the_planner():
    """The planner (api.py) drives the backends; no backend module imports it back."""
    planner_names = {"ami_robot.planning.api", *(f"ami_robot.planning.{n}" for n in api.__all__)}
    for path in Path(backends.__file__).parent.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        assert not imported & planner_names, path.name


@pytest.mark.parametrize("backend", ["cpu", "torch", "reference"])
def test_same_seed_same_plan_and_different_seed_differs(backend):
    _, dyn = random_dynamics()
    z0, goal = np.zeros(8, np.float32), np.linspace(-1, 1, 8, dtype=np.float32)
    plans = [CEMPlanner(dyn, SMALL, backend=backend).plan(z0, goal).actions for _ in range(2)]
    np.testing.assert_array_equal(plans[0], plans[1])
    other = PlannerConfig(horizon=3, samples=24, iterations=2, elites=4, seed=99)
    assert not np.array_equal(CEMPlanner(dyn, other, backend=backend).plan(z0, goal).actions, plans[0])


def test_reset_restarts_the_stream_and_warm_start_shifts():
    _, dyn = random_dynamics()
    planner = CEMPlanner(dyn, SMALL, backend="cpu")
    z0, goal = np.zeros(8, np.float32), np.ones(8, np.float32)
    first = planner.plan(z0, goal)
    np.testing.assert_array_equal(planner.initial_mean(), np.concatenate([first.actions[1:], first.actions[-1:]]))
    np.testing.assert_array_equal(planner.initial_mean(advance=2), first.actions[[2, 2, 2]])
    for advance in (0, SMALL.horizon + 1):
        with pytest.raises(ValueError, match="advance"):
            planner.plan(z0, goal, advance=advance)
    assert planner.plan(z0, goal).plan_index == 1
    planner.reset()
    np.testing.assert_array_equal(planner.plan(z0, goal).actions, first.actions)


def test_result_fields_and_torch_tensor_inputs():
    _, dyn = random_dynamics(history=2)
    config = PlannerConfig(horizon=4, samples=24, iterations=2, elites=4, action_low=-0.5, action_high=0.5)
    planner = MPPIPlanner(dyn, config, backend="cpu")
    result = planner.plan(torch.zeros(2, 8, dtype=torch.float64), torch.ones(8))
    assert result.actions.shape == (4, 3) and result.actions.dtype == np.float32
    assert np.abs(result.actions).max() <= 0.5 and np.isfinite(result.cost) and result.elapsed_s > 0
    assert result.backend == "cpu"


def test_torch_backend_takes_any_module():
    B = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)
    planner = CEMPlanner(LinearDynamics(B), SMALL, backend="torch", action_dim=2)
    assert planner.plan(np.zeros(3, np.float32), np.ones(3, np.float32)).actions.shape == (3, 2)
    assert planner.plan(np.zeros((4, 3), np.float32), np.ones(3, np.float32)).actions.shape == (3, 2)  # history 4
    assert CEMPlanner(LinearDynamics(B), SMALL, backend="auto", action_dim=2).backend_name == "torch"
    with pytest.raises(TypeError, match="MLPPredictor"):
        CEMPlanner(LinearDynamics(B), SMALL, backend="cpu", action_dim=2)
    with pytest.raises(TypeError, match="MLPPredictor"):
        MLPDynamics.from_module(torch.nn.Sequential(torch.nn.Linear(5, 3)))
    with pytest.raises(ValueError, match="action_dim is required"):
        CEMPlanner(LinearDynamics(B), SMALL, backend="torch")


def test_safetensors_round_trip(tmp_path):
    _, dyn = random_dynamics(activation="silu", history=2)
    path = tmp_path / "predictor.safetensors"
    dyn.save_safetensors(path)
    loaded = MLPDynamics.from_safetensors(path)
    assert loaded.config == dyn.config
    for a, b in zip(loaded.state_dict().values(), dyn.state_dict().values()):
        np.testing.assert_array_equal(a, b)
    z0, goal = np.zeros((2, 8), np.float32), np.ones(8, np.float32)
    np.testing.assert_array_equal(
        CEMPlanner(loaded, SMALL, backend="cpu").plan(z0, goal).actions,
        CEMPlanner(dyn, SMALL, backend="cpu").plan(z0, goal).actions,
    )
    from safetensors.numpy import save_file

    save_file(dyn.state_dict(), str(tmp_path / "bare.safetensors"))
    with pytest.raises(ValueError, match="sidecar"):
        MLPDynamics.from_safetensors(tmp_path / "bare.safetensors")


def _planner():
    return CEMPlanner(random_dynamics()[1], SMALL, backend="cpu")


NAN_GOAL = np.full(8, np.nan, np.float32)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda p: p.plan(np.zeros(7, np.float32), np.zeros(8, np.float32)), ValueError, "z0: expected shape"),
        (lambda p: p.plan(np.zeros((2, 8), np.float32), np.zeros(8, np.float32)), ValueError, "z0: expected shape"),
        (lambda p: p.plan(np.zeros(8, np.float32), np.zeros((1, 8), np.float32)), ValueError, "z_goal: expected shape"),
        (lambda p: p.plan(np.zeros(8, np.int64), np.zeros(8, np.float32)), TypeError, "z0: expected a floating"),
        (lambda p: p.plan(torch.zeros(8, dtype=torch.int32), np.zeros(8)), TypeError, "z0: expected a floating"),
        (
            lambda p: p.plan(np.full(8, np.inf, np.float32), np.zeros(8, np.float32)),
            ValueError,
            "z0 contains NaN or Inf",
        ),
        (lambda p: p.plan(np.zeros(8, np.float32), NAN_GOAL), ValueError, "z_goal contains NaN or Inf"),
        (lambda p: p.plan(np.zeros(8), np.zeros(8), previous_action=np.zeros(2)), ValueError, "previous_action"),
        (
            lambda p: p.plan(np.zeros(8), np.zeros(8), noise=np.zeros((2, 24, 3, 2))),
            ValueError,
            "noise: expected shape",
        ),
        (
            lambda p: p.plan(np.zeros(8), np.zeros(8), noise=np.full((2, 24, 3, 3), np.nan)),
            ValueError,
            "noise contains",
        ),
    ],
)
def test_bad_plan_inputs_raise(call, error, match):
    with pytest.raises(error, match=match):
        call(_planner())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(elites=30, samples=20), r"elites \(30\) > samples \(20\)"),
        (dict(horizon=0), r"horizon must be in \[1, 2147483647\], got 0"),
        (dict(action_low=1.0, action_high=-1.0), "action_low 1.0 > action_high -1.0"),
        (dict(momentum=1.0), "momentum"),
        (dict(temperature=0.0), "temperature"),
        (dict(std_decay=0.0), "std_decay"),
        (dict(std_decay=1.5), "std_decay"),
        (dict(control_cost_weight=-1.0), "control_cost_weight"),
        (dict(horizon="5"), "horizon must be an integer, got '5'"),
        (dict(horizon=2.5), "horizon must be an integer, got 2.5"),
        (dict(samples=True), "samples must be an integer, got True"),
        (dict(horizon=2**31), r"horizon must be in \[1, 2147483647\]"),
        (dict(seed=1.5), "seed must be an integer, got 1.5"),
        (dict(temperature=1e-50), r"temperature must be > 0.*float32.*1e-50 is 0\.0"),
        (dict(init_std=1e39), "init_std must be finite.*float32"),
        (dict(cost=CostConfig(goal_weight=1e39)), "goal_weight must be finite.*float32"),
        (dict(action_low=(-1e39, 0.0)), "action_low must be finite.*float32"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PlannerConfig(**kwargs)


def test_numpy_integers_are_plain_ints_in_the_config():
    config = PlannerConfig(horizon=np.int64(3), samples=np.int32(24), elites=4)
    assert type(config.horizon) is int and type(config.samples) is int


HOST_BACKENDS = ["reference", "cpu", "torch"]


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("as_module", [True, False], ids=["module", "mlp-dynamics"])
def test_non_finite_predictor_weights_raise_the_same_error_on_every_backend(backend, as_module):
    module, _ = random_dynamics()
    with torch.no_grad():
        module.net[3].bias[1] = float("inf") if as_module else float("nan")
    dynamics = module
    if not as_module:  # MLPDynamics refuses NaN itself: build one around the finite weights, then poison it
        _, dynamics = random_dynamics()
        dynamics.biases[1][1] = np.nan
    with pytest.raises(PlanningError, match=r"predictor weights: tensor 'net\.3\.bias' contains NaN or Inf"):
        CEMPlanner(dynamics, SMALL, backend=backend)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("planner_cls", [CEMPlanner, MPPIPlanner])
def test_finite_inputs_that_overflow_float32_raise_instead_of_planning_nan(backend, planner_cls):
    module, dyn = random_dynamics()
    planner = planner_cls(module if backend == "torch" else dyn, SMALL, backend=backend)
    huge = np.full(8, 1e30, np.float32)
    with pytest.raises(PlanningError, match=r"cost (nan|inf).* from finite inputs \(largest \|latent\| 1e\+30\)"):
        planner.plan(huge, np.zeros(8, np.float32))
    assert planner.plan_index == 0, "a plan that raised is not counted"


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize(
    "tensor, problem",
    [
        (torch.zeros(8, device="meta"), "a meta tensor holds no values"),
        (torch.zeros(8).to_sparse(), "expected a dense tensor, got layout torch.sparse_coo"),
    ],
    ids=["meta", "sparse"],
)
def test_tensors_without_dense_data_are_rejected_naming_the_argument(backend, tensor, problem):
    module, dyn = random_dynamics()
    planner = CEMPlanner(module if backend == "torch" else dyn, SMALL, backend=backend)
    with pytest.raises(TypeError, match=f"z0: {problem}"):
        planner.plan(tensor, np.zeros(8, np.float32))
    with pytest.raises(TypeError, match=f"z_goal: {problem}"):
        planner.plan(np.zeros(8, np.float32), tensor)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_bfloat16_tensors_are_widened_to_float32(backend):
    module, dyn = random_dynamics()
    z0 = torch.linspace(-1, 1, 8).to(torch.bfloat16)
    goal = torch.ones(8, dtype=torch.bfloat16)
    widened = CEMPlanner(module if backend == "torch" else dyn, SMALL, backend=backend).plan(z0, goal)
    exact = CEMPlanner(module if backend == "torch" else dyn, SMALL, backend=backend).plan(z0.float(), goal.float())
    np.testing.assert_array_equal(widened.actions, exact.actions)


def test_bad_limits_weights_and_backend_raise():
    module, dyn = random_dynamics()
    with pytest.raises(ValueError, match="low > high at index 1"):
        CEMPlanner(dyn, PlannerConfig(action_low=(0.0, 1.0, 0.0), action_high=(1.0, 0.0, 1.0)), backend="cpu")
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        CEMPlanner(dyn, SMALL, backend="gpu")
    with torch.no_grad():
        module.net[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="weights contain NaN or Inf"):
        MLPDynamics.from_module(module)


ROUNDING_AMPLIFICATION = 4.0
"""How many times the weight-perturbation estimate of a problem's float32 rounding error a backend may
be off the float64 truth beyond rtol 1e-4. On 750 random problems of the test below, every backend's
error was within rtol 1e-4 except on one (latent 2, action 3, hidden 2, depth 3, history 3: a width-2
LayerNorm), where it exceeded it by 0.18 times the estimate."""


@settings(max_examples=30, deadline=None)
@given(
    latent_dim=st.integers(1, 9),
    action_dim=st.integers(1, 4),
    hidden=st.integers(1, 40),
    depth=st.integers(1, 3),
    history=st.integers(1, 3),
    horizon=st.integers(1, 4),
    samples=st.integers(1, 40),
    data=st.data(),
)
def test_random_shapes_never_crash(latent_dim, action_dim, hidden, depth, history, horizon, samples, data):
    """Valid random problems plan with finite, in-bounds actions on every backend, and every
    backend's rollout costs agree with the float64 truth to within float32 rounding as this
    problem amplifies it (a tiny random network can be ill-conditioned: a width-2 LayerNorm over
    nearly equal inputs). (Plans are compared on fixed problems in test_planning_parity: with random
    tiny networks, near-tied costs may legitimately order elites differently.)"""
    elites = data.draw(st.integers(1, samples))
    method = data.draw(st.sampled_from([CEMPlanner, MPPIPlanner]))
    module, dyn = random_dynamics(latent_dim, action_dim, hidden, depth, "gelu", history)
    config = PlannerConfig(
        horizon=horizon,
        samples=samples,
        iterations=2,
        elites=elites,
        max_rate=0.5,
        keep_elites_fraction=data.draw(st.sampled_from([0.0, 0.5])),
    )
    z0 = np.zeros((history, latent_dim), np.float32)
    goal = np.ones(latent_dim, np.float32)
    planners = host_planners(method, module, dyn, config)
    for planner in planners:
        r = planner.plan(z0, goal)
        assert r.actions.shape == (horizon, action_dim)
        assert np.isfinite(r.actions).all() and np.abs(r.actions).max() <= 1.0
    assert_costs_match_float64(module, planners, z0, goal)


def host_planners(method: type, module: torch.nn.Module, dyn: MLPDynamics, config: PlannerConfig) -> list:
    """`method` planners of one problem on every `HOST_BACKENDS` backend (torch plans with the module)."""
    return [method(module if b == "torch" else dyn, config, backend=b) for b in HOST_BACKENDS]


def assert_costs_match_float64(module: torch.nn.Module, planners: list, z0: np.ndarray, goal: np.ndarray) -> None:
    """Every planner's rollout costs of `samples` random sequences are the float64 truth within rtol 1e-4
    plus the problem's own float32 rounding, amplified as this network amplifies it."""
    config = planners[0].config
    shape = (config.samples, config.horizon, module.config.action_dim)
    actions = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    truth, rounding = float64_cost_and_rounding(module, config.cost, actions, z0, goal)
    tolerance = 1e-4 * np.abs(truth) + 1e-5 + ROUNDING_AMPLIFICATION * rounding
    for planner in planners:
        error = np.abs(planner.backend.rollout_cost(actions, z0, goal) - truth)
        assert (error <= tolerance).all(), (planner.backend_name, error, tolerance)


def test_an_ill_conditioned_network_is_judged_by_its_own_rounding():
    """The example hypothesis found: a width-2 LayerNorm over nearly equal inputs, where the float32
    torch and reference costs differ by 2.1e-4 relative, on either side of the float64 truth."""
    module, dyn = random_dynamics(2, 3, 2, 3, "gelu", 3)
    config = PlannerConfig(horizon=1, samples=12, iterations=2, elites=1, max_rate=0.5)
    planners = host_planners(CEMPlanner, module, dyn, config)
    assert_costs_match_float64(module, planners, np.zeros((3, 2), np.float32), np.ones(2, np.float32))


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=4), target=st.sampled_from(["z0", "goal", "noise"]))
def test_core_rejects_random_wrong_shapes(shape, target):
    """The extension itself checks shapes: wrong arrays raise ValueError, never crash."""
    _, dyn = random_dynamics()
    planner = CEMPlanner(dyn, SMALL, backend="cpu").backend._planner
    args = dict(
        z0=np.zeros((1, 8), np.float32),
        goal=np.zeros(8, np.float32),
        prev_action=None,
        init_mean=np.zeros((3, 3), np.float32),
        init_std=np.ones((3, 3), np.float32),
        noise=np.zeros((2, 24, 3, 3), np.float32),
        plan_index=0,
    )
    if tuple(shape) == args[target].shape:
        return
    args[target] = np.zeros(shape, np.float32)
    with pytest.raises(ValueError):
        planner.plan(**args)


def test_config_loads_from_a_mapping():
    from ami_robot.config import ConfigError, from_dict

    config = from_dict(
        PlannerConfig,
        {
            "horizon": 3,
            "action_low": [-1, -2],
            "action_high": 1.0,
            "cost": {"goal_weight": 2.0, "smoothness_weight": 0.1},
        },
    )
    assert config.horizon == 3 and config.action_low == (-1.0, -2.0) and config.cost.goal_weight == 2.0
    assert config.action_limits(2).low.tolist() == [-1.0, -2.0]
    with pytest.raises(ConfigError, match="unknown keys"):
        from_dict(PlannerConfig, {"horizont": 3})


def test_concurrent_plans_from_python_threads_match_sequential_ones():
    """plan() releases the GIL; calls on one planner from several threads are serialised safely."""
    from concurrent.futures import ThreadPoolExecutor

    _, dyn = random_dynamics()
    z0, goal = np.zeros(8, np.float32), np.ones(8, np.float32)
    planner = CEMPlanner(dyn, SMALL, backend="cpu")
    noises = [planner.sample_noise(i) for i in range(6)]
    with ThreadPoolExecutor(3) as pool:
        concurrent = list(
            pool.map(
                lambda n: (
                    planner.backend.plan(
                        z0[None], goal, None, np.zeros((3, 3), np.float32), np.ones((3, 3), np.float32), n, 0
                    ).mean
                ),
                noises,
            )
        )
    for noise, actions in zip(noises, concurrent):
        expected = planner.backend.plan(
            z0[None], goal, None, np.zeros((3, 3), np.float32), np.ones((3, 3), np.float32), noise, 0
        ).mean
        np.testing.assert_array_equal(actions, expected)


def test_cpu_threads_give_the_same_costs():
    _, dyn = random_dynamics(hidden_dim=64)
    config = PlannerConfig(horizon=3, samples=50, iterations=1, elites=5)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (50, 3, 3)).astype(np.float32)
    z0, goal = rng.standard_normal((1, 8)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    one = NativeBackend("cpu", dyn, config, config.action_limits(3), "cem", threads=1)
    two = NativeBackend("cpu", dyn, config, config.action_limits(3), "cem", threads=2)
    np.testing.assert_array_equal(one.rollout_cost(actions, z0, goal), two.rollout_cost(actions, z0, goal))


def test_unknown_cpu_kernels_raise():
    _, dyn = random_dynamics()
    config = PlannerConfig(horizon=2, samples=8, iterations=1, elites=2)
    with pytest.raises(ValueError, match="not available"):
        NativeBackend("cpu", dyn, config, config.action_limits(3), "cem", isa="sse9")


def test_philox_known_answer():
    assert _core.philox4x32_10([0, 0, 0, 0], [0, 0]) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


def test_cem_refits_to_the_elites_equally_weighted():
    from ami_robot.planning.backends.torch_backend import update_distribution

    samples = torch.tensor([[[0.0]], [[1.0]], [[4.0]], [[9.0]]])  # (N=4, H=1, A=1)
    cost = torch.tensor([0.0, 1.0, 2.0, float("inf")])
    order = torch.arange(4)
    mean, std = torch.zeros(1, 1), torch.ones(1, 1)
    config = PlannerConfig(samples=4, elites=3, min_std=0.05)
    cem_mean, cem_std = update_distribution(mean, std, samples, cost, order, config, "cem")
    assert torch.allclose(cem_mean, torch.tensor([[5.0 / 3.0]])) and torch.allclose(cem_std, samples[:3].std(0, False))
    kept = PlannerConfig(samples=4, elites=3, momentum=0.5, min_std=0.9)
    blended_mean, floored_std = update_distribution(mean, std, samples[:1].expand(4, 1, 1), cost, order, kept, "cem")
    assert torch.allclose(blended_mean, torch.zeros(1, 1)) and torch.allclose(floored_std, torch.tensor([[0.9]]))


def test_mppi_weighs_every_sample_by_its_normalised_cost_and_keeps_its_std():
    from ami_robot.planning.backends.torch_backend import mppi_weights, update_distribution

    samples = torch.tensor([[[0.0]], [[1.0]], [[4.0]]])  # (N=3, H=1, A=1)
    cost = torch.tensor([0.0, 1.0, float("inf")])  # finite costs spread (std) 0.5; the last weighs nothing
    order = torch.arange(3)
    mean, std = torch.zeros(1, 1), torch.ones(1, 1)
    config = PlannerConfig(samples=3, elites=1, temperature=1.0, min_std=0.05, std_decay=1.0)
    w = torch.tensor([1.0, float(np.exp(-2.0)), 0.0]) / (1.0 + float(np.exp(-2.0)))
    assert torch.allclose(mppi_weights(mean, std, samples, cost, cost[0], config), w)
    # dimensionless temperature: the same weights at any cost scale
    assert torch.allclose(mppi_weights(mean, std, samples, 1e3 * cost + 7.0, torch.tensor(7.0), config), w)
    mppi_mean, mppi_std = update_distribution(mean, std, samples, cost, order, config, "mppi")
    assert torch.allclose(mppi_mean, w[1:2].reshape(1, 1))  # over all samples, not the one elite
    assert torch.equal(mppi_std, std)  # never refit
    decayed = PlannerConfig(samples=3, elites=1, std_decay=0.5, min_std=0.3)
    assert torch.allclose(
        update_distribution(mean, std, samples, cost, order, decayed, "mppi")[1], torch.tensor([[0.5]])
    )
    assert torch.allclose(
        update_distribution(mean, 0.5 * std, samples, cost, order, decayed, "mppi")[1], torch.tensor([[0.3]])
    )


def test_mppi_control_cost_favours_samples_that_move_towards_zero():
    """score_n += control_cost_weight * u^T Sigma^-1 eps_n (Williams et al. 2017)."""
    from ami_robot.planning.backends.torch_backend import mppi_weights

    samples = torch.tensor([[[0.0]], [[1.0]]])
    cost = torch.tensor([1.0, 1.0])  # equal costs: without the term, equal weights
    mean, std = torch.full((1, 1), 0.5), torch.full((1, 1), 0.5)
    plain = mppi_weights(mean, std, samples, cost, cost[0], PlannerConfig(samples=2, elites=1))
    assert torch.allclose(plain, torch.tensor([0.5, 0.5]))
    config = PlannerConfig(samples=2, elites=1, control_cost_weight=1.0)
    control = 0.5 * (samples.flatten() - 0.5) / 0.25  # u^T Sigma^-1 eps = [-1, 1]
    expected = torch.softmax(-control, 0)
    assert torch.allclose(mppi_weights(mean, std, samples, cost, cost[0], config), expected)
