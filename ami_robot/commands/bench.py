"""`ami-robot bench planner`: time every planner backend and the torch baselines on the same
weights and configuration, in one process.

FLOPs of one plan = 2 * N * H * iterations * sum_i(in_i * out_i) over the predictor's Linear
layers (LayerNorm, activations, cost and sampling are left out: under 2% here). The roofline
is the GFLOP/s of one float32 torch.matmul (N, width) @ (width, width) on the same device,
measured in the same run, between the timed plans (median over the rounds); on CPU at the torch
thread count (1, 2, 4, ...) that multiplies fastest at the start, which the torch baselines then
use too (the CPU backend picks its own thread count the same way).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ami_robot.planning import CEMPlanner, MLPDynamics, MPPIPlanner, PlannerConfig, available_backends
from ami_robot.planning.backends import cuda_unavailable_reason
from ami_robot.planning.backends.torch_backend import TorchBackend, refit
from ami_robot.planning.config import CudaPrecision
from ami_robot.world_model.mlp_predictor import MLPPredictor, MLPPredictorConfig


@dataclass(frozen=True)
class BenchConfig:
    name: str
    method: str
    samples: int
    horizon: int
    iterations: int
    elites: int
    latent_dim: int
    action_dim: int
    width: int
    depth: int


CUDA_PRECISIONS: tuple[CudaPrecision, ...] = typing.get_args(CudaPrecision)  # the cuda backend's variants

BENCH_CONFIGS = {
    "lewm": BenchConfig("lewm", "cem", 300, 5, 30, 30, 192, 10, 512, 4),
    "mppi": BenchConfig("mppi", "mppi", 1024, 16, 6, 64, 64, 4, 512, 3),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=["planner"], help="what to benchmark")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="device of the torch baselines")
    parser.add_argument("--json", type=Path, default=None, help="write the records (a JSON list) here")
    parser.add_argument("--configs", default="lewm,mppi", help=f"comma-separated subset of {sorted(BENCH_CONFIGS)}")
    parser.add_argument("--repeats", type=int, default=5, help="timed plans per backend (median reported)")
    parser.add_argument("--threads", type=int, default=0, help="CPU backend threads (0: auto)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")


def _matmul_gflops(n: int, width: int, device: torch.device, seconds: float = 0.5) -> float:
    """GFLOP/s of a float32 (n, width) @ (width, width) matrix product on `device`."""
    x = torch.randn(n, width, device=device)
    w = torch.randn(width, width, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(5):
        x @ w
    sync()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            x @ w
        reps += 10
        sync()
    return 2.0 * n * width * width * reps / (time.perf_counter() - start) / 1e9


def _cpu_roofline(n: int, width: int) -> tuple[float, int]:
    """The best matmul GFLOP/s over torch CPU thread counts 1, 2, 4, ... and that thread count.
    (On cores shared with other processes, fewer threads can be faster.)"""
    max_threads = torch.get_num_threads()
    best = (0.0, max_threads)
    t = 1
    while True:
        torch.set_num_threads(t)
        best = max(best, (_matmul_gflops(n, width, torch.device("cpu")), t))
        if t >= max_threads:
            break
        t = min(2 * t, max_threads)
    torch.set_num_threads(max_threads)
    return best


def _bench_config(
    bc: BenchConfig, device: str, repeats: int, threads: int, compile_baseline: bool, progress: bool
) -> list[dict[str, Any]]:
    """Records of every backend and baseline on one configuration. The timed plans are interleaved
    (round r times plan r of every backend, then a matmul) so that load from other processes
    falls on all of them alike; each backend first plans once untimed (compiles, captures, warms)."""
    torch.manual_seed(0)
    module = MLPPredictor(MLPPredictorConfig(bc.latent_dim, bc.action_dim, bc.width, bc.depth)).eval()
    dynamics = MLPDynamics.from_module(module)
    config = PlannerConfig(
        horizon=bc.horizon, samples=bc.samples, iterations=bc.iterations, elites=bc.elites, temperature=0.1
    )
    rng = np.random.default_rng(0)
    z0 = rng.standard_normal(bc.latent_dim).astype(np.float32)
    goal = rng.standard_normal(bc.latent_dim).astype(np.float32)
    flops = 2.0 * bc.samples * bc.horizon * bc.iterations * dynamics.macs_per_step()
    planner_cls = MPPIPlanner if bc.method == "mppi" else CEMPlanner

    runs = [(b, "native", b) for b in available_backends() if b == "cpu"]
    if device == "cuda" and "cuda" in available_backends():  # one run per matrix-product precision
        runs += [("cuda", precision, "cuda") for precision in CUDA_PRECISIONS]
    runs += [
        ("torch", v, device)
        for v in ["eager"]
        + (["compiled"] if compile_baseline else [])
        + (["graph", "graph_plan"] if device == "cuda" else [])
    ]
    devices = sorted({run_device for _, _, run_device in runs})
    roofline_threads = _cpu_roofline(bc.samples, bc.width)[1] if "cpu" in devices else torch.get_num_threads()
    torch.set_num_threads(roofline_threads)  # the torch CPU baselines run at the roofline's thread count

    records, planners = [], []
    for backend, variant, run_device in tqdm(runs, desc=f"{bc.name}: build + warm up", disable=not progress):
        record: dict[str, Any] = dict(
            config=bc.name,
            backend=backend,
            variant=variant,
            device=run_device,
            **{k: v for k, v in asdict(bc).items() if k != "name"},
            flops_per_plan=flops,
            roofline_gflops=None,
            repeats=repeats,
            torch_threads=roofline_threads,
            threads=None,
            kernels=None,
            median_ms=None,
            plans_per_s=None,
            gflops=None,
            cost=None,
            error=None,
        )
        planner = None
        try:
            if backend == "torch":
                if variant == "graph_plan":
                    planner = _TorchPlanGraph(module, config, bc.method, run_device)
                else:
                    planner = planner_cls(module, config, backend="torch", device=run_device, torch_variant=variant)
            else:
                run_config = dataclasses.replace(config, cuda_precision=variant) if backend == "cuda" else config
                planner = planner_cls(dynamics, run_config, backend=backend, threads=threads)
                record["kernels"] = getattr(planner.backend, "kernels", None)
                record["threads"] = getattr(planner.backend, "threads", None)
            planner.plan(z0, goal)
        except Exception as exc:  # a failing baseline (e.g. torch.compile) is recorded, not fatal
            record["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            planner = None
        records.append(record)
        planners.append(planner)

    times: list[list[float]] = [[] for _ in runs]
    costs: list[float | None] = [None for _ in runs]
    matmul: dict[str, list[float]] = {d: [] for d in devices}
    for _ in tqdm(range(repeats), desc=f"{bc.name}: timed rounds", disable=not progress):
        for i, planner in enumerate(planners):
            if planner is None:
                continue
            try:
                start = time.perf_counter()
                costs[i] = planner.plan(z0, goal).cost
                times[i].append(time.perf_counter() - start)
            except Exception as exc:
                records[i]["error"] = f"{type(exc).__name__}: {exc}"[:2000]
                planners[i] = None
        for d in devices:
            matmul[d].append(_matmul_gflops(bc.samples, bc.width, torch.device(d), seconds=0.25))
    for record, t, cost in zip(records, times, costs):
        record["roofline_gflops"] = statistics.median(matmul[record["device"]])
        if record["error"] is None and t:
            median = statistics.median(t)
            record.update(median_ms=1e3 * median, plans_per_s=1.0 / median, gflops=flops / median / 1e9, cost=cost)
    return records


def run_benchmark(
    device: str = "cpu",
    configs: list[str] | None = None,
    repeats: int = 5,
    threads: int = 0,
    compile_baseline: bool = True,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One record per (config, backend, variant); see the module docstring for the FLOP count."""
    max_torch_threads = torch.get_num_threads()
    records: list[dict[str, Any]] = []
    try:
        for name in configs or list(BENCH_CONFIGS):
            records += _bench_config(BENCH_CONFIGS[name], device, repeats, threads, compile_baseline, progress)
    finally:
        torch.set_num_threads(max_torch_threads)
    return records


def format_table(records: list[dict[str, Any]]) -> str:
    eager = {r["config"]: r["median_ms"] for r in records if r["backend"] == "torch" and r["variant"] == "eager"}
    lines = [
        "| config | backend | variant | device | threads | median ms | plans/s | GFLOP/s | % of matmul "
        "| vs torch eager |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        if r["median_ms"] is None:
            lines.append(
                f"| {r['config']} | {r['backend']} | {r['variant']} | {r['device']} | | failed: "
                f"{r['error'][:60]} | | | | |"
            )
            continue
        speedup = eager.get(r["config"])
        threads = r["threads"] if r["backend"] != "torch" else r["torch_threads"]
        lines.append(
            f"| {r['config']} | {r['backend']} | {r['variant']} | {r['device']} | {threads or '-'} "
            f"| {r['median_ms']:.1f} | "
            f"{r['plans_per_s']:.2f} | {r['gflops']:.1f} | {100 * r['gflops'] / r['roofline_gflops']:.0f}% | "
            + (f"{speedup / r['median_ms']:.2f}x |" if speedup else "- |")
        )
    roof = sorted({(r["config"], r["device"], round(r["roofline_gflops"], 1)) for r in records})
    lines.append("")
    lines += [f"matmul roofline {c} on {d}: {g} GFLOP/s" for c, d, g in roof]
    return "\n".join(lines)


class _TorchPlanGraph:
    """Baseline `torch graph_plan`: the whole torch plan (every iteration's sampling, projection,
    rollout, cost, top-k and refit, then the plan's cost) captured once in one CUDA graph and
    replayed, so no host synchronisation or launch inside the plan. torch.randn noise (not the
    Philox stream), no warm start and no rate limit: a timing baseline, not a planner. The refit is
    the torch backend's (`refit`)."""

    def __init__(self, module: torch.nn.Module, config: PlannerConfig, method: str, device: str) -> None:
        c = module.config
        limits = config.action_limits(c.action_dim)
        self.config, self.method = config, method
        self.torch_backend = TorchBackend(module, config, limits, method, device=device)
        dev = torch.device(device)
        self.low = torch.as_tensor(limits.low, dtype=torch.float32, device=dev)
        self.high = torch.as_tensor(limits.high, dtype=torch.float32, device=dev)
        self.z0 = torch.zeros(c.history, c.latent_dim, device=dev)
        self.goal = torch.zeros(c.latent_dim, device=dev)
        self.init_mean = torch.zeros(config.horizon, c.action_dim, device=dev)
        self.init_std = torch.full((config.horizon, c.action_dim), config.init_std, device=dev)
        self.graph: torch.cuda.CUDAGraph | None = None

    def _plan(self) -> tuple[torch.Tensor, torch.Tensor]:
        c, rollout_cost = self.config, self.torch_backend._eager_rollout_cost
        mean, std = self.init_mean.clone(), self.init_std.clone()
        for _ in range(c.iterations):
            eps = torch.randn((c.samples, *mean.shape), device=mean.device)
            x = torch.minimum(torch.maximum(mean + std * eps, self.low), self.high)
            key = torch.nan_to_num(rollout_cost(x, self.z0, self.goal, None), nan=float("inf"))
            elite_cost, order = torch.topk(key, c.elites, largest=False, sorted=True)
            mean, std = refit(mean, std, x[order], elite_cost, c, self.method)
        mean = torch.minimum(torch.maximum(mean, self.low), self.high)
        return mean, rollout_cost(mean[None], self.z0, self.goal, None)[0]

    @torch.no_grad()
    def plan(self, z0: np.ndarray, goal: np.ndarray) -> Any:
        self.z0.copy_(torch.as_tensor(z0, dtype=torch.float32).reshape(self.z0.shape))
        self.goal.copy_(torch.as_tensor(goal, dtype=torch.float32))
        if self.graph is None:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._plan()  # warm-up: allocator pools, cuBLAS handles
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.actions, self.cost = self._plan()
        self.graph.replay()
        return SimpleNamespace(actions=self.actions, cost=float(self.cost))  # float(): the one synchronisation


def _cuda_unavailable() -> str | None:
    """Why `--device cuda` cannot run here, or None."""
    why = cuda_unavailable_reason()
    if why is None and not torch.cuda.is_available():
        why = "torch.cuda.is_available() is False (the torch baselines need a CUDA build of torch)"
    return why


def run(args: argparse.Namespace) -> int:
    if args.device == "cuda" and _cuda_unavailable():
        print(f"no CUDA GPU: {_cuda_unavailable()}")
        return 2
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(configs) - set(BENCH_CONFIGS))
    if unknown:
        print(f"unknown configs {unknown}; known: {sorted(BENCH_CONFIGS)}")
        return 2
    import ami_robot

    print(f"build: {ami_robot.build_info()}")
    records = run_benchmark(args.device, configs, args.repeats, args.threads, not args.no_compile)
    print(format_table(records))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=2))
        print(f"wrote {len(records)} records to {args.json}")
    return (
        0
        if all(r["error"] is None for r in records if r["variant"] in ("native", "eager") or r["backend"] == "cuda")
        else 1
    )
