"""Per-sample, per-layer router statistics of a MoE checkpoint, streamed to Parquet.

Output table (one row per sample and MoE layer, rows of a sample in layer order):

| column | type | meaning |
|---|---|---|
| domain | string | the sample's domain |
| sample_id | string | the sample's id |
| step | int64 | training step of the checkpoint |
| layer | int32 | decoder layer index of this router (MoE layers only; dense layers are skipped) |
| n_tokens | int32 | real (unpadded, after truncation to `max_length`) tokens averaged over |
| weights | list<float32>, length = routed experts | per-token routing weights (kind below), each summing to 1, averaged over the sample's real tokens |
| entropy | float32 | mean over real tokens of the entropy of the per-token `weights` vector, in nats |
| weights_kind | string | `scores` or `topk` (what `weights` holds; the same on every row) |
| shared_expert | string | `none`, `gated` (own sigmoid gate: Qwen2-MoE) or `always_on` (DeepSeek) |
| shared_gate | float32, null unless gated | mean over real tokens of the shared expert's sigmoid gate |

The Parquet schema metadata (`grokpath.routing.pathways.EXTRACTION_METADATA_KEY`, JSON) records the
family, the kind written and the one asked for, what it means, experts, top-k, the MoE layers and
the dense layers skipped, and the shared expert: `grokpath.routing.pathways.read_extraction_metadata`.

Weight kinds (`pathways.weights`; per family in grokpath.routing.routers):
- `scores`: the family's own gate scores over every expert (softmax: OLMoE, FlexOlmo, Mixtral,
  Qwen, DeepSeek-V2; sigmoid, normalised to sum to 1: DeepSeek-V3). For OLMoE this is the FULL
  softmax, not the top-k weights: the top-8 of OLMoE carry < 1 of the mass (norm_topk_prob is
  false), so a 0.7 cumulative cut on top-k weights could fail to close.
- `topk`: the weights the model applies to its chosen experts (the router's own output, as the
  MoE block hands it to its experts), scattered into the expert vector, zeros elsewhere,
  normalised to sum to 1. gpt-oss, Granite-MoE and PhiMoE have no scores over all experts, so
  they always give `topk` (asked for `scores`, they log it and the table says `topk`).

Choices (the paper leaves them open):
- Every real token counts, including the first one; padding never does.
- Routing entropy is the mean of per-token entropies (how sharply each token is routed), not the
  entropy of the averaged distribution (which also grows when tokens disagree with each other and
  would duplicate what the edit distance measures).

How it runs:
- Only the backbone (`model.model`) is run, never the LM head: the routers are all we need and the
  head is the largest matmul of a small-hidden model.
- Forward hooks on the router modules reduce each layer's router output to per-sample sums right
  away (in fp32, masked by the attention mask because the router sees tokens flattened over
  batch*seq INCLUDING padding), so no (batch*seq, experts) tensor outlives its layer.
- position_ids are derived from the attention mask, so a left-padded sample sees the same
  positions as when it runs alone (padding invariance holds for both padding sides).
- Samples are tokenised in windows of `sort_window`; each window is sorted by length (longest
  first, so an out-of-memory shows up on the first batch) and cut into batches. Memory is
  bounded by the window and the Parquet row-group buffer, whatever the number of samples.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from dataclasses import dataclass
from functools import partial
from typing import Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from grokpath.errors import GrokpathError
from grokpath.routing.pathways import (  # noqa: F401 (re-exported)
    EXTRACTION_METADATA_KEY,
    PATHWAY_COLUMNS,
    PATHWAY_SCHEMA,
)
from grokpath.routing.routers import WEIGHT_KINDS, RouterSpec, backbone_of, find_routers, router_info
from grokpath.tableio import ParquetStream

log = logging.getLogger("grokpath")

REQUIRED_SAMPLE_KEYS = ("sample_id", "domain", "text")

# What extraction writes: the pathway columns every reader needs, then what the routing was.
EXTRACTION_SCHEMA = pa.schema(
    list(PATHWAY_SCHEMA)
    + [
        ("weights_kind", pa.string()),
        ("shared_expert", pa.string()),
        ("shared_gate", pa.float32()),
    ]
)
EXTRACTION_COLUMNS = EXTRACTION_SCHEMA.names


@dataclass
class ExtractionStats:
    n_samples: int
    n_skipped_empty: int
    n_tokens: int  # real tokens
    n_padded_tokens: int  # tokens the model actually ran, padding included
    seconds: float
    family: str = ""
    weights_kind: str = ""

    @property
    def samples_per_s(self) -> float:
        return self.n_samples / self.seconds if self.seconds > 0 else float("nan")

    @property
    def tokens_per_s(self) -> float:
        return self.n_tokens / self.seconds if self.seconds > 0 else float("nan")

    @property
    def padding_efficiency(self) -> float:
        return self.n_tokens / self.n_padded_tokens if self.n_padded_tokens else float("nan")


class RouterCapture:
    """Hooks on the routers that turn each layer's routing into per-sample means at once.

    `routers` is a RouterSpec, or the router modules of one (`spec.modules`); `weights` is
    `scores` or `topk` (grokpath.routing.routers): a family without scores over all experts gives
    `topk` whatever is asked (`self.kind` says which). A module that `find_routers` did not
    return is read as before adapters existed: the softmax of its first output.

    Use: `with RouterCapture(spec) as capture:` then per batch `capture.start_batch(mask)`, the
    forward pass, `capture.collect()` (and `capture.collect_shared_gate()`).
    """

    def __init__(self, routers, weights: str = "scores"):
        if weights not in WEIGHT_KINDS:
            raise GrokpathError(
                f"pathways.weights {weights!r}: expected one of {', '.join(WEIGHT_KINDS)}"
            )
        if isinstance(routers, RouterSpec):
            self._modules = list(routers.modules)
            self._layers = list(routers.layers)
            self._score_fns = [routers.score_function] * len(self._modules)
            self._shared = list(routers.shared_gates) or [None] * len(self._modules)
        else:
            self._modules = list(routers)
            self._layers = list(range(len(self._modules)))
            infos = [router_info(m) for m in self._modules]
            self._score_fns = ["softmax" if i is None else i[0].scores for i in infos]
            self._shared = [None if i is None else i[1] for i in infos]
        self.requested = weights
        self.kind = weights if all(fn is not None for fn in self._score_fns) else "topk"
        self._handles: list = []
        self._mask: torch.Tensor | None = None  # (batch, seq) bool
        self._n_tokens: torch.Tensor | None = None  # (batch, 1) float32
        self._probs: dict[int, torch.Tensor] = {}  # position -> (batch, experts)
        self._entropy: dict[int, torch.Tensor] = {}  # position -> (batch,)
        self._shared_gate: dict[int, torch.Tensor] = {}  # position -> (batch,)

    @property
    def mean_probs(self) -> list[torch.Tensor]:  # per layer (batch, experts)
        return [self._probs[i] for i in sorted(self._probs)]

    @property
    def mean_entropy(self) -> list[torch.Tensor]:  # per layer (batch,)
        return [self._entropy[i] for i in sorted(self._entropy)]

    @property
    def has_shared_gate(self) -> bool:
        return any(g is not None for g in self._shared)

    def __enter__(self) -> "RouterCapture":
        for position, (module, gate) in enumerate(zip(self._modules, self._shared)):
            self._handles.append(module.register_forward_hook(partial(self._hook, position)))
            if gate is not None:
                self._handles.append(gate.register_forward_hook(partial(self._gate_hook, position)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def start_batch(self, attention_mask: torch.Tensor) -> None:
        self._mask = attention_mask.bool()
        self._n_tokens = self._mask.sum(dim=1, keepdim=True).to(torch.float32)
        self._probs, self._entropy, self._shared_gate = {}, {}, {}

    def _token_weights(self, position: int, output) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens, experts) per-token weights summing to 1, and (tokens,) their entropy."""
        logits = output[0] if isinstance(output, (tuple, list)) else output
        score_fn = self._score_fns[position]
        if self.kind == "scores" and score_fn == "softmax":
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            probs = log_probs.exp()
            return probs, -(probs * log_probs).sum(dim=-1)
        if self.kind == "scores":  # sigmoid (DeepSeek-V3): normalised to sum to 1
            scores = torch.sigmoid(logits.float())
            probs = scores / scores.sum(dim=-1, keepdim=True)
        else:
            if not isinstance(output, (tuple, list)) or len(output) < 3:
                raise GrokpathError(
                    f"{type(self._modules[position]).__name__}: router output is not "
                    "(logits, top_k_weights, top_k_ids); topk weights need it"
                )
            top_weights, top_ids = output[1].float(), output[2].long()
            applied = torch.zeros(
                top_ids.shape[0], logits.shape[-1], dtype=torch.float32, device=logits.device
            ).scatter_add_(1, top_ids, top_weights)
            total = applied.sum(dim=-1, keepdim=True)
            probs = applied / torch.where(total > 0, total, 1.0)
        return probs, -torch.special.xlogy(probs, probs).sum(dim=-1)

    def _hook(self, position: int, module, inputs, output) -> None:
        if self._mask is None:
            raise GrokpathError("RouterCapture: start_batch(attention_mask) before the forward")
        batch, seq = self._mask.shape
        probs, token_entropy = self._token_weights(position, output)
        probs = probs.view(batch, seq, -1)
        token_entropy = token_entropy.view(batch, seq)
        # a no-op on one device; with a device_map this layer may sit on another GPU
        mask, n_tokens = self._mask.to(probs.device), self._n_tokens.to(probs.device)
        # where(), not multiply: a padded position must not leak even if its value is not finite
        prob_sum = torch.where(mask.unsqueeze(-1), probs, 0.0).sum(dim=1)
        entropy_sum = torch.where(mask, token_entropy, 0.0).sum(dim=1, keepdim=True)
        self._probs[position] = prob_sum / n_tokens
        self._entropy[position] = (entropy_sum / n_tokens).squeeze(1)

    def _gate_hook(self, position: int, module, inputs, output) -> None:
        """A shared expert's own gate (Linear hidden -> 1; the block applies a sigmoid)."""
        batch, seq = self._mask.shape
        gate = torch.sigmoid(output.float()).view(batch, seq)
        mask, n_tokens = self._mask.to(gate.device), self._n_tokens.to(gate.device)
        gate_sum = torch.where(mask, gate, 0.0).sum(dim=1, keepdim=True)
        self._shared_gate[position] = (gate_sum / n_tokens).squeeze(1)

    def _check_all_ran(self) -> None:
        missing = [self._layers[i] for i in range(len(self._modules)) if i not in self._probs]
        if missing:
            raise GrokpathError(
                f"the router(s) of layer(s) {missing} did not run in this forward pass "
                "(a fused MoE kernel that bypasses the router module?)"
            )

    def collect(self) -> tuple[np.ndarray, np.ndarray]:
        """(batch, layers, experts) mean weights and (batch, layers) mean entropy, on the CPU."""
        self._check_all_ran()
        here = self._mask.device  # layers of a device_map model may sit on several GPUs
        probs = torch.stack([p.to(here) for p in self.mean_probs], dim=1).cpu().numpy()
        entropy = torch.stack([e.to(here) for e in self.mean_entropy], dim=1).cpu().numpy()
        return probs, entropy

    def collect_shared_gate(self) -> np.ndarray:
        """(batch, layers) mean shared-expert gate; NaN on layers without a gated shared expert."""
        batch = self._mask.shape[0]
        out = np.full((batch, len(self._modules)), np.nan, dtype=np.float32)
        for position, values in self._shared_gate.items():
            out[:, position] = values.cpu().numpy()
        return out


def default_dtype(device: str | torch.device) -> torch.dtype:
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def check_samples(samples: Sequence[dict]) -> None:
    for position, sample in enumerate(samples):
        missing = [k for k in REQUIRED_SAMPLE_KEYS if k not in sample]
        if missing:
            raise GrokpathError(
                f"sample #{position}: missing key(s) {', '.join(missing)}; "
                f"expected {', '.join(REQUIRED_SAMPLE_KEYS)}"
            )


def tokenize_window(tokenizer, texts: list[str], max_length: int) -> list[np.ndarray]:
    encoded = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=max_length)
    return [np.asarray(ids, dtype=np.int64) for ids in encoded["input_ids"]]


def pad_batch(
    token_ids: Sequence[np.ndarray], pad_id: int, padding_side: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input_ids, attention_mask and mask-derived position_ids for one batch."""
    width = max(len(ids) for ids in token_ids)
    input_ids = np.full((len(token_ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(token_ids), width), dtype=np.int64)
    for row, ids in enumerate(token_ids):
        span = slice(width - len(ids), width) if padding_side == "left" else slice(0, len(ids))
        input_ids[row, span] = ids
        mask[row, span] = 1
    mask_t = torch.from_numpy(mask)
    positions = (mask_t.cumsum(dim=1) - 1).clamp(min=0)
    return torch.from_numpy(input_ids), mask_t, positions


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices into the window, longest first, cut into batches of `batch_size`."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class RowBuffer:
    """Collects per-batch results and writes them as Parquet row groups of bounded size."""

    def __init__(
        self,
        stream: ParquetStream,
        step: int,
        num_experts: int,
        layers: Sequence[int],
        flush_rows: int,
        weights_kind: str = "scores",
        shared_expert: str = "none",
    ):
        self._stream = stream
        self._step = step
        self._num_experts = num_experts
        self._layers = np.asarray(layers, dtype=np.int32)
        self._flush_rows = flush_rows
        self._weights_kind = weights_kind
        self._shared_expert = shared_expert
        self._parts: list[tuple] = []
        self._rows = 0

    def add(
        self,
        domains: list[str],
        sample_ids: list[str],
        n_tokens: np.ndarray,
        probs: np.ndarray,
        entropy: np.ndarray,
        shared_gate: np.ndarray | None = None,
    ) -> None:
        if shared_gate is None:
            shared_gate = np.full((len(sample_ids), len(self._layers)), np.nan, dtype=np.float32)
        self._parts.append((domains, sample_ids, n_tokens, probs, entropy, shared_gate))
        self._rows += len(sample_ids) * len(self._layers)
        if self._rows >= self._flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self._parts:
            return
        n_layers = len(self._layers)
        domains = [d for part in self._parts for d in part[0] for _ in range(n_layers)]
        sample_ids = [s for part in self._parts for s in part[1] for _ in range(n_layers)]
        n_tokens = np.repeat(np.concatenate([p[2] for p in self._parts]), n_layers).astype(np.int32)
        probs = np.concatenate([p[3] for p in self._parts]).astype(np.float32).reshape(-1)
        entropy = np.concatenate([p[4] for p in self._parts]).astype(np.float32).reshape(-1)
        shared_gate = np.concatenate([p[5] for p in self._parts]).astype(np.float32).reshape(-1)
        n_rows = len(sample_ids)
        offsets = np.arange(0, (n_rows + 1) * self._num_experts, self._num_experts, dtype=np.int32)
        self._stream.write(
            {
                "domain": domains,
                "sample_id": sample_ids,
                "step": np.full(n_rows, self._step, dtype=np.int64),
                "layer": np.tile(self._layers, n_rows // n_layers),
                "n_tokens": n_tokens,
                "weights": pa.ListArray.from_arrays(pa.array(offsets), pa.array(probs)),
                "entropy": entropy,
                "weights_kind": [self._weights_kind] * n_rows,
                "shared_expert": [self._shared_expert] * n_rows,
                "shared_gate": pa.array(shared_gate, mask=np.isnan(shared_gate)),
            }
        )
        self._parts, self._rows = [], 0


def _windows(samples: Sequence[dict], size: int) -> Iterable[Sequence[dict]]:
    for start in range(0, len(samples), size):
        yield samples[start : start + size]


def extract_pathways(
    model: nn.Module,
    tokenizer,
    samples: Sequence[dict],
    dest_parquet,
    *,
    step: int,
    batch_size: int = 16,
    max_length: int = 512,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    sort_window: int = 1024,
    flush_rows: int = 2048,
    progress: bool = True,
    weights: str = "scores",
) -> ExtractionStats:
    """Write the pathway table (see module docstring) for `samples` to `dest_parquet`.

    `weights` is `scores` or `topk` (module docstring); a family without scores over all experts
    writes `topk` whichever is asked, logs it, and the table and its metadata say so.

    `samples` are dicts with sample_id, domain and text. The model is moved to `device` and
    `dtype` (default bf16 on CUDA, fp32 elsewhere) and put in eval mode; a model that accelerate
    placed (`device_map`) stays where it is, and batches go to its first device. Samples that
    tokenise to nothing are skipped and counted. Returns throughput numbers, which are also logged.

    `sort_window` samples are tokenised and length-sorted together; `flush_rows` rows make one
    Parquet row group. Encoding a row group costs a few kB of transient memory per row (measured
    ~60 MB for 40k rows), so this, not the number of samples, sets the writer's peak.
    """
    from tqdm.auto import tqdm

    if batch_size < 1 or max_length < 1 or sort_window < 1:
        raise GrokpathError(
            f"batch_size, max_length and sort_window must be >= 1 "
            f"(got {batch_size}, {max_length}, {sort_window})"
        )
    check_samples(samples)
    device = torch.device(device)
    dtype = dtype or default_dtype(device)
    if getattr(model, "hf_device_map", None):  # placed by accelerate (device_map): leave it there
        device = model.get_input_embeddings().weight.device
        model.eval()
    else:
        model.to(device=device, dtype=dtype).eval()
    backbone = backbone_of(model)
    spec: RouterSpec = find_routers(model)
    kind = spec.weights_kind(weights)
    _log_routing(spec, weights, kind)
    schema = EXTRACTION_SCHEMA.with_metadata(
        {EXTRACTION_METADATA_KEY: json.dumps(spec.metadata(weights), sort_keys=True)}
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    padding_side = getattr(tokenizer, "padding_side", "right")

    stats = ExtractionStats(0, 0, 0, 0, 0.0, family=spec.family, weights_kind=kind)
    start = time.perf_counter()
    bar = tqdm(total=len(samples), unit="sample", disable=not progress, smoothing=0.1)
    with (
        ParquetStream(dest_parquet, schema) as stream,
        RouterCapture(spec, weights) as capture,
    ):
        buffer = RowBuffer(
            stream, step, spec.num_experts, spec.layers, flush_rows, kind, spec.shared_expert
        )
        with torch.inference_mode():
            for window in _windows(samples, sort_window):
                token_ids = tokenize_window(tokenizer, [s["text"] for s in window], max_length)
                lengths = [len(ids) for ids in token_ids]
                for batch in length_sorted_batches(lengths, batch_size):
                    kept = [i for i in batch if lengths[i] > 0]
                    stats.n_skipped_empty += len(batch) - len(kept)
                    if kept:
                        _run_batch(
                            backbone,
                            capture,
                            buffer,
                            window,
                            token_ids,
                            kept,
                            pad_id,
                            padding_side,
                            device,
                            stats,
                        )
                    bar.update(len(batch))
                    elapsed = time.perf_counter() - start
                    bar.set_postfix(
                        tok_s=f"{stats.n_tokens / max(elapsed, 1e-9):,.0f}", refresh=False
                    )
        buffer.flush()
    bar.close()
    stats.seconds = time.perf_counter() - start
    _log_stats(stats, dest_parquet)
    return stats


def _run_batch(
    backbone, capture, buffer, window, token_ids, kept, pad_id, padding_side, device, stats
) -> None:
    input_ids, mask, positions = pad_batch([token_ids[i] for i in kept], pad_id, padding_side)
    capture.start_batch(mask.to(device))
    backbone(
        input_ids=input_ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        use_cache=False,
    )
    probs, entropy = capture.collect()
    n_tokens = mask.sum(dim=1).numpy()
    buffer.add(
        [window[i]["domain"] for i in kept],
        [str(window[i]["sample_id"]) for i in kept],
        n_tokens,
        probs,
        entropy,
        capture.collect_shared_gate() if capture.has_shared_gate else None,
    )
    stats.n_samples += len(kept)
    stats.n_tokens += int(n_tokens.sum())
    stats.n_padded_tokens += int(mask.numel())


def _log_routing(spec: RouterSpec, requested: str, kind: str) -> None:
    if kind != requested:
        log.warning(
            "%s has no router scores over all experts: writing topk weights (asked for %s)",
            spec.family,
            requested,
        )
    log.info(
        "%s: %d MoE layers, %d experts, top-%d, weights %s%s%s",
        spec.family,
        len(spec.layers),
        spec.num_experts,
        spec.top_k,
        kind,
        f"; dense layers skipped: {spec.dense_layers}" if spec.dense_layers else "",
        f"; shared expert: {spec.shared_expert}" if spec.shared_expert != "none" else "",
    )


def _log_stats(stats: ExtractionStats, dest) -> None:
    if stats.n_skipped_empty:
        log.warning("skipped %d sample(s) with no tokens", stats.n_skipped_empty)
    log.info(
        "extracted %d samples (%d tokens, padding efficiency %.2f) in %.1f s: "
        "%.1f samples/s, %.0f tokens/s -> %s",
        stats.n_samples,
        stats.n_tokens,
        stats.padding_efficiency,
        stats.seconds,
        stats.samples_per_s,
        stats.tokens_per_s,
        dest,
    )


# ---------------------------------------------------------------- which samples to extract


def _seeded_subset(ids: list[str], count: int, seed: int, domain: str, part: str) -> list[str]:
    """`count` ids drawn without replacement; depends only on (seed, domain, part) and the ids."""
    if count >= len(ids):
        return list(ids)
    rng = np.random.default_rng([seed, zlib.crc32(domain.encode()), zlib.crc32(part.encode())])
    chosen = rng.choice(len(ids), size=count, replace=False)
    return [ids[i] for i in sorted(chosen)]


def select_samples(
    train_rows: dict[str, list[dict]], max_per_domain: int | None, seed: int
) -> list[dict]:
    """A seeded uniform sample of each domain's training rows, at most `max_per_domain` each.

    The choice reads neither losses nor the memorization table on purpose: pathways are then a
    function of (checkpoint, corpus, seed) alone, so a checkpoint added to the config extracts
    that checkpoint only (a new checkpoint moves t*, which would otherwise re-extract every
    step). Memorized groups are formed later (pathway_metrics) from the samples drawn here;
    `max_per_domain: null` takes every sample, so the groups are complete. Every checkpoint step
    gets the same samples.
    """
    selected: list[dict] = []
    for domain in sorted(train_rows):
        by_id = {str(row["sample_id"]): row for row in train_rows[domain]}
        if not by_id:
            raise GrokpathError(f"domain {domain!r}: empty training sample set")
        ids = sorted(by_id)
        cap = len(ids) if max_per_domain is None else int(max_per_domain)
        chosen = _seeded_subset(ids, cap, seed, domain, "train")
        log.info("%s: %d of %d training samples selected", domain, len(chosen), len(ids))
        selected += [
            {"sample_id": sid, "domain": domain, "text": by_id[sid]["text"]} for sid in chosen
        ]
    return selected
