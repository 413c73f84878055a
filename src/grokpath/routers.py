"""Find the MoE routers of a model: one small adapter per model family.

transformers 5.x stores OLMoE's experts as fused 3-D parameters, and its router is its own module
(`model.model.layers[i].mlp.gate`, `.weight` of shape (experts, hidden)) that returns
`(router_logits, top_k_weights, top_k_ids)`. Mixtral and Qwen2/3-MoE share that layout in 5.x, so
they get adapters too; only OLMoE is exercised by the tests. Anything else (a dense model, an
unknown MoE family) raises GrokpathError naming the class and what was looked for, instead of
silently producing empty pathways.

`router_spec_from_checkpoint` reads only the router matrices from a checkpoint's safetensors files,
so metrics that need W_l (pathway consistency) do not load a 7B model per step.

torch is imported inside the functions that need it: `read_router_weights` serves the metric jobs,
which need neither torch nor transformers (seconds of start-up each).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from grokpath.errors import GrokpathError

if TYPE_CHECKING:
    import torch
    from torch import nn

GATE_PATH = "mlp.gate"


@dataclass(frozen=True)
class RouterAdapter:
    """How one model family exposes its routers."""

    family: str
    gate_path: str  # attribute path from a decoder layer to its router module
    norm_topk_prob: Callable[[object], bool]  # config -> whether top-k weights are renormalised


ADAPTERS: dict[str, RouterAdapter] = {
    "olmoe": RouterAdapter("olmoe", GATE_PATH, lambda cfg: bool(cfg.norm_topk_prob)),
    # Mixtral always renormalises its top-k weights (there is no config switch).
    "mixtral": RouterAdapter("mixtral", GATE_PATH, lambda cfg: True),
    "qwen2_moe": RouterAdapter("qwen2_moe", GATE_PATH, lambda cfg: bool(cfg.norm_topk_prob)),
    "qwen3_moe": RouterAdapter("qwen3_moe", GATE_PATH, lambda cfg: bool(cfg.norm_topk_prob)),
}


@dataclass
class RouterSpec:
    """The routers of one model, in layer order (MoE layers only)."""

    layers: list[int]
    weights: list[torch.Tensor]  # each (num_experts, hidden), detached, on the model's device
    num_experts: int
    top_k: int
    norm_topk_prob: bool
    modules: list[nn.Module] = field(default_factory=list, repr=False)
    param_names: list[str] = field(default_factory=list, repr=False)

    def stacked_weights(self, dtype=None) -> torch.Tensor:
        """(layers, experts, hidden) on CPU (float32 by default): the expert embeddings v_{l,k}
        of Metric 2."""
        import torch

        dtype = torch.float32 if dtype is None else dtype
        return torch.stack([w.detach().to("cpu", dtype) for w in self.weights])


def backbone_of(model: nn.Module) -> nn.Module:
    """The decoder stack without the LM head: `model.model` for *ForCausalLM, else the model."""
    from torch import nn

    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module) and hasattr(inner, "layers"):
        return inner
    if hasattr(model, "layers"):
        return model
    raise GrokpathError(
        f"{type(model).__name__}: no decoder stack found (looked for .model.layers and .layers)"
    )


def _model_type(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    return getattr(config, "model_type", "") or ""


def _resolve(module: nn.Module, dotted: str) -> nn.Module | None:
    for name in dotted.split("."):
        module = getattr(module, name, None)
        if module is None:
            return None
    return module


def _is_router(module: nn.Module | None) -> bool:
    import torch

    weight = getattr(module, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.dim() == 2 and hasattr(module, "top_k")


def find_routers(model: nn.Module) -> RouterSpec:
    """Locate every MoE router of `model` (a *ForCausalLM or its backbone)."""
    name = type(model).__name__
    model_type = _model_type(model)
    adapter = ADAPTERS.get(model_type)
    looked_for = (
        f"a router module at model.layers[i].{GATE_PATH} with a 2-D .weight (experts, hidden) "
        f"and .top_k; supported model types: {', '.join(sorted(ADAPTERS))}"
    )
    if adapter is None:
        raise GrokpathError(
            f"{name} (model_type {model_type!r}): no MoE router adapter; looked for {looked_for}"
        )
    backbone = backbone_of(model)
    prefix = "model." if backbone is not model else ""
    layers, modules, names = [], [], []
    for index, layer in enumerate(backbone.layers):
        gate = _resolve(layer, adapter.gate_path)
        if _is_router(gate):  # Qwen-MoE interleaves dense MLP layers: skip those
            layers.append(index)
            modules.append(gate)
            names.append(f"{prefix}layers.{index}.{adapter.gate_path}.weight")
    if not layers:
        raise GrokpathError(
            f"{name} (model_type {model_type!r}): no MoE router found; looked for {looked_for}"
        )
    weights = [gate.weight.detach() for gate in modules]
    shapes = {tuple(w.shape) for w in weights}
    if len(shapes) != 1:
        raise GrokpathError(
            f"{name}: router weights differ in shape across layers: {sorted(shapes)}"
        )
    return RouterSpec(
        layers=layers,
        weights=weights,
        num_experts=weights[0].shape[0],
        top_k=int(modules[0].top_k),
        norm_topk_prob=adapter.norm_topk_prob(model.config),
        modules=modules,
        param_names=names,
    )


def _safetensors_files(checkpoint: Path) -> dict[str, Path]:
    """Map each tensor name to the safetensors file that holds it."""
    index = checkpoint / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {key: checkpoint / fname for key, fname in weight_map.items()}
    single = checkpoint / "model.safetensors"
    if not single.exists():
        raise GrokpathError(f"{checkpoint}: no model.safetensors or model.safetensors.index.json")
    from safetensors import safe_open

    with safe_open(single, "pt") as fh:
        return {key: single for key in fh.keys()}


def router_spec_from_checkpoint(checkpoint: str | Path) -> RouterSpec:
    """Read only the router matrices of an HF checkpoint dir (no full model load).

    The model is built on the meta device to learn which layers have routers and their parameter
    names; those tensors alone are then read from the safetensors files. If a name is missing
    from the files (a checkpoint saved under another naming), the whole model is loaded instead.
    """
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    checkpoint = Path(checkpoint)
    if not (checkpoint / "config.json").exists():
        raise GrokpathError(f"{checkpoint}: not a model checkpoint (no config.json)")
    config = AutoConfig.from_pretrained(checkpoint)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    spec = find_routers(skeleton)
    files = _safetensors_files(checkpoint)
    if not all(name in files for name in spec.param_names):
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
        return find_routers(model)
    weights = []
    for name in spec.param_names:
        with safe_open(files[name], "pt") as fh:
            weights.append(fh.get_tensor(name))
    spec.weights = weights
    spec.modules = []
    return spec


ROUTER_COLUMNS = ["layer", "expert", "top_k", "weight"]


def write_router_table(spec: RouterSpec, dest: str | Path) -> None:
    """The router matrices as Parquet (layer, expert, top_k, weight row), so metric jobs need
    neither the checkpoint (a 14 GB download at paper scale, `temp()` there) nor torch."""
    import pandas as pd

    from grokpath.tableio import write_parquet

    rows = [
        {"layer": layer, "expert": expert, "top_k": spec.top_k, "weight": row}
        for layer, matrix in zip(spec.layers, spec.stacked_weights().numpy())
        for expert, row in enumerate(matrix)
    ]
    write_parquet(pd.DataFrame(rows, columns=ROUTER_COLUMNS), dest)


@dataclass(frozen=True)
class RouterWeights:
    """A router table read back as numpy (no torch): what the metric jobs need."""

    layers: list[int]
    weights: np.ndarray  # (layers, experts, hidden) float32: the expert embeddings v_{l,k}
    top_k: int


def read_router_weights(path: str | Path) -> RouterWeights:
    from grokpath.tableio import read_parquet

    table = read_parquet(path, ROUTER_COLUMNS).sort_values(["layer", "expert"])
    if table.empty:
        raise GrokpathError(f"{path}: no router rows")
    layers = sorted(int(layer) for layer in table["layer"].unique())
    weights = [
        np.stack(table.loc[table["layer"] == layer, "weight"].to_numpy()).astype(np.float32)
        for layer in layers
    ]
    if len({w.shape for w in weights}) != 1:
        raise GrokpathError(f"{path}: router weights differ in shape across layers")
    return RouterWeights(layers, np.stack(weights), int(table["top_k"].iloc[0]))
