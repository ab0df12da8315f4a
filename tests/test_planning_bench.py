import json

from ami_robot.cli import main
from ami_robot.commands import bench


def test_bench_writes_one_record_per_config_backend_variant(tmp_path, monkeypatch):
    tiny = bench.BenchConfig(
        "tiny", "mppi", samples=16, horizon=2, iterations=2, elites=4, latent_dim=6, action_dim=2, width=16, depth=1
    )
    monkeypatch.setitem(bench.BENCH_CONFIGS, "tiny", tiny)
    monkeypatch.setattr(bench, "_matmul_gflops", lambda n, width, device, seconds=0.5: 1.0)
    out = tmp_path / "bench.json"
    assert main(["bench", "planner", "--configs", "tiny", "--repeats", "2", "--no-compile", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [(r["config"], r["backend"], r["variant"]) for r in records] == [
        ("tiny", "cpu", "native"),
        ("tiny", "torch", "eager"),
    ]
    for r in records:
        assert r["error"] is None and r["device"] == "cpu"
        assert r["median_ms"] > 0 and r["plans_per_s"] > 0 and r["roofline_gflops"] == 1.0
        assert abs(r["gflops"] - r["flops_per_plan"] / r["median_ms"] / 1e6) < 1e-6 * r["gflops"]
    assert records[0]["flops_per_plan"] == 2 * 16 * 2 * 2 * (16 * (6 + 2) + 16 * 6)
    assert records[0]["kernels"] and records[0]["threads"] >= 1
    assert abs(records[0]["cost"] - records[1]["cost"]) <= 1e-4 * abs(records[1]["cost"])


def test_graph_baseline_plan_runs_on_cpu_with_the_shared_refit(monkeypatch):
    """The CUDA-graph baseline's plan body (captured only on CUDA) refits with the torch backend's `refit`."""
    import torch

    from ami_robot.planning import PlannerConfig
    from ami_robot.planning.backends.torch_backend import refit
    from ami_robot.world_model.mlp_predictor import MLPPredictor, MLPPredictorConfig

    calls = []

    def recording_refit(mean, std, elites, elite_cost, config, method):
        calls.append((config, method))
        return refit(mean, std, elites, elite_cost, config, method)

    monkeypatch.setattr(bench, "refit", recording_refit)
    torch.manual_seed(0)
    module = MLPPredictor(MLPPredictorConfig(6, 2, 16, 1)).eval()
    config = PlannerConfig(horizon=3, samples=16, iterations=2, elites=4, action_low=-0.5, action_high=0.5)
    with torch.no_grad():
        actions, cost = bench._TorchPlanGraph(module, config, "mppi", "cpu")._plan()
    assert calls == [(config, "mppi")] * 2
    assert actions.shape == (3, 2) and actions.abs().max() <= 0.5 and torch.isfinite(cost)
