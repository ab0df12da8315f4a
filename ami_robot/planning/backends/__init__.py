"""Planner backends behind one interface (`Backend`): `reference` (the C++ core's single-threaded
oracle every other backend is tested against), `cpu` (the C++ core, threaded SIMD), `torch` (any
torch.nn predictor; the benchmark's baseline) and `cuda` (when compiled in and a GPU is present).

The backend names are declared here once: `BackendName` (a backend), `BackendChoice` (what a user
may ask for: a backend or "auto"), and their values `BACKEND_NAMES` and `BACKEND_CHOICES`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Literal, get_args

from ami_robot.errors import BackendUnavailableError
from ami_robot.planning.backends.base import Backend, RawPlan

BackendName = Literal["cuda", "cpu", "torch", "reference"]
"""A planner backend (see the module docstring)."""
BackendChoice = Literal["auto", BackendName]
"""What a user may ask for: a backend, or "auto" (the first of `available_backends()`)."""
BACKEND_NAMES: tuple[BackendName, ...] = get_args(BackendName)
BACKEND_CHOICES: tuple[BackendChoice, ...] = get_args(BackendChoice)


def core_module() -> ModuleType | None:
    """The compiled core `ami_robot._core`, or None where it is not importable."""
    try:
        from ami_robot import _core
    except ImportError:
        return None
    return _core


def cuda_unavailable_reason() -> str | None:
    """Why the `cuda` backend cannot run here, or None when it can."""
    core = core_module()
    if core is None:
        return "the compiled core ami_robot._core is not importable"
    if not hasattr(core, "cuda_planner"):
        return "ami_robot._core was built without CUDA (no nvcc at build time, or AMI_ROBOT_CUDA=OFF)"
    if core.cuda_device_count() == 0:
        return "cuda_device_count() == 0 (no driver or no GPU visible)"
    return None


def available_backends() -> list[BackendName]:
    """Backends usable here, in the order backend='auto' tries them (cuda, cpu, torch); `reference`
    is usable wherever `cpu` is, but never picked by 'auto'."""
    names: list[BackendName] = []
    if cuda_unavailable_reason() is None:
        names.append("cuda")
    if core_module() is not None:
        names.append("cpu")
    names.append("torch")
    return names


def auto_backend(native: bool = True, ensemble: bool = False) -> BackendName:
    """The backend that 'auto' picks here for a predictor: the first of `available_backends()` that runs
    it. native: the C++ core runs it (an MLP predictor, or an ensemble of them); ensemble: a predictor
    ensemble (the cuda backend runs none yet)."""
    for name in available_backends():
        if name == "torch" or (native and (name == "cpu" or not ensemble)):
            return name
    raise AssertionError("torch is always available")


def resolve_backend(choice: str) -> BackendName:
    """The backend that `choice` names here ('auto': the first of `available_backends()`).

    Raises ValueError for a name that is no backend, BackendUnavailableError for one that this build
    or machine cannot run (the message says why)."""
    if choice not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {choice!r}; choose one of {list(BACKEND_CHOICES)}")
    if choice == "auto":
        return auto_backend()
    if choice == "cuda":
        why = cuda_unavailable_reason()
        if why is not None:
            raise BackendUnavailableError(f"backend 'cuda': no CUDA GPU: {why}")
    elif choice in ("cpu", "reference") and core_module() is None:
        raise BackendUnavailableError(f"backend {choice!r}: the compiled core ami_robot._core is not importable")
    return choice


__all__ = [
    "BACKEND_CHOICES",
    "BACKEND_NAMES",
    "Backend",
    "BackendChoice",
    "BackendName",
    "RawPlan",
    "auto_backend",
    "available_backends",
    "core_module",
    "cuda_unavailable_reason",
    "resolve_backend",
]
