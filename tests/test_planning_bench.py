import json

import numpy as np

from ami_robot.cli import main
from ami_robot.commands import bench

TINY = bench.BenchConfig(
    "tiny", "mppi", samples=16, horizon=2, iterations=2, elites=4, latent_dim=6, action_dim=2, width=16, depth=1
)


def test_bench_writes_timing_and_quality_records(tmp_path, monkeypatch):
    monkeypatch.setitem(bench.BENCH_CONFIGS, "tiny", TINY)
    monkeypatch.setattr(bench, "_matmul_gflops", lambda n, width, device, seconds=0.5: 1.0)
    out = tmp_path / "bench.json"
    argv = [
        "bench",
        "planner",
        "--configs",
        "tiny",
        "--repeats",
        "2",
        "--no-compile",
        "--pairs",
        "3",
        "--seeds",
        "2",
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    records = report["timing"]
    assert [(r["config"], r["backend"], r["variant"]) for r in records] == [
        ("tiny", "cpu", "native"),
        ("tiny", "torch", "eager"),
    ]
    for r in records:
        assert r["error"] is None and r["device"] == "cpu"
        assert r["median_ms"] > 0 and r["plans_per_s"] > 0 and r["roofline_gflops"] == 1.0
        assert abs(r["gflops"] - r["flops_per_plan"] / r["median_ms"] / 1e6) < 1e-6 * r["gflops"]
        assert r["nothing_cost"] > 0 and r["best_method_cost"] <= r["nothing_cost"]
    assert records[0]["flops_per_plan"] == 2 * 16 * 2 * 2 * (16 * (6 + 2) + 16 * 6)
    assert records[0]["kernels"] and records[0]["threads"] >= 1
    assert abs(records[0]["cost"] - records[1]["cost"]) <= 1e-4 * abs(records[1]["cost"])

    quality = report["quality"]
    methods = [*bench.QUALITY_METHODS, bench.CLASSIC_MPPI]
    assert [(q["pair"], q["seed"], q["method"]) for q in quality] == [
        (p, s, m) for p in range(3) for s in range(2) for m in methods
    ]
    for q in quality:
        same_draw = [o["cost"] for o in quality if (o["pair"], o["seed"]) == (q["pair"], q["seed"])]
        assert q["best_cost"] == min(same_draw) and q["nothing_cost"] > 0
        assert len(q["std_mean"]) == len(q["std_min"]) == TINY.iterations
    mppi = [q for q in quality if q["method"] == "mppi"]
    assert all(q["std_min"] == [1.0, 0.8] for q in mppi)  # exploration std init_std * std_decay^i, never refit
    summary = {row["method"]: row for row in report["quality_summary"]}
    assert set(summary) == set(methods) and all((row["pairs"], row["plans"]) == (3, 6) for row in summary.values())
    assert sum(row["best_on"] for row in summary.values()) >= 6
    classic = summary[bench.CLASSIC_MPPI]
    assert classic["pairs_at_or_below_classic"] == 3 and classic["mean_vs_classic"] == 0.0
    for method, row in summary.items():
        per_pair = [
            np.mean([q["cost"] for q in quality if (q["method"], q["pair"]) == (method, p)])
            - np.mean([q["cost"] for q in quality if (q["method"], q["pair"]) == (bench.CLASSIC_MPPI, p)])
            for p in range(3)
        ]
        assert row["pairs_at_or_below_classic"] == sum(d <= 0 for d in per_pair)
        assert abs(row["mean_vs_classic"] - np.mean(per_pair)) <= 1e-6 * max(1.0, abs(row["mean_cost"]))


TINY_ENSEMBLE = bench.BenchConfig(
    "tiny_ensemble", "cem", 16, 2, 2, 4, 6, 2, 16, 1, history=2, members=3, disagreement_weight=4.0
)


def test_bench_times_an_ensemble_on_the_cpu_backend_and_torch(tmp_path, monkeypatch):
    monkeypatch.setitem(bench.BENCH_CONFIGS, "tiny_ensemble", TINY_ENSEMBLE)
    monkeypatch.setattr(bench, "_matmul_gflops", lambda n, width, device, seconds=0.5: 1.0)
    out = tmp_path / "bench.json"
    argv = ["bench", "planner", "--configs", "tiny_ensemble", "--repeats", "1", "--no-compile", "--pairs", "1"]
    assert main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    cpu, eager = report["timing"]
    assert (cpu["backend"], eager["backend"]) == ("cpu", "torch") and cpu["error"] is None is eager["error"]
    assert cpu["flops_per_plan"] == 3 * 2 * 16 * 2 * 2 * (16 * (2 * 6 + 2) + 16 * 6)  # three members
    assert abs(cpu["cost"] - eager["cost"]) <= 1e-4 * abs(eager["cost"])
    assert {q["backend"] for q in report["quality"]} == {"cpu", "torch"}


def test_classic_mppi_baseline_matches_the_normalised_mppi_where_they_coincide():
    """With temperatures far above the costs' spread, both MPPIs weigh samples by the control-cost
    term alone (Williams et al.'s gamma = lambda, control_cost_weight 1) at a fixed std: same noise, same plan."""
    import dataclasses

    from ami_robot.planning import MPPIPlanner
    from ami_robot.planning.backends.torch_backend import TorchBackend

    module, dynamics, config = bench._problem(TINY)
    config = dataclasses.replace(config, temperature=1e6, control_cost_weight=1.0, std_decay=1.0)
    planner = MPPIPlanner(dynamics, config, backend="reference")
    classic = TorchBackend(module, config, config.action_limits(TINY.action_dim), "mppi")
    z0, goal = bench._start_and_goal(TINY, 1)
    noise = planner.sample_noise(0)
    expected = planner.plan(z0, goal, noise=noise).cost
    cost, std_history = bench.classic_mppi_cost(classic, z0, goal, noise, lam=1e9)
    assert abs(cost - expected) <= 1e-4 * abs(expected)
    assert np.all(std_history == config.init_std)


def test_graph_baseline_plan_runs_on_cpu_with_the_shared_update(monkeypatch):
    """The CUDA-graph baseline's plan body (captured only on CUDA) updates with the torch backend's
    `update_distribution`."""
    import torch

    from ami_robot.planning import PlannerConfig
    from ami_robot.planning.backends.torch_backend import update_distribution
    from ami_robot.world_model.mlp_predictor import MLPPredictor, MLPPredictorConfig

    calls = []

    def recording_update(mean, std, samples, cost, order, config, method):
        calls.append((config, method))
        return update_distribution(mean, std, samples, cost, order, config, method)

    monkeypatch.setattr(bench, "update_distribution", recording_update)
    torch.manual_seed(0)
    module = MLPPredictor(MLPPredictorConfig(6, 2, 16, 1)).eval()
    config = PlannerConfig(horizon=3, samples=16, iterations=2, elites=4, action_low=-0.5, action_high=0.5)
    with torch.no_grad():
        actions, cost = bench._TorchPlanGraph(module, config, "mppi", "cpu")._plan()
    assert calls == [(config, "mppi")] * 2
    assert actions.shape == (3, 2) and actions.abs().max() <= 0.5 and torch.isfinite(cost)


def test_bench_refuses_a_quality_comparison_without_noise_draws(capsys):
    assert main(["bench", "planner", "--seeds", "0"]) == 2
    assert "--seeds" in capsys.readouterr().err
