"""Pathways: which experts carry a sample, layer by layer (pure functions, no torch).

A pathway is built from a sample's token-averaged router weights, one row of E weights per MoE
layer. Per layer the experts are sorted by weight, descending (ties: lower expert id first), and
kept until their cumulative weight EXCEEDS the threshold (paper: 0.7); the expert that crosses it
is kept. If rounding leaves the total at or below the threshold, every expert is kept.

Two forms of the same pathway:
- id level: a tuple of layers, each a tuple of expert ids in kept order, e.g. ((3, 1, 5), (2,), (9, 1));
- string: ids joined with ',' within a layer and '-' across layers, e.g. "3,1,5-2-9,1" (the paper's).

`id_token_string` re-encodes the id level as one character per expert id (and '-' between layers)
so that a character-level Levenshtein on it is the Levenshtein over expert-id tokens: substituting
expert 12 for expert 13 costs 1 there, while on the paper string it costs 1 and "12"->"5" costs 2.

`load_pathway_table` reads an extraction Parquet (see grokpath.routing.extract) into dense arrays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from grokpath.errors import GrokpathError

PAPER_THRESHOLD = 0.7
LAYER_SEP = "-"
EXPERT_SEP = ","
# Expert id k becomes chr(ID_TOKEN_BASE + k): far above ASCII, so it never collides with '-'.
ID_TOKEN_BASE = 0x100

IdPathway = tuple[tuple[int, ...], ...]

# The extraction table (grokpath.routing.extract writes it; columns documented there). Defined here, in
# the torch-free reader, so the metric jobs read it without importing torch.
PATHWAY_SCHEMA = pa.schema(
    [
        ("domain", pa.string()),
        ("sample_id", pa.string()),
        ("step", pa.int64()),
        ("layer", pa.int32()),
        ("n_tokens", pa.int32()),
        ("weights", pa.list_(pa.float32())),
        ("entropy", pa.float32()),
    ]
)
PATHWAY_COLUMNS = PATHWAY_SCHEMA.names


def expert_order(weights: np.ndarray) -> np.ndarray:
    """Expert ids sorted by weight descending along the last axis; ties keep the lower id first."""
    # a stable sort of the negated weights keeps equal weights in ascending id order
    return np.argsort(-np.asarray(weights, dtype=np.float64), axis=-1, kind="stable")


def kept_counts(weights: np.ndarray, threshold: float = PAPER_THRESHOLD) -> np.ndarray:
    """How many experts each row keeps: up to and including the first that makes cum > threshold."""
    weights = np.asarray(weights, dtype=np.float64)
    order = expert_order(weights)
    cumulative = np.cumsum(np.take_along_axis(weights, order, axis=-1), axis=-1)
    crossed = cumulative > threshold
    n_experts = weights.shape[-1]
    return np.where(crossed.any(axis=-1), crossed.argmax(axis=-1) + 1, n_experts)


def id_pathways(weights: np.ndarray, threshold: float = PAPER_THRESHOLD) -> list[IdPathway]:
    """Id-level pathways for weights of shape (samples, layers, experts)."""
    weights = _as_3d(weights)
    order = expert_order(weights)
    counts = kept_counts(weights, threshold)
    return [
        tuple(tuple(int(e) for e in order[i, l, : counts[i, l]]) for l in range(weights.shape[1]))
        for i in range(weights.shape[0])
    ]


def layer_string(expert_ids: Sequence[int]) -> str:
    return EXPERT_SEP.join(str(e) for e in expert_ids)


def pathway_string(pathway: IdPathway) -> str:
    """The paper's form, e.g. ((3, 1, 5), (2,), (9, 1)) -> "3,1,5-2-9,1"."""
    return LAYER_SEP.join(layer_string(layer) for layer in pathway)


def id_token_string(expert_ids_or_pathway) -> str:
    """One character per expert id; layers separated by '-'. Accepts a layer or a pathway."""
    items = list(expert_ids_or_pathway)
    if items and isinstance(items[0], tuple):
        return LAYER_SEP.join(id_token_string(layer) for layer in items)
    return "".join(chr(ID_TOKEN_BASE + int(e)) for e in items)


def pathway_strings(weights: np.ndarray, threshold: float = PAPER_THRESHOLD) -> list[str]:
    return [pathway_string(p) for p in id_pathways(weights, threshold)]


def layer_strings(
    pathways: Sequence[IdPathway], layer_position: int, id_level: bool = False
) -> list[str]:
    """The strings of one layer (by position in the pathway) for every sample."""
    encode = id_token_string if id_level else layer_string
    return [encode(p[layer_position]) for p in pathways]


def top_k_ids(weights: np.ndarray, k: int) -> np.ndarray:
    """The k highest-weighted expert ids along the last axis (ties: lower id), shape (..., k)."""
    weights = np.asarray(weights)
    if not 1 <= k <= weights.shape[-1]:
        raise GrokpathError(f"top_k_ids: k must be in 1..{weights.shape[-1]}, got {k}")
    return expert_order(weights)[..., :k]


def _as_3d(weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim == 2:  # one sample
        weights = weights[None]
    if weights.ndim != 3:
        raise GrokpathError(
            f"weights must be (samples, layers, experts); got shape {weights.shape}"
        )
    return weights


@dataclass
class PathwayTable:
    """One extraction Parquet as dense arrays, samples in file order."""

    step: int
    domains: np.ndarray  # (samples,) object
    sample_ids: np.ndarray  # (samples,) object
    layers: np.ndarray  # (layers,) int: decoder layer index of each MoE layer
    n_tokens: np.ndarray  # (samples,) int
    weights: np.ndarray  # (samples, layers, experts) float32
    entropy: np.ndarray  # (samples, layers) float32

    def __len__(self) -> int:
        return len(self.sample_ids)

    def select(self, index) -> "PathwayTable":
        return PathwayTable(
            self.step,
            self.domains[index],
            self.sample_ids[index],
            self.layers,
            self.n_tokens[index],
            self.weights[index],
            self.entropy[index],
        )


def load_pathway_tables(paths) -> list[PathwayTable]:
    """The pathway tables of `paths` (extract_pathways' chunk folders or single tables), in step
    order."""
    from grokpath.tableio import step_tables

    return sorted((load_pathway_table(p) for p in step_tables(paths)), key=lambda t: t.step)


def load_pathway_table(path: str | Path) -> PathwayTable:
    """Read an extraction Parquet; fail with one line if it is not one sample x all layers."""
    try:
        table = pq.read_table(path)
    except OSError as exc:
        raise GrokpathError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = [c for c in PATHWAY_COLUMNS if c not in table.column_names]
    if missing:
        raise GrokpathError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(PATHWAY_COLUMNS)}"
        )
    if table.num_rows == 0:
        raise GrokpathError(f"{path}: no rows")
    steps = np.unique(table.column("step").to_numpy())
    if len(steps) != 1:
        raise GrokpathError(f"{path}: expected one step, found {steps.tolist()}")
    layer_col = table.column("layer").to_numpy()
    layers = np.unique(layer_col)
    n_layers = len(layers)
    if table.num_rows % n_layers:
        raise GrokpathError(f"{path}: {table.num_rows} rows is not a multiple of {n_layers} layers")
    n_samples = table.num_rows // n_layers
    # extraction writes each sample's layers together and in order; check instead of re-sorting
    if not np.array_equal(layer_col, np.tile(layers, n_samples)):
        raise GrokpathError(f"{path}: rows are not grouped by sample with layers in order")
    flat = table.column("weights").combine_chunks()
    values = flat.flatten().to_numpy(zero_copy_only=False)
    if len(values) % table.num_rows:
        raise GrokpathError(f"{path}: weight lists differ in length")
    n_experts = len(values) // table.num_rows
    if not np.array_equal(np.diff(flat.offsets.to_numpy()), np.full(table.num_rows, n_experts)):
        raise GrokpathError(f"{path}: weight lists differ in length")
    sample_ids = table.column("sample_id").to_numpy(zero_copy_only=False)[::n_layers]
    if len(set(sample_ids)) != n_samples:
        raise GrokpathError(f"{path}: duplicate sample_id")
    return PathwayTable(
        step=int(steps[0]),
        domains=table.column("domain").to_numpy(zero_copy_only=False)[::n_layers],
        sample_ids=sample_ids,
        layers=layers,
        n_tokens=table.column("n_tokens").to_numpy()[::n_layers],
        weights=values.reshape(n_samples, n_layers, n_experts).astype(np.float32, copy=False),
        entropy=table.column("entropy").to_numpy().reshape(n_samples, n_layers),
    )


# Parquet schema metadata key under which extraction records how the table was made (JSON: family,
# weights kind written and asked for, experts, top-k, MoE and dense layers, shared expert).
EXTRACTION_METADATA_KEY = "grokpath.extraction"


def read_extraction_metadata(path: str | Path) -> dict:
    """The routing facts an extraction table records; {} for a table written before they were."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise GrokpathError(f"{path}: not a readable Parquet file ({exc})") from None
    raw = metadata.get(EXTRACTION_METADATA_KEY.encode())
    return json.loads(raw) if raw else {}
