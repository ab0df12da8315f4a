"""Type stub of the compiled planning core (csrc/bindings.cpp)."""

from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

class Activation(Enum):
    GELU = 0
    SiLU = 1
    ReLU = 2
    Tanh = 3

class Method(Enum):
    CEM = 0
    MPPI = 1

class MlpModel:
    def __init__(self, latent_dim: int, action_dim: int, history: int, activation: str, ln_eps: float) -> None: ...
    def add_layer(
        self,
        weight: npt.ArrayLike,
        bias: npt.ArrayLike,
        ln_weight: npt.ArrayLike | None = None,
        ln_bias: npt.ArrayLike | None = None,
    ) -> None: ...
    def macs_per_step(self) -> float: ...
    @property
    def num_layers(self) -> int: ...

class CriticModel:
    def __init__(
        self, latent_dim: int, asymmetric_dim: int, activation: str, ln_eps: float, symmetric_eps: float
    ) -> None: ...
    def add_layer(
        self,
        weight: npt.ArrayLike,
        bias: npt.ArrayLike,
        ln_weight: npt.ArrayLike | None = None,
        ln_bias: npt.ArrayLike | None = None,
    ) -> None: ...
    @property
    def num_layers(self) -> int: ...
    @property
    def embed_dim(self) -> int: ...

class CostParams:
    goal_weight: float
    goal_running_weight: float
    action_weight: float
    smoothness_weight: float
    latent_bound_weight: float
    latent_low: list[float]
    latent_high: list[float]
    critic_weight: float
    critic_running_weight: float
    critic: CriticModel
    disagreement_weight: float
    disagreement_running_weight: float
    def __init__(self) -> None: ...

class ActionBounds:
    low: list[float]
    high: list[float]
    max_rate: list[float]
    def __init__(self) -> None: ...

class SamplerParams:
    method: Method
    horizon: int
    samples: int
    iterations: int
    elites: int
    keep_elites: int
    momentum: float
    min_std: float
    temperature: float
    control_cost_weight: float
    std_decay: float
    seed: int
    def __init__(self) -> None: ...

class Planner:
    @property
    def kernels(self) -> str: ...
    @property
    def threads(self) -> int: ...
    def plan(
        self,
        z0: npt.ArrayLike,
        goal: npt.ArrayLike,
        prev_action: npt.ArrayLike | None,
        init_mean: npt.ArrayLike,
        init_std: npt.ArrayLike,
        noise: npt.ArrayLike | None,
        plan_index: int,
    ) -> tuple[FloatArray, FloatArray, float, FloatArray, float, FloatArray]: ...
    def rollout_cost(
        self, actions: npt.ArrayLike, z0: npt.ArrayLike, goal: npt.ArrayLike, prev_action: npt.ArrayLike | None = None
    ) -> FloatArray: ...
    def predict(self, actions: npt.ArrayLike, z0: npt.ArrayLike) -> FloatArray: ...

class CudaPlanner(Planner):
    """Only when built with CUDA (build_info()["cuda"])."""

    @property
    def precision(self) -> str: ...
    @property
    def device(self) -> int: ...
    def plan_device(
        self,
        z0: int,
        goal: int,
        prev_action: int,
        init_mean: int,
        init_std: int,
        noise: int,
        plan_index: int,
        out: int,
        stream: int = 0,
    ) -> None: ...

def reference_planner(
    model: MlpModel, cost: CostParams, bounds: ActionBounds, sampler: SamplerParams, ensemble: list[MlpModel] = []
) -> Planner: ...
def cpu_planner(
    model: MlpModel,
    cost: CostParams,
    bounds: ActionBounds,
    sampler: SamplerParams,
    threads: int = 0,
    isa: str = "auto",
    ensemble: list[MlpModel] = [],
) -> Planner: ...

# Only when built with CUDA (build_info()["cuda"]):
def cuda_planner(
    model: MlpModel,
    cost: CostParams,
    bounds: ActionBounds,
    sampler: SamplerParams,
    device: int = 0,
    precision: str = "fp32",
) -> CudaPlanner: ...
def cuda_device_count() -> int: ...
def cuda_philox_normal(seed: int, plan_index: int, start: int, count: int, device: int = 0) -> FloatArray: ...
def philox_normal(seed: int, plan_index: int, start: int, count: int) -> FloatArray: ...
def philox4x32_10(counter: list[int], key: list[int]) -> list[int]: ...
def project_actions(
    actions: npt.ArrayLike, bounds: ActionBounds, prev_action: npt.ArrayLike | None = None
) -> FloatArray: ...
def build_info() -> dict[str, Any]: ...
