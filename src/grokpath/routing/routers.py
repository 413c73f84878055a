"""Find the MoE routers of a model: one small adapter per model family.

In transformers 5.x every supported family has its router as its own module, whose `.weight` is
the (experts, hidden) router matrix and whose forward returns `(router_logits, top_k_weights,
top_k_ids)`: the logits over every expert, and the weights and ids the MoE block hands its
experts. Extraction hooks that output, so the `topk` weights are exactly what the model applies
(nothing is recomputed), and `scores` are the family's own function of the same logits.

Per family (`ADAPTERS`):

| family | router | scores (all experts) | top-k weights the model applies |
|---|---|---|---|
| olmoe, flex_olmo, qwen2_moe, qwen3_moe | `mlp.gate` | softmax | softmax of the chosen; renormalised if `norm_topk_prob` |
| mixtral | `mlp.gate` | softmax | softmax of the chosen, always renormalised |
| deepseek_v2 | `mlp.gate` | softmax | softmax of the chosen (greedy or group-limited) x `routed_scaling_factor` |
| deepseek_v3 | `mlp.gate` | sigmoid, normalised | sigmoid of the chosen (chosen with `e_score_correction_bias`, group-limited), normalised if `norm_topk_prob`, x `routed_scaling_factor` |
| gpt_oss | `mlp.router` | none | softmax over the top-k logits (router has a bias) |
| granitemoe | `block_sparse_moe.router` | none | softmax over the top-k logits |
| phimoe | `mlp.router` | none | sparsemixer multipliers (top-2; masked softmaxes) |

Shared experts are not routed ids: Qwen2-MoE's is gated by a sigmoid of its own
(`mlp.shared_expert_gate`), DeepSeek's is always on (`mlp.shared_experts`). Decoder layers without
a router (DeepSeek's `first_k_dense_replace`, Qwen's `decoder_sparse_step` / `mlp_only_layers`)
are dense and skipped; `RouterSpec.dense_layers` names them. Anything else (a dense model, an
unknown MoE family) raises a one-line GrokpathError listing the supported families, instead of
silently producing empty pathways.

`router_spec_from_checkpoint` reads only the router matrices from a checkpoint's safetensors files,
so metrics that need W_l (pathway consistency) do not load a 7B model per step.

torch is imported inside the functions that need it: `read_router_weights` serves the metric jobs,
which need neither torch nor transformers (seconds of start-up each).
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from grokpath.errors import GrokpathError

if TYPE_CHECKING:
    import torch
    from torch import nn

GATE_PATH = "mlp.gate"

WEIGHT_KINDS = ("scores", "topk")


@dataclass(frozen=True)
class RouterAdapter:
    """How one model family exposes its routers."""

    family: str
    gate_path: str  # attribute path from a decoder layer to its router module
    norm_topk_prob: Callable[[object], bool]  # config -> whether top-k weights are renormalised
    scores: str | None = "softmax"  # the family's gate function over all experts; None: none
    shared_gate_path: str | None = None  # a shared expert's own gate (Linear hidden -> 1, sigmoid)
    shared_expert_path: str | None = None  # a shared expert that is always on (no gate)
    topk_rule: str = ""  # what the model applies to its chosen experts, in words
    fixed_top_k: int | None = None  # experts per token when the router ignores config's top_k
    saved_gate_paths: tuple[str, ...] = ()  # other names of the router in checkpoint files


def _flag(name: str, default: bool = False) -> Callable[[object], bool]:
    return lambda cfg: bool(getattr(cfg, name, default))


_SOFTMAX_TOPK = "softmax over all experts, top-k of it; renormalised over the k if norm_topk_prob"

ADAPTERS: dict[str, RouterAdapter] = {
    adapter.family: adapter
    for adapter in (
        RouterAdapter("olmoe", GATE_PATH, _flag("norm_topk_prob"), topk_rule=_SOFTMAX_TOPK),
        RouterAdapter("flex_olmo", GATE_PATH, _flag("norm_topk_prob"), topk_rule=_SOFTMAX_TOPK),
        # Mixtral always renormalises its top-k weights (there is no config switch).
        RouterAdapter(
            "mixtral",
            GATE_PATH,
            lambda cfg: True,
            saved_gate_paths=("block_sparse_moe.gate",),
            topk_rule="softmax over all experts, top-k of it, renormalised over the k",
        ),
        RouterAdapter(
            "qwen2_moe",
            GATE_PATH,
            _flag("norm_topk_prob"),
            shared_gate_path="mlp.shared_expert_gate",
            topk_rule=_SOFTMAX_TOPK,
        ),
        RouterAdapter("qwen3_moe", GATE_PATH, _flag("norm_topk_prob"), topk_rule=_SOFTMAX_TOPK),
        RouterAdapter(
            "deepseek_v2",
            GATE_PATH,
            lambda cfg: False,
            shared_expert_path="mlp.shared_experts",
            topk_rule="softmax over all experts, top-k of it (greedy or group-limited), "
            "times routed_scaling_factor",
        ),
        RouterAdapter(
            "deepseek_v3",
            GATE_PATH,
            _flag("norm_topk_prob"),
            scores="sigmoid",
            shared_expert_path="mlp.shared_experts",
            topk_rule="sigmoid scores; experts chosen on scores + e_score_correction_bias within "
            "the topk_group best groups; the chosen sigmoid scores, normalised if norm_topk_prob, "
            "times routed_scaling_factor",
        ),
        RouterAdapter(
            "gpt_oss",
            "mlp.router",
            lambda cfg: True,
            scores=None,
            topk_rule="softmax over the top-k logits (router with bias)",
        ),
        RouterAdapter(
            "granitemoe",
            "block_sparse_moe.router",
            lambda cfg: True,
            scores=None,
            saved_gate_paths=("block_sparse_moe.router.layer",),
            topk_rule="softmax over the top-k logits",
        ),
        RouterAdapter(
            "phimoe",
            "mlp.router",
            lambda cfg: False,
            scores=None,
            fixed_top_k=2,
            saved_gate_paths=("block_sparse_moe.gate",),
            topk_rule="sparsemixer multipliers of the top-2 (each a softmax over the logits "
            "within jitter_eps of its expert)",
        ),
    )
}

# router module -> (adapter, its shared-expert gate or None): lets RouterCapture, given the bare
# modules of a spec (as older callers pass them), still apply the family's score function.
_ROUTER_INFO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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
    family: str = ""
    score_function: str | None = "softmax"  # softmax | sigmoid | None (no scores over all experts)
    dense_layers: list[int] = field(default_factory=list)  # decoder layers without a router
    shared_expert: str = "none"  # none | gated (own sigmoid gate) | always_on
    shared_gates: list = field(default_factory=list, repr=False)  # per MoE layer: module or None
    model_class: str = ""

    def stacked_weights(self, dtype=None) -> torch.Tensor:
        """(layers, experts, hidden) on CPU (float32 by default): the expert embeddings v_{l,k}
        of Metric 2."""
        import torch

        dtype = torch.float32 if dtype is None else dtype
        return torch.stack([w.detach().to("cpu", dtype) for w in self.weights])

    @property
    def adapter(self) -> RouterAdapter | None:
        return ADAPTERS.get(self.family)

    def weights_kind(self, requested: str = "scores") -> str:
        """The kind extraction writes: `requested`, except that a family without scores over all
        experts (gpt_oss, granitemoe, phimoe) always gives `topk`."""
        if requested not in WEIGHT_KINDS:
            raise GrokpathError(
                f"pathways.weights {requested!r}: expected one of {', '.join(WEIGHT_KINDS)}"
            )
        return requested if self.score_function is not None else "topk"

    def metadata(self, requested: str = "scores") -> dict:
        """What an extraction table records about the routing it was made from."""
        adapter = self.adapter
        kind = self.weights_kind(requested)
        if kind == "scores":
            meaning = (
                "softmax of the router logits over all experts"
                if self.score_function == "softmax"
                else "sigmoid of the router logits over all experts, normalised to sum to 1"
            )
        else:
            meaning = (
                "the weights the model applies to its chosen experts, zeros elsewhere, normalised "
                f"to sum to 1 ({adapter.topk_rule if adapter else 'top-k'})"
            )
        return {
            "family": self.family,
            "model_class": self.model_class,
            "weights": kind,
            "weights_requested": requested,
            "weights_meaning": meaning,
            "score_function": self.score_function,
            "num_experts": self.num_experts,
            "top_k": self.top_k,
            "norm_topk_prob": self.norm_topk_prob,
            "moe_layers": list(self.layers),
            "dense_layers": list(self.dense_layers),
            "shared_expert": self.shared_expert,
        }


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


def _has_parameters(module: nn.Module | None) -> bool:
    return module is not None and any(p.numel() for p in module.parameters())


def supported_families() -> str:
    return ", ".join(sorted(ADAPTERS))


def find_routers(model: nn.Module) -> RouterSpec:
    """Locate every MoE router of `model` (a *ForCausalLM or its backbone)."""
    name = type(model).__name__
    model_type = _model_type(model)
    adapter = ADAPTERS.get(model_type)
    paths = sorted({a.gate_path for a in ADAPTERS.values()})
    looked_for = (
        f"a router module at model.layers[i].{{{', '.join(paths)}}} with a 2-D .weight "
        f"(experts, hidden) and .top_k; supported model types: {supported_families()}"
    )
    if adapter is None:
        raise GrokpathError(
            f"{name} (model_type {model_type!r}): no MoE router adapter; looked for {looked_for}"
        )
    backbone = backbone_of(model)
    prefix = "model." if backbone is not model else ""
    layers, modules, names, dense, shared_gates, shared_layers = [], [], [], [], [], []
    for index, layer in enumerate(backbone.layers):
        gate = _resolve(layer, adapter.gate_path)
        if not _is_router(gate):  # a dense MLP interleaved with the MoE layers: skipped, named
            dense.append(index)
            continue
        layers.append(index)
        modules.append(gate)
        names.append(f"{prefix}layers.{index}.{adapter.gate_path}.weight")
        shared_gate = (
            _resolve(layer, adapter.shared_gate_path) if adapter.shared_gate_path else None
        )
        shared_gates.append(shared_gate)
        always_on = adapter.shared_expert_path and _has_parameters(
            _resolve(layer, adapter.shared_expert_path)
        )
        shared_layers.append(
            "gated" if shared_gate is not None else "always_on" if always_on else "none"
        )
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
    if len(set(shared_layers)) != 1:
        raise GrokpathError(
            f"{name}: MoE layers differ in their shared expert: {dict(zip(layers, shared_layers))}"
        )
    for gate, shared_gate in zip(modules, shared_gates):
        _ROUTER_INFO[gate] = (adapter, None if shared_gate is None else weakref.ref(shared_gate))
    return RouterSpec(
        layers=layers,
        weights=weights,
        num_experts=weights[0].shape[0],
        top_k=adapter.fixed_top_k or int(modules[0].top_k),
        norm_topk_prob=adapter.norm_topk_prob(getattr(model, "config", None)),
        modules=modules,
        param_names=names,
        family=adapter.family,
        score_function=adapter.scores,
        dense_layers=dense,
        shared_expert=shared_layers[0],
        shared_gates=shared_gates,
        model_class=name,
    )


def router_info(module: nn.Module) -> tuple[RouterAdapter, nn.Module | None] | None:
    """(adapter, shared-expert gate) of a router module that `find_routers` returned, else None."""
    info = _ROUTER_INFO.get(module)
    if info is None:
        return None
    adapter, shared_ref = info
    return adapter, None if shared_ref is None else shared_ref()


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
    # transformers saves some families under their original (hub) names: try those too
    saved = spec.adapter.saved_gate_paths if spec.adapter else ()
    stored = []
    for name, layer in zip(spec.param_names, spec.layers):
        prefix = name[: name.index(f"layers.{layer}.")]
        candidates = [name] + [f"{prefix}layers.{layer}.{path}.weight" for path in saved]
        stored.append(next((c for c in candidates if c in files), None))
    if None in stored:
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
        return find_routers(model)
    weights = []
    for name in stored:
        with safe_open(files[name], "pt") as fh:
            weights.append(fh.get_tensor(name))
    spec.weights = weights
    spec.modules, spec.shared_gates = [], []
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
