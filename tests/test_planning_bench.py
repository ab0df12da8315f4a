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
