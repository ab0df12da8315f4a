"""`ami-robot bench planner`: time every planner backend and the torch baselines on the same
weights and configuration, in one process; then compare the plans' quality: the same problem
solved by CEM, iCEM, MPPI and a classic MPPI (raw temperature in cost units, as in Williams et
al. and pytorch-mppi) at equal samples and iterations, from several start/goal pairs, each plan's
cost beside the cost of doing nothing and the best method's.

FLOPs of one plan = 2 * N * H * iterations * sum_i(in_i * out_i) over the predictor's Linear
layers, times the members of a predictor ensemble (LayerNorm, activations, cost and sampling are
left out: under 2% here). The roofline
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

from ami_robot.cost import CostConfig
from ami_robot.errors import ConfigError
from ami_robot.planning import CEMPlanner, MLPDynamics, MPPIPlanner, PlannerConfig, available_backends
from ami_robot.planning.backends import cuda_unavailable_reason
from ami_robot.planning.backends.torch_backend import TorchBackend, update_distribution
from ami_robot.planning.config import CudaPrecision
from ami_robot.world_model.ensemble import PredictorEnsemble
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
    history: int = 1
    members: int = 0
    """0: one predictor; M >= 2: a predictor ensemble of M, its disagreement weighed in the cost."""
    disagreement_weight: float = 0.0


CUDA_PRECISIONS: tuple[CudaPrecision, ...] = typing.get_args(CudaPrecision)  # the cuda backend's variants

BENCH_CONFIGS = {
    "lewm": BenchConfig("lewm", "cem", 300, 5, 30, 30, 192, 10, 512, 4),
    "mppi": BenchConfig("mppi", "mppi", 1024, 16, 6, 64, 64, 4, 512, 3),
    # the shipped PushT model's eight-member ensemble and its published search (checkpoints/pusht/brain.yaml)
    "pusht": BenchConfig("pusht", "cem", 300, 5, 30, 30, 64, 10, 256, 3, history=3, members=8, disagreement_weight=8.0),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=["planner"], help="what to benchmark")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="device of the torch baselines")
    parser.add_argument("--json", type=Path, default=None, help="write the records (a JSON list) here")
    parser.add_argument("--configs", default="lewm,mppi", help=f"comma-separated subset of {sorted(BENCH_CONFIGS)}")
    parser.add_argument("--repeats", type=int, default=5, help="timed plans per backend (median reported)")
    parser.add_argument("--threads", type=int, default=0, help="CPU backend threads (0: auto)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")
    parser.add_argument("--pairs", type=int, default=10, help="start/goal pairs of the quality comparison (0: skip it)")
    parser.add_argument(
        "--seeds", type=int, default=3, help="noise draws per pair in the quality comparison (compared by their mean)"
    )


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


def _problem(
    bc: BenchConfig,
) -> tuple[MLPPredictor | PredictorEnsemble, MLPDynamics | PredictorEnsemble, PlannerConfig]:
    """The configuration's predictor or ensemble (seeded random weights) as a module, and as the
    native backends take it (MLPDynamics; an ensemble as it is), and its planner settings (the
    PlannerConfig defaults otherwise)."""
    torch.manual_seed(0)
    architecture = MLPPredictorConfig(bc.latent_dim, bc.action_dim, bc.width, bc.depth, history=bc.history)
    cost = CostConfig(disagreement_weight=bc.disagreement_weight)
    config = PlannerConfig(
        horizon=bc.horizon, samples=bc.samples, iterations=bc.iterations, elites=bc.elites, cost=cost
    )
    if bc.members:
        ensemble = PredictorEnsemble([MLPPredictor(architecture) for _ in range(bc.members)]).eval()
        return ensemble, ensemble, config
    module = MLPPredictor(architecture).eval()
    return module, MLPDynamics.from_module(module), config


def _macs_per_step(module: MLPPredictor | PredictorEnsemble) -> int:
    """Multiply-adds of one model step for one sample, over every member of an ensemble."""
    if isinstance(module, PredictorEnsemble):
        return sum(MLPDynamics.from_module(member).macs_per_step() for member in module.members)
    return MLPDynamics.from_module(module).macs_per_step()


def _nothing_cost(
    module: MLPPredictor | PredictorEnsemble, config: PlannerConfig, z0: np.ndarray, goal: np.ndarray
) -> float:
    """The cost of doing nothing: all-zero actions for the whole horizon."""
    limits = config.action_limits(module.config.action_dim)
    zeros = limits.project(np.zeros((1, config.horizon, module.config.action_dim), np.float32))
    return float(TorchBackend(module, config, limits, "cem").rollout_cost(zeros, np.atleast_2d(z0), goal)[0])


def _start_and_goal(bc: BenchConfig, pair: int) -> tuple[np.ndarray, np.ndarray]:
    """Start/goal pair number `pair` of the configuration, z0 (D,) or (history, D) and goal (D,);
    pair 0 is the one timed."""
    rng = np.random.default_rng(pair)
    draws = rng.standard_normal((bc.history + 1, bc.latent_dim)).astype(np.float32)
    return (draws[:-1] if bc.history > 1 else draws[0]), draws[-1]


def _bench_config(
    bc: BenchConfig, device: str, repeats: int, threads: int, compile_baseline: bool, progress: bool
) -> list[dict[str, Any]]:
    """Records of every backend and baseline on one configuration. The timed plans are interleaved
    (round r times plan r of every backend, then a matmul) so that load from other processes
    falls on all of them alike; each backend first plans once untimed (compiles, captures, warms)."""
    module, dynamics, config = _problem(bc)
    z0, goal = _start_and_goal(bc, 0)
    flops = 2.0 * bc.samples * bc.horizon * bc.iterations * _macs_per_step(module)
    nothing_cost = _nothing_cost(module, config, z0, goal)
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
            nothing_cost=nothing_cost,
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


QUALITY_METHODS: dict[str, tuple[type[CEMPlanner] | type[MPPIPlanner], dict[str, Any]]] = {
    "cem": (CEMPlanner, {}),
    "icem": (CEMPlanner, dict(noise_beta=2.0, keep_elites_fraction=0.3, momentum=0.1)),
    "mppi": (MPPIPlanner, {}),
}
"""The planners of the quality comparison: each a planner class and its changes to the
configuration's PlannerConfig (iCEM: Pinneri et al. 2020's colored noise, kept elites, momentum)."""
CLASSIC_MPPI = "mppi-classic"
CLASSIC_MPPI_LAMBDA = 0.1
"""The classic MPPI's temperature lambda, in cost units (what this benchmark used before)."""


@torch.no_grad()
def classic_mppi_cost(
    backend: TorchBackend, z0: np.ndarray, goal: np.ndarray, noise: np.ndarray, lam: float = CLASSIC_MPPI_LAMBDA
) -> tuple[float, np.ndarray]:
    """A classic MPPI (fixed exploration std init_std, weights softmax(-(S - min S) / lam) over all
    samples with S = cost + lam * u^T Sigma^-1 eps, mean += sum w eps) on `noise` (iterations, N, H, A),
    from a zero mean; returns the cost of its plan and the std of each iteration (iterations, H, A).
    The reference the normalised MPPI is measured against, in torch."""
    c, limits = backend.config, backend.limits
    z0_t, goal_t = (torch.as_tensor(a, dtype=torch.float32).reshape(-1, a.shape[-1]) for a in (z0, goal))
    mean = torch.zeros(noise.shape[2:])
    std = torch.full_like(mean, c.init_std)
    for eps_it in torch.as_tensor(noise):
        x = limits.project(mean + std * eps_it)
        eps = x - mean
        total = backend._eager_rollout_cost(x, z0_t, goal_t[0], None) + lam * (mean * eps / std**2).sum((1, 2))
        weights = torch.softmax(-(total - total.min()) / lam, 0)
        mean = mean + (weights[:, None, None] * eps).sum(0)
    plan = limits.project(mean)
    cost = float(backend._eager_rollout_cost(plan[None], z0_t, goal_t[0], None)[0])
    return cost, np.broadcast_to(std.numpy(), (c.iterations, *std.shape))


def _std_summary(std_history: Any) -> dict[str, list[float]]:
    """Per iteration: the mean and the smallest sampling std over (t, a)."""
    history = np.asarray(std_history.cpu() if isinstance(std_history, torch.Tensor) else std_history)
    flat = history.reshape(history.shape[0], -1).astype(np.float64)
    return dict(std_mean=flat.mean(1).round(5).tolist(), std_min=flat.min(1).round(5).tolist())


def quality_records(
    bc: BenchConfig, pairs: int, threads: int = 0, progress: bool = True, seeds: int = 1
) -> list[dict[str, Any]]:
    """One record per (method, start/goal pair, noise draw) of configuration `bc`: the plan's cost from
    a cold start, the cost of doing nothing (all-zero actions), the best cost of any method on that
    pair and draw, the plan's wall time and its sampling std per iteration. Every method plans on the
    same Philox noise of the draw (number pair * seeds + seed; colored for iCEM), with the host's
    fastest backend."""
    module, dynamics, base = _problem(bc)
    planners = {
        name: cls(dynamics, dataclasses.replace(base, **changes), backend="auto", threads=threads)
        for name, (cls, changes) in QUALITY_METHODS.items()
    }
    classic = TorchBackend(module, base, base.action_limits(bc.action_dim), "mppi")
    records: list[dict[str, Any]] = []
    draws = [(pair, seed) for pair in range(pairs) for seed in range(seeds)]
    for pair, seed in tqdm(draws, desc=f"{bc.name}: quality", disable=not progress):
        z0, goal = _start_and_goal(bc, pair)
        nothing = _nothing_cost(module, base, z0, goal)
        noise_index = pair * seeds + seed
        pair_records = []
        for name, planner in planners.items():
            planner.reset()
            start = time.perf_counter()
            result = planner.plan(z0, goal, noise=planner.sample_noise(noise_index))
            elapsed = time.perf_counter() - start
            pair_records.append(
                dict(
                    method=name,
                    backend=result.backend,
                    cost=result.cost,
                    ms=1e3 * elapsed,
                    **_std_summary(result.std_history),
                )
            )
        start = time.perf_counter()
        cost, std_history = classic_mppi_cost(classic, z0, goal, planners["mppi"].sample_noise(noise_index))
        pair_records.append(
            dict(
                method=CLASSIC_MPPI,
                backend="torch",
                cost=cost,
                ms=1e3 * (time.perf_counter() - start),
                **_std_summary(std_history),
            )
        )
        best = min(r["cost"] for r in pair_records)
        records += [
            dict(config=bc.name, pair=pair, seed=seed, nothing_cost=nothing, best_cost=best, **r) for r in pair_records
        ]
    return records


def _mean_cost_per_pair(records: list[dict[str, Any]]) -> dict[int, float]:
    """pair -> the mean cost of `records` (one method) over that pair's noise draws."""
    pairs = dict.fromkeys(r["pair"] for r in records)
    return {p: statistics.fmean(r["cost"] for r in records if r["pair"] == p) for p in pairs}


def quality_summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (config, method) over its plans: mean cost, mean cost / cost of doing nothing, mean gap to
    the best method's cost, plans where it was best (ties count), median wall time of a plan; and,
    per pair (mean over its noise draws), on how many pairs it is at or below the classic MPPI, and
    by how much on average."""
    rows = []
    for key in dict.fromkeys((r["config"], r["method"]) for r in records):
        group = [r for r in records if (r["config"], r["method"]) == key]
        classic = _mean_cost_per_pair([r for r in records if (r["config"], r["method"]) == (key[0], CLASSIC_MPPI)])
        mine = _mean_cost_per_pair(group)
        vs_classic = [mine[p] - classic[p] for p in mine if p in classic]
        rows.append(
            dict(
                config=key[0],
                method=key[1],
                pairs=len(mine),
                plans=len(group),
                mean_cost=statistics.fmean(r["cost"] for r in group),
                mean_cost_vs_nothing=statistics.fmean(r["cost"] / r["nothing_cost"] for r in group),
                mean_gap_to_best=statistics.fmean(r["cost"] - r["best_cost"] for r in group),
                best_on=sum(r["cost"] <= r["best_cost"] for r in group),
                pairs_at_or_below_classic=sum(d <= 0 for d in vs_classic),
                mean_vs_classic=statistics.fmean(vs_classic) if vs_classic else float("nan"),
                median_ms=statistics.median(r["ms"] for r in group),
                std_mean=[statistics.fmean(v) for v in zip(*(r["std_mean"] for r in group))],
            )
        )
    return rows


def format_quality_table(summary: list[dict[str, Any]]) -> str:
    lines = [
        "| config | method | pairs | plans | median ms | mean cost | cost / nothing | gap to best | best on "
        "| pairs <= classic | vs classic | mean std per iteration |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in summary:
        stds = " ".join(f"{v:.2f}" for v in r["std_mean"])
        lines.append(
            f"| {r['config']} | {r['method']} | {r['pairs']} | {r['plans']} | {r['median_ms']:.1f} "
            f"| {r['mean_cost']:.2f} | {r['mean_cost_vs_nothing']:.3f} | {r['mean_gap_to_best']:.2f} | {r['best_on']} "
            f"| {r['pairs_at_or_below_classic']} | {r['mean_vs_classic']:+.2f} | {stds} |"
        )
    return "\n".join(lines)


class _TorchPlanGraph:
    """Baseline `torch graph_plan`: the whole torch plan (every iteration's sampling, projection,
    rollout, cost, top-k and update, then the plan's cost) captured once in one CUDA graph and
    replayed, so no host synchronisation or launch inside the plan. torch.randn noise (not the
    Philox stream), no warm start and no rate limit: a timing baseline, not a planner. The update
    is the torch backend's (`update_distribution`)."""

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
            order = torch.topk(key, c.elites, largest=False, sorted=True).indices
            mean, std = update_distribution(mean, std, x, key, order, c, self.method)
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
    if args.pairs < 0 or args.seeds < 1:
        raise ConfigError(f"--pairs must be >= 0 and --seeds >= 1, got {args.pairs} and {args.seeds}")
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
    quality = [
        r for name in configs for r in quality_records(BENCH_CONFIGS[name], args.pairs, args.threads, seeds=args.seeds)
    ]
    for record in records:  # the timed problem is pair 0
        record["best_method_cost"] = next(
            (q["best_cost"] for q in quality if q["config"] == record["config"] and q["pair"] == 0), None
        )
    print(format_table(records))
    summary = quality_summary(quality)
    if summary:
        print("\nplan quality (cold start, equal samples and iterations):")
        print(format_quality_table(summary))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = dict(timing=records, quality=quality, quality_summary=summary)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {len(records)} timing and {len(quality)} quality records to {args.json}")
    return (
        0
        if all(r["error"] is None for r in records if r["variant"] in ("native", "eager") or r["backend"] == "cuda")
        else 1
    )
