"""MLPDynamics: the weights of an MLPPredictor in the form the native planner kernels run.

Checkpoint format (safetensors): tensors named as in MLPPredictor.state_dict() ("net.0.weight",
...), and the MLPPredictorConfig as JSON in the metadata key "mlp_predictor_config" (or, failing
that, in a sidecar file with the same stem and the suffix .json).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ami_robot.world_model.critic import SYMMETRIC_EPS, Critic
from ami_robot.world_model.ensemble import PredictorEnsemble
from ami_robot.world_model.mlp_predictor import ACTIVATIONS, MLPPredictor, MLPPredictorConfig

CONFIG_METADATA_KEY = "mlp_predictor_config"


@dataclass(frozen=True, eq=False)
class MLPDynamics:
    """config and float32 numpy weights: linear weights (out, in) and biases (out,) for depth + 1
    layers, LayerNorm weights/biases (hidden,) for the depth hidden layers."""

    config: MLPPredictorConfig
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    ln_weights: tuple[np.ndarray, ...]
    ln_biases: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        c = self.config
        n_linear, n_norm = c.depth + 1, c.depth
        if not (
            len(self.weights) == len(self.biases) == n_linear and len(self.ln_weights) == len(self.ln_biases) == n_norm
        ):
            raise ValueError(f"MLPDynamics: expected {c.depth + 1} linear layers and {c.depth} LayerNorms")
        in_dim = c.history * c.latent_dim + c.action_dim
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out = c.latent_dim if i == c.depth else c.hidden_dim
            if w.shape != (out, in_dim) or b.shape != (out,):
                raise ValueError(
                    f"MLPDynamics: layer {i} weight {w.shape} / bias {b.shape}, expected ({out}, {in_dim}) / ({out},)"
                )
            in_dim = out
        for i, (g, b) in enumerate(zip(self.ln_weights, self.ln_biases)):
            if g.shape != (c.hidden_dim,) or b.shape != (c.hidden_dim,):
                raise ValueError(
                    f"MLPDynamics: LayerNorm {i} has shape {g.shape} / {b.shape}, expected ({c.hidden_dim},)"
                )
        for name in ("weights", "biases", "ln_weights", "ln_biases"):
            if not all(np.isfinite(a).all() for a in getattr(self, name)):
                raise ValueError(f"MLPDynamics: {name} contain NaN or Inf")

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def history(self) -> int:
        return self.config.history

    def macs_per_step(self) -> int:
        """Multiply-adds of one predictor step for one sample (FLOPs = 2x)."""
        return int(sum(w.shape[0] * w.shape[1] for w in self.weights))

    @classmethod
    def from_state_dict(cls, config: MLPPredictorConfig, state: dict[str, torch.Tensor | np.ndarray]) -> MLPDynamics:
        def get(name: str) -> np.ndarray:
            if name not in state:
                raise ValueError(f"MLPDynamics: missing tensor {name!r}")
            v = state[name]
            v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
            return np.ascontiguousarray(v, dtype=np.float32)

        linear = [3 * i for i in range(config.depth + 1)]
        norms = [3 * i + 1 for i in range(config.depth)]
        expected = {f"net.{i}.{p}" for i in linear + norms for p in ("weight", "bias")}
        unknown = sorted(set(state) - expected)
        if unknown:
            raise ValueError(f"MLPDynamics: unexpected tensors {unknown}")
        return cls(
            config,
            tuple(get(f"net.{i}.weight") for i in linear),
            tuple(get(f"net.{i}.bias") for i in linear),
            tuple(get(f"net.{i}.weight") for i in norms),
            tuple(get(f"net.{i}.bias") for i in norms),
        )

    @classmethod
    def from_module(cls, module: nn.Module) -> MLPDynamics:
        """Export an MLPPredictor. Any other module raises TypeError (use backend='torch' for it)."""
        if not isinstance(module, MLPPredictor):
            raise TypeError(
                f"MLPDynamics.from_module needs an ami_robot MLPPredictor, got {type(module).__name__}; "
                "plan with backend='torch' for other predictors"
            )
        c = module.config
        check_core_mlp("MLPPredictor", "net", module.net, c, c.depth, True, c.activation, c.layer_norm_eps)
        return cls.from_state_dict(c, module.state_dict())

    @classmethod
    def from_safetensors(cls, path: str | Path) -> MLPDynamics:
        from safetensors import safe_open

        path = Path(path)
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        if CONFIG_METADATA_KEY in metadata:
            raw = metadata[CONFIG_METADATA_KEY]
        elif path.with_suffix(".json").exists():
            raw = path.with_suffix(".json").read_text()
        else:
            sidecar = path.with_suffix(".json").name
            raise ValueError(f"{path}: no {CONFIG_METADATA_KEY!r} metadata and no {sidecar} sidecar")
        config = MLPPredictorConfig(**json.loads(raw))
        return cls.from_state_dict(config, state)

    def save_safetensors(self, path: str | Path) -> None:
        from safetensors.numpy import save_file

        metadata = {CONFIG_METADATA_KEY: json.dumps(dataclasses.asdict(self.config))}
        save_file(self.state_dict(), str(path), metadata=metadata)

    def state_dict(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            state[f"net.{3 * i}.weight"], state[f"net.{3 * i}.bias"] = w, b
        for i, (g, b) in enumerate(zip(self.ln_weights, self.ln_biases)):
            state[f"net.{3 * i + 1}.weight"], state[f"net.{3 * i + 1}.bias"] = g, b
        return state

    def to_module(self) -> MLPPredictor:
        """The equivalent torch MLPPredictor (float32, CPU)."""
        module = MLPPredictor(self.config)
        module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.state_dict().items()})
        return module

    def to_core(self) -> Any:
        """The equivalent ami_robot._core.MlpModel."""
        from ami_robot import _core

        c = self.config
        model = _core.MlpModel(c.latent_dim, c.action_dim, c.history, c.activation, c.layer_norm_eps)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if i < c.depth:
                model.add_layer(w, b, self.ln_weights[i], self.ln_biases[i])
            else:
                model.add_layer(w, b)
        return model


def ensemble_dynamics(ensemble: PredictorEnsemble) -> tuple[MLPDynamics, ...]:
    """The members of a predictor ensemble of MLPPredictors, exported for the native backends, which
    roll each out and cost their mean and disagreement as the torch backend does. Raises TypeError
    for a member of another kind (plan with backend='torch' for it)."""
    return tuple(MLPDynamics.from_module(member) for member in ensemble.members)


def runs_natively(dynamics: nn.Module) -> bool:
    """Whether the C++ core runs this predictor module: an MLPPredictor, or an ensemble of them."""
    if isinstance(dynamics, PredictorEnsemble):
        return all(isinstance(member, MLPPredictor) for member in dynamics.members)
    return isinstance(dynamics, MLPPredictor)


def check_core_mlp(
    owner: str,
    attribute: str,
    blocks: nn.Sequential,
    config: Any,
    depth: int,
    layer_norm: bool,
    activation: str,
    layer_norm_eps: float,
) -> None:
    """Raise TypeError unless `blocks` is the MLP the C++/CUDA core runs: `depth` x (Linear ->
    [LayerNorm] -> activation) -> Linear, with biases, affine LayerNorms of `layer_norm_eps` and
    exact GELU. `owner.attribute` and its `config` name it in the message."""
    expected: list[type[nn.Module]] = []
    for _ in range(depth):
        expected += [nn.Linear, *([nn.LayerNorm] if layer_norm else []), ACTIVATIONS[activation]]
    expected.append(nn.Linear)
    modules = list(blocks)
    if [type(m) for m in modules] != expected:
        names = [type(m).__name__ for m in modules]
        raise TypeError(f"{owner}.{attribute} does not match its config {config}: {names}")
    for m in modules:
        if isinstance(m, nn.LayerNorm) and (not m.elementwise_affine or m.eps != layer_norm_eps):
            raise TypeError(f"{owner} LayerNorms must be affine with eps = config.layer_norm_eps")
        if isinstance(m, nn.GELU) and m.approximate != "none":
            raise TypeError("only exact GELU (approximate='none') is supported")
        if isinstance(m, nn.Linear) and m.bias is None:
            raise TypeError(f"{owner} Linear layers must have a bias")


def critic_to_core(critic: Critic) -> Any:
    """The ami_robot._core.CriticModel of a trained `Critic` (float32 copies of its weights): the
    embedding MLP (D) -> (E) and the split of its MRN distance, for the native backends' critic
    cost term. Raises TypeError for a critic whose layers do not match its config."""
    from ami_robot import _core

    c = critic.config
    check_core_mlp("Critic", "embedding", critic.embedding, c, c.depth, c.layer_norm, c.activation, c.layer_norm_eps)
    modules = list(critic.embedding)

    def array(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

    model = _core.CriticModel(c.latent_dim, c.asymmetric_dim, c.activation, c.layer_norm_eps, SYMMETRIC_EPS)
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    norms = [m for m in modules if isinstance(m, nn.LayerNorm)]
    for i, linear in enumerate(linears):
        if i < len(norms):
            model.add_layer(array(linear.weight), array(linear.bias), array(norms[i].weight), array(norms[i].bias))
        else:
            model.add_layer(array(linear.weight), array(linear.bias))
    return model
