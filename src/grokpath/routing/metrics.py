"""Metric 1 (pathway edit distance), Metric 2 (pathway consistency) and two baselines.

Metric 1 — edit distance (lower = more shared pathways):
- `edit_distance_char`: unnormalised Levenshtein distance between the paper's pathway strings
  ("3,1,5-2-9,1"), character level, as the paper's values (~500-690) imply.
- `edit_distance_id`: Levenshtein over expert-id tokens with a separator token between layers
  (substituting expert 12 for 5 costs 1, not 2).
- A set's value is the mean over its unordered pairs of distinct samples: every pair when there
  are at most `max_pairs`, else `max_pairs` pairs drawn uniformly with replacement from a seeded
  generator, with the Monte Carlo standard error of that mean (se = 0 when exact). The seed
  depends on (seed, domain, group) but not on the step and members are ordered by sample_id, so
  every step reuses the same pairs: step-to-step changes are not sampling noise.
- Per layer (paper Fig 5): the same over each layer's part of the strings.
- Cross-set (paper Fig 12, math x code): mean over A x B.

Metric 2 — pathway consistency. With v_{l,k} = row k of the router matrix W_l, the routing
embedding of sample i is e_{i,l} = sum_k g_l(i,k) v_{l,k} = g_l(i) W_l (g = the sample's averaged
softmax), c_l = cos(e_{i,l}, e_{i,l+1}) for adjacent MoE layers, and
    consistency_norm_mean_cos   = mean_l [ c_l / (max_l c_l + 1e-8) ]   higher = MORE consistent
    inconsistency_paper_formula = 1 - consistency_norm_mean_cos         the paper's C_i, higher = more erratic
    consistency_mean_cos        = mean_l c_l                            no normalisation, in [-1, 1]
The paper calls its C_i "consistency" yet writes it as 1 - (...); both are stored under names that
say which way they point. Guard: the ratio is unstable when max_l c_l is near or below zero
(cosines [0.01, 0.001, -0.2] give -6.30, all-negative cosines give values above 1), so samples
whose max_l c_l is below `min_cos` (config pathways.consistency_min_cos) are left out of the two
normalised metrics and counted in the row's `n_excluded`; consistency_mean_cos keeps every sample.
The cosines are computed from Gram matrices W_l W_m^T (experts x experts), so no
(samples, layers, hidden) tensor is ever built. `adjacent_layer_cos` (layer = the lower of the two
layers) keeps the raw c_l for inspection.

Baselines:
- `routing_entropy`: the extraction's per-sample routing entropy (mean over tokens of the
  per-token softmax entropy, nats), averaged over layers (layer "all") or per layer.
- `router_saturation`: |top-k experts at this step ∩ top-k at the final step| / k for each sample
  and layer (top-k of the averaged weights, k = the router's top_k), averaged over layers.

Tidy tables (`edit_distance_table`, `consistency_table`, `baselines_table`) have one row per
(step, domain, group, layer, metric) with value, se, n:
- domain: a domain name, "all" (every domain together), or "a|b" for cross-domain rows;
- group: "all" (every extracted sample), "memorized" (every sample with a t*), or a t* step as a
  string (the samples memorized at that step);
- layer: "all" or a decoder layer index as a string;
- se, n: for edit distances the Monte Carlo se of the pair mean and the number of pairs; for
  per-sample metrics the between-sample se (std/sqrt(n), ddof 1) and the number of samples.
- n_excluded (consistency table only, `CONSISTENCY_TABLE_COLUMNS`): the set's samples left out by
  the guard; n + n_excluded is the set's size. 0 on consistency_mean_cos and adjacent_layer_cos
  rows. A set whose samples are all left out gives no normalised rows (its consistency_mean_cos
  row still shows the set's size).
Sets with fewer than two samples (fewer than one pair) give no edit-distance row.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from grokpath.errors import GrokpathError
from grokpath.routing.pathways import (
    LAYER_SEP,
    PAPER_THRESHOLD,
    IdPathway,
    PathwayTable,
    id_pathways,
    id_token_string,
    layer_string,
    pathway_string,
    top_k_ids,
)

METRIC_TABLE_COLUMNS = ["step", "domain", "group", "layer", "metric", "value", "se", "n"]
# readers of any metric table require METRIC_TABLE_COLUMNS only; the extra column rides along
CONSISTENCY_TABLE_COLUMNS = [*METRIC_TABLE_COLUMNS, "n_excluded"]
DEFAULT_CONSISTENCY_MIN_COS = 0.05  # config pathways.consistency_min_cos
NORMALISED_CONSISTENCY = ("consistency_norm_mean_cos", "inconsistency_paper_formula")
DEFAULT_MAX_PAIRS = 20_000
NORM_EPS = 1e-8
# all-pairs blocks are cut so a block's distance matrix stays under ~64 MB of int32
BLOCK_ENTRIES = 1 << 24


# ---------------------------------------------------------------- distances between two pathways


def char_distance(a: str, b: str) -> int:
    return Levenshtein.distance(a, b)


def id_distance(a: IdPathway, b: IdPathway) -> int:
    return Levenshtein.distance(id_token_string(a), id_token_string(b))


# ---------------------------------------------------------------- means over pairs


@dataclass(frozen=True)
class PairMean:
    mean: float
    se: float  # Monte Carlo standard error of the mean; 0 when every pair was used
    n_pairs: int
    exact: bool


EMPTY_PAIR_MEAN = PairMean(float("nan"), float("nan"), 0, True)


def _rng(seed: int, *labels: str) -> np.random.Generator:
    """A generator that depends on the seed and labels only (stable across processes)."""
    return np.random.default_rng([seed, *(zlib.crc32(label.encode()) for label in labels)])


def sample_within_pairs(
    n: int, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`count` unordered pairs of distinct indices in range(n), uniform, with replacement."""
    i = rng.integers(0, n, size=count)
    j = rng.integers(0, n - 1, size=count)
    j = j + (j >= i)  # skip the diagonal: uniform over the n - 1 partners of i
    return i, j


def sample_cross_pairs(n_a: int, n_b: int, count: int, rng: np.random.Generator):
    return rng.integers(0, n_a, size=count), rng.integers(0, n_b, size=count)


def _cdist(queries: Sequence[str], choices: Sequence[str], workers: int) -> np.ndarray:
    return process.cdist(
        queries, choices, scorer=Levenshtein.distance, dtype=np.int32, workers=workers
    )


# Pathways repeat: a layer keeps one of few expert sets, and a memorized group shares its route.
# The distances are therefore computed between the distinct strings when there are fewer of
# those than pairs, and looked up or weighted by multiplicity; the values are the same integers.


def _distinct(strings: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct strings (in first-seen order) and each item's index among them."""
    index: dict[str, int] = {}
    codes = [index.setdefault(s, len(index)) for s in strings]
    return list(index), np.array(codes, dtype=np.int64)


def _within_sum(strings: list[str], workers: int) -> int:
    """Sum of the distances over all unordered pairs."""
    distinct, codes = _distinct(strings)
    if len(distinct) < len(strings) and len(distinct) ** 2 <= BLOCK_ENTRIES:
        # sum over ordered pairs of distinct strings, each weighted by both counts (d(s, s) = 0)
        counts = np.bincount(codes)
        matrix = _cdist(distinct, distinct, workers).astype(np.int64)
        return int(counts @ matrix @ counts) // 2
    n = len(strings)
    if n * n <= BLOCK_ENTRIES:
        # passing the same list twice lets rapidfuzz compute only half of the symmetric matrix
        return int(_cdist(strings, strings, workers).sum(dtype=np.int64)) // 2
    rows = max(1, BLOCK_ENTRIES // n)
    total = 0
    for start in range(0, n, rows):
        block = _cdist(strings[start : start + rows], strings[start:], workers)
        width = block.shape[0]
        total += int(np.triu(block[:, :width], k=1).sum(dtype=np.int64))
        total += int(block[:, width:].sum(dtype=np.int64))
    return total


def _cross_sum(strings_a: list[str], strings_b: list[str], workers: int) -> int:
    (distinct_a, codes_a), (distinct_b, codes_b) = _distinct(strings_a), _distinct(strings_b)
    if len(distinct_a) * len(distinct_b) <= BLOCK_ENTRIES:
        matrix = _cdist(distinct_a, distinct_b, workers).astype(np.int64)
        return int(np.bincount(codes_a) @ matrix @ np.bincount(codes_b))
    rows = max(1, BLOCK_ENTRIES // max(len(strings_b), 1))
    return sum(
        int(_cdist(strings_a[s : s + rows], strings_b, workers).sum(dtype=np.int64))
        for s in range(0, len(strings_a), rows)
    )


def _pair_distances(
    strings_a: list[str], i: np.ndarray, strings_b: list[str], j: np.ndarray, workers: int
) -> np.ndarray:
    """d(strings_a[i[k]], strings_b[j[k]]) for every k, int32."""
    distinct_a, codes_a = _distinct(strings_a)
    distinct_b, codes_b = (distinct_a, codes_a) if strings_b is strings_a else _distinct(strings_b)
    # one list passed twice: rapidfuzz computes only half of the symmetric matrix
    evaluations = len(distinct_a) * len(distinct_b) // (2 if distinct_b is distinct_a else 1)
    if evaluations < len(i):
        return _cdist(distinct_a, distinct_b, workers)[codes_a[i], codes_b[j]]
    left = np.array(strings_a, dtype=object)[i].tolist()
    right = np.array(strings_b, dtype=object)[j].tolist()
    return process.cpdist(
        left, right, scorer=Levenshtein.distance, dtype=np.int32, workers=workers
    )


def _sampled_mean(distances: np.ndarray) -> PairMean:
    count = len(distances)
    se = float(np.std(distances, ddof=1) / np.sqrt(count)) if count > 1 else float("nan")
    return PairMean(float(np.mean(distances)), se, count, False)


def mean_pairwise_distance(
    strings: Sequence[str],
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
    workers: int = 1,
    rng: np.random.Generator | None = None,
) -> PairMean:
    """Mean Levenshtein distance over unordered pairs of distinct items of `strings`."""
    strings = list(strings)
    n = len(strings)
    total_pairs = n * (n - 1) // 2
    if total_pairs == 0:
        return EMPTY_PAIR_MEAN
    if total_pairs <= max_pairs:
        return PairMean(_within_sum(strings, workers) / total_pairs, 0.0, total_pairs, True)
    i, j = sample_within_pairs(n, max_pairs, rng or np.random.default_rng(seed))
    return _sampled_mean(_pair_distances(strings, i, strings, j, workers))


def mean_cross_distance(
    strings_a: Sequence[str],
    strings_b: Sequence[str],
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
    workers: int = 1,
    rng: np.random.Generator | None = None,
) -> PairMean:
    """Mean Levenshtein distance over A x B (e.g. math x code pathways)."""
    strings_a, strings_b = list(strings_a), list(strings_b)
    total_pairs = len(strings_a) * len(strings_b)
    if total_pairs == 0:
        return EMPTY_PAIR_MEAN
    if total_pairs <= max_pairs:
        return PairMean(
            _cross_sum(strings_a, strings_b, workers) / total_pairs, 0.0, total_pairs, True
        )
    i, j = sample_cross_pairs(
        len(strings_a), len(strings_b), max_pairs, rng or np.random.default_rng(seed)
    )
    return _sampled_mean(_pair_distances(strings_a, i, strings_b, j, workers))


def _pathway_encoder(id_level: bool):
    return id_token_string if id_level else pathway_string


def _layer_encoder(id_level: bool):
    return id_token_string if id_level else layer_string


def mean_pathway_distance(
    pathways: Sequence[IdPathway], id_level: bool = False, **kwargs
) -> PairMean:
    """Metric 1 over a set of id-level pathways: char level (paper strings) or id level."""
    encode = _pathway_encoder(id_level)
    return mean_pairwise_distance([encode(p) for p in pathways], **kwargs)


def per_layer_mean_distance(
    pathways: Sequence[IdPathway],
    id_level: bool = False,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
    workers: int = 1,
) -> list[PairMean]:
    """Metric 1 for each layer position separately; sampled layers all use the same pairs."""
    if not pathways:
        return []
    encode = _layer_encoder(id_level)
    layers = [[encode(p[pos]) for p in pathways] for pos in range(len(pathways[0]))]
    return layer_mean_distances(layers, max_pairs, seed, workers)


def layer_mean_distances(
    layer_strings: Sequence[Sequence[str]], max_pairs: int, seed: int, workers: int
) -> list[PairMean]:
    """`per_layer_mean_distance` from each layer's strings (one list per layer position)."""
    return [
        mean_pairwise_distance(
            strings, max_pairs, workers=workers, rng=np.random.default_rng(seed)
        )
        for strings in layer_strings
    ]


@dataclass(frozen=True)
class EncodedPathways:
    """Every sample's pathway strings at one level, encoded once per step; sets index into them."""

    whole: np.ndarray  # (samples,) object: the whole pathway's string
    layers: list[np.ndarray]  # per layer position, (samples,) object: that layer's string

    @classmethod
    def of(cls, pathways: Sequence[IdPathway], id_level: bool) -> "EncodedPathways":
        encode_layer = _layer_encoder(id_level)
        memo: dict[tuple[int, ...], str] = {}  # few distinct expert sets per layer

        def encode(layer: tuple[int, ...]) -> str:
            if layer not in memo:
                memo[layer] = encode_layer(layer)
            return memo[layer]

        n_layers = len(pathways[0]) if pathways else 0
        layers = [[encode(p[pos]) for p in pathways] for pos in range(n_layers)]
        # both levels join the layer strings with LAYER_SEP (pathway_string, id_token_string)
        whole = [LAYER_SEP.join(parts) for parts in zip(*layers)]
        return cls(_object_array(whole), [_object_array(layer) for layer in layers])


def _object_array(strings: list[str]) -> np.ndarray:
    array = np.empty(len(strings), dtype=object)
    array[:] = strings
    return array


# ---------------------------------------------------------------- Metric 2: consistency


@dataclass
class ConsistencyScores:
    adjacent_cos: np.ndarray  # (samples, layers - 1): c_l
    consistency_norm_mean_cos: np.ndarray  # (samples,): higher = more consistent; NaN if excluded
    inconsistency_paper_formula: np.ndarray  # (samples,): the paper's C_i = 1 - the above
    consistency_mean_cos: np.ndarray  # (samples,): mean_l c_l, every sample
    excluded: np.ndarray  # (samples,) bool: max_l c_l below the floor, left out of the two above


def adjacent_layer_cosines(weights: np.ndarray, router_weights: np.ndarray) -> np.ndarray:
    """c_l = cos(g_l W_l, g_{l+1} W_{l+1}) for weights (N, L, E) and router_weights (L, E, H)."""
    g = np.asarray(weights, dtype=np.float64)
    w = np.asarray(router_weights, dtype=np.float64)
    if g.ndim != 3 or w.ndim != 3 or g.shape[1:] != w.shape[:2]:
        raise GrokpathError(
            f"consistency: weights {g.shape} do not match router weights {w.shape} "
            "(expected (samples, layers, experts) and (layers, experts, hidden))"
        )
    if g.shape[1] < 2:
        raise GrokpathError("consistency needs at least two MoE layers")

    # e_l . e_m = g_l (W_l W_m^T) g_m: Gram matrices are experts x experts, whatever the hidden size
    def quadratic(layer_a: int, layer_b: int) -> np.ndarray:
        gram = w[layer_a] @ w[layer_b].T
        return np.einsum("ne,ef,nf->n", g[:, layer_a], gram, g[:, layer_b])

    sq_norms = np.stack([quadratic(l, l) for l in range(g.shape[1])], axis=1)
    norms = np.sqrt(np.clip(sq_norms, 0.0, None))
    dots = np.stack([quadratic(l, l + 1) for l in range(g.shape[1] - 1)], axis=1)
    return dots / np.maximum(norms[:, :-1] * norms[:, 1:], 1e-30)


def check_min_cos(min_cos: float) -> float:
    min_cos = float(min_cos)
    if not 0.0 <= min_cos <= 1.0:
        raise GrokpathError(f"consistency_min_cos {min_cos}: must lie in [0, 1]")
    return min_cos


def normalised_consistency(
    cos: np.ndarray, min_cos: float = DEFAULT_CONSISTENCY_MIN_COS
) -> tuple[np.ndarray, np.ndarray]:
    """(mean_l c_l / (max_l c_l + 1e-8), excluded) per row of c (samples, layers - 1).

    Rows whose max_l c_l is below `min_cos` get NaN and excluded = True: dividing by a near-zero
    or negative maximum turns noise into values like -6 or +2 that would move a group mean.
    """
    cos = np.asarray(cos, dtype=np.float64)
    if cos.ndim != 2 or cos.shape[1] == 0:
        raise GrokpathError(f"consistency: cosines must be (samples, layers - 1), got {cos.shape}")
    largest = cos.max(axis=1, keepdims=True)
    excluded = largest[:, 0] < check_min_cos(min_cos)
    with np.errstate(divide="ignore", invalid="ignore"):  # excluded rows may divide by ~0
        consistency = (cos / (largest + NORM_EPS)).mean(axis=1)
    return np.where(excluded, np.nan, consistency), excluded


def consistency_scores(
    weights: np.ndarray, router_weights: np.ndarray, min_cos: float = DEFAULT_CONSISTENCY_MIN_COS
) -> ConsistencyScores:
    cos = adjacent_layer_cosines(weights, router_weights)
    consistency, excluded = normalised_consistency(cos, min_cos)
    return ConsistencyScores(cos, consistency, 1.0 - consistency, cos.mean(axis=1), excluded)


# ---------------------------------------------------------------- baselines


def router_saturation(weights: np.ndarray, final_weights: np.ndarray, k: int) -> np.ndarray:
    """(samples, layers): fraction of each top-k expert set shared with the final checkpoint's."""
    weights, final_weights = np.asarray(weights), np.asarray(final_weights)
    if weights.shape != final_weights.shape:
        raise GrokpathError(
            f"router saturation: shapes differ {weights.shape} vs {final_weights.shape}"
        )
    now = np.zeros(weights.shape, dtype=bool)
    final = np.zeros(weights.shape, dtype=bool)
    np.put_along_axis(now, top_k_ids(weights, k), True, axis=-1)
    np.put_along_axis(final, top_k_ids(final_weights, k), True, axis=-1)
    return (now & final).sum(axis=-1) / k


# ---------------------------------------------------------------- grouping and tidy tables


def memorization_groups(table: PathwayTable, memorization: pd.DataFrame) -> np.ndarray:
    """Per sample of `table`: its t* as a string, or None when never memorized / unknown."""
    memorized = memorization[
        memorization["memorized"].fillna(False).astype(bool) & memorization["t_star"].notna()
    ]
    t_star = dict(zip(memorized["sample_id"].astype(str), memorized["t_star"].astype("int64")))
    return np.array(
        [str(t_star[s]) if s in t_star else None for s in table.sample_ids], dtype=object
    )


def sample_sets(table: PathwayTable, groups: np.ndarray) -> Iterator[tuple[str, str, np.ndarray]]:
    """(domain, group, member indices ordered by sample_id) for every reported set."""
    by_id = np.argsort(table.sample_ids.astype(str), kind="stable")
    domains = sorted(set(table.domains.tolist()))
    group_labels = sorted({g for g in groups if g is not None}, key=int)
    for domain in domains + ["all"]:
        in_domain = np.ones(len(table), bool) if domain == "all" else table.domains == domain
        selections = {"all": in_domain, "memorized": in_domain & (groups != None)}  # noqa: E711
        selections.update({label: in_domain & (groups == label) for label in group_labels})
        for group, mask in selections.items():
            members = by_id[mask[by_id]]
            if len(members):
                yield domain, group, members


def _row(step, domain, group, layer, metric, value, se, n) -> dict:
    return {
        "step": int(step),
        "domain": domain,
        "group": group,
        "layer": str(layer),
        "metric": metric,
        "value": float(value),
        "se": float(se),
        "n": int(n),
    }


def _sample_mean_row(step, domain, group, layer, metric, values: np.ndarray) -> dict:
    n = len(values)
    se = np.std(values, ddof=1) / np.sqrt(n) if n > 1 else float("nan")
    return _row(step, domain, group, layer, metric, np.mean(values), se, n)


def _frame(rows: list[dict], columns: list[str] = METRIC_TABLE_COLUMNS) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    types = {
        "step": "int64",
        "value": "float64",
        "se": "float64",
        "n": "int64",
        "n_excluded": "int64",
    }
    return frame.astype({c: t for c, t in types.items() if c in columns})


def edit_distance_table(
    tables: Sequence[PathwayTable],
    memorization: pd.DataFrame,
    threshold: float = PAPER_THRESHOLD,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
    workers: int = 1,
    cross_domain: bool = True,
) -> pd.DataFrame:
    """Metric 1 rows: edit_distance_char / _id, layer "all" and per layer, per set and step.

    With `cross_domain`, adds `edit_distance_char_cross` / `edit_distance_id_cross` rows (group
    "all", domain "a|b") for each pair of domains.
    """
    rows: list[dict] = []
    for table in tables:
        pathways = id_pathways(table.weights, threshold)
        encoded = {level: EncodedPathways.of(pathways, level) for level in (False, True)}
        groups = memorization_groups(table, memorization)
        for domain, group, members in sample_sets(table, groups):
            if len(members) < 2:
                continue
            for id_level, metric in ((False, "edit_distance_char"), (True, "edit_distance_id")):
                strings = encoded[id_level]
                whole = mean_pairwise_distance(
                    strings.whole[members].tolist(),
                    max_pairs=max_pairs,
                    workers=workers,
                    rng=_rng(seed, domain, group),
                )
                rows.append(
                    _row(
                        table.step,
                        domain,
                        group,
                        "all",
                        metric,
                        whole.mean,
                        whole.se,
                        whole.n_pairs,
                    )
                )
                per_layer = layer_mean_distances(
                    [layer[members].tolist() for layer in strings.layers],
                    max_pairs,
                    _layer_seed(seed, domain, group),
                    workers,
                )
                for layer, result in zip(table.layers, per_layer):
                    rows.append(
                        _row(
                            table.step,
                            domain,
                            group,
                            layer,
                            metric,
                            result.mean,
                            result.se,
                            result.n_pairs,
                        )
                    )
        if cross_domain:
            rows.extend(_cross_domain_rows(table, encoded, max_pairs, seed, workers))
    return _frame(rows)


def _layer_seed(seed: int, domain: str, group: str) -> int:
    return int(_rng(seed, domain, group, "layers").integers(2**62))


def _cross_domain_rows(table, encoded, max_pairs, seed, workers) -> list[dict]:
    rows = []
    domains = sorted(set(table.domains.tolist()))
    by_id = np.argsort(table.sample_ids.astype(str), kind="stable")
    for a_pos, domain_a in enumerate(domains):
        for domain_b in domains[a_pos + 1 :]:
            members_a = by_id[(table.domains == domain_a)[by_id]]
            members_b = by_id[(table.domains == domain_b)[by_id]]
            label = f"{domain_a}|{domain_b}"
            for id_level, metric in (
                (False, "edit_distance_char_cross"),
                (True, "edit_distance_id_cross"),
            ):
                whole = encoded[id_level].whole
                result = mean_cross_distance(
                    whole[members_a].tolist(),
                    whole[members_b].tolist(),
                    max_pairs,
                    workers=workers,
                    rng=_rng(seed, label),
                )
                if result.n_pairs:
                    rows.append(
                        _row(
                            table.step,
                            label,
                            "all",
                            "all",
                            metric,
                            result.mean,
                            result.se,
                            result.n_pairs,
                        )
                    )
    return rows


def consistency_table(
    tables: Sequence[PathwayTable],
    router_weights: dict[int, np.ndarray],
    memorization: pd.DataFrame,
    min_cos: float = DEFAULT_CONSISTENCY_MIN_COS,
) -> pd.DataFrame:
    """Metric 2 rows (CONSISTENCY_TABLE_COLUMNS). `router_weights[step]` is that checkpoint's
    (layers, experts, hidden); samples below `min_cos` leave the normalised rows (n_excluded)."""
    rows: list[dict] = []
    for table in tables:
        if table.step not in router_weights:
            raise GrokpathError(f"consistency: no router weights for step {table.step}")
        scores = consistency_scores(table.weights, router_weights[table.step], min_cos)
        groups = memorization_groups(table, memorization)
        for domain, group, members in sample_sets(table, groups):
            rows.extend(_consistency_rows(table, scores, domain, group, members))
    return _frame(rows, CONSISTENCY_TABLE_COLUMNS)


def _consistency_rows(table, scores: ConsistencyScores, domain, group, members) -> list[dict]:
    def row(layer, metric, values, n_excluded=0) -> dict:
        return {
            **_sample_mean_row(table.step, domain, group, layer, metric, values),
            "n_excluded": int(n_excluded),
        }

    kept = members[~scores.excluded[members]]
    n_excluded = len(members) - len(kept)
    # an all-excluded set gets no normalised row: a NaN value would turn a whole correlation NaN
    rows = []
    if len(kept):
        rows += [
            row("all", metric, getattr(scores, metric)[kept], n_excluded)
            for metric in NORMALISED_CONSISTENCY
        ]
    rows.append(row("all", "consistency_mean_cos", scores.consistency_mean_cos[members]))
    for pos, layer in enumerate(table.layers[:-1]):
        rows.append(row(layer, "adjacent_layer_cos", scores.adjacent_cos[members, pos]))
    return rows


def align_to(table: PathwayTable, reference: PathwayTable) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (into table, into reference) of the samples both hold."""
    position = {s: i for i, s in enumerate(reference.sample_ids)}
    ours = np.array([i for i, s in enumerate(table.sample_ids) if s in position], dtype=np.int64)
    theirs = np.array([position[table.sample_ids[i]] for i in ours], dtype=np.int64)
    return ours, theirs


def baselines_table(
    tables: Sequence[PathwayTable],
    final_table: PathwayTable,
    top_k: int,
    memorization: pd.DataFrame,
) -> pd.DataFrame:
    """routing_entropy and router_saturation rows (saturation against `final_table`)."""
    rows: list[dict] = []
    for table in tables:
        if not np.array_equal(table.layers, final_table.layers):
            raise GrokpathError(f"step {table.step}: MoE layers differ from the final step's")
        ours, theirs = align_to(table, final_table)
        saturation = np.full(table.entropy.shape, np.nan)
        saturation[ours] = router_saturation(
            table.weights[ours], final_table.weights[theirs], top_k
        )
        groups = memorization_groups(table, memorization)
        for domain, group, members in sample_sets(table, groups):
            rows.append(
                _sample_mean_row(
                    table.step,
                    domain,
                    group,
                    "all",
                    "routing_entropy",
                    table.entropy[members].mean(axis=1),
                )
            )
            for pos, layer in enumerate(table.layers):
                rows.append(
                    _sample_mean_row(
                        table.step,
                        domain,
                        group,
                        layer,
                        "routing_entropy",
                        table.entropy[members, pos],
                    )
                )
            paired = members[~np.isnan(saturation[members, 0])]
            if len(paired):
                rows.append(
                    _sample_mean_row(
                        table.step,
                        domain,
                        group,
                        "all",
                        "router_saturation",
                        saturation[paired].mean(axis=1),
                    )
                )
                for pos, layer in enumerate(table.layers):
                    rows.append(
                        _sample_mean_row(
                            table.step,
                            domain,
                            group,
                            layer,
                            "router_saturation",
                            saturation[paired, pos],
                        )
                    )
    return _frame(rows)
