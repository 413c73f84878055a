"""Metric 1, Metric 2 and baselines against hand-computed values and reference code."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import grokpath.pathway_metrics as pm
from grokpath.pathway_metrics import (
    adjacent_layer_cosines,
    baselines_table,
    char_distance,
    consistency_scores,
    consistency_table,
    edit_distance_table,
    id_distance,
    mean_cross_distance,
    mean_pairwise_distance,
    per_layer_mean_distance,
    router_saturation,
)
from grokpath.pathways import (
    PathwayTable,
    id_pathways,
    id_token_string,
    layer_string,
    pathway_string,
)


def dp_levenshtein(a, b) -> int:
    """Textbook dynamic programme, the reference for rapidfuzz."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def id_tokens(pathway) -> list:
    """Id-level pathway as a token list with a separator token between layers."""
    tokens: list = []
    for position, layer in enumerate(pathway):
        if position:
            tokens.append("|")
        tokens.extend(layer)
    return tokens


pathways_st = st.lists(
    st.lists(st.integers(0, 63), min_size=1, max_size=5, unique=True).map(tuple),
    min_size=1,
    max_size=4,
).map(tuple)


# ---------------------------------------------------------------- distances between two pathways


def test_char_distance_hand_cases():
    assert char_distance("3,1,5-2-9,1", "3,1,5-2-9,1") == 0
    assert char_distance("3,1,5-2-9,1", "3,1-2-9,1") == 2  # drop ",5"
    assert char_distance("12-5", "13-5") == 1
    assert char_distance("12-5", "5-5") == 2


def test_id_distance_counts_expert_ids_not_characters():
    assert id_distance(((12,), (5,)), ((5,), (5,))) == 1
    assert id_distance(((3, 1, 5), (2,)), ((3, 1), (2,))) == 1
    assert id_distance(((1,), (2,)), ((1, 2),)) == 1  # the layer separator is a token
    assert char_distance(pathway_string(((12,), (5,))), pathway_string(((5,), (5,)))) == 2


@settings(max_examples=60, deadline=None)
@given(pathways_st, pathways_st, pathways_st)
def test_distance_is_a_metric(a, b, c):
    for distance, encode in ((char_distance, pathway_string), (id_distance, lambda p: p)):
        x, y, z = encode(a), encode(b), encode(c)
        assert distance(x, y) == distance(y, x)
        assert distance(x, x) == 0
        assert (distance(x, y) == 0) == (x == y)
        assert distance(x, z) <= distance(x, y) + distance(y, z)


@settings(max_examples=60, deadline=None)
@given(pathways_st, pathways_st)
def test_distances_match_the_dynamic_programme(a, b):
    assert char_distance(pathway_string(a), pathway_string(b)) == dp_levenshtein(
        pathway_string(a), pathway_string(b)
    )
    assert id_distance(a, b) == dp_levenshtein(id_tokens(a), id_tokens(b))


# ---------------------------------------------------------------- means over pairs


def test_mean_pairwise_exact_hand_case():
    result = mean_pairwise_distance(["ab", "ab", "b"])  # pairs: 0, 1, 1
    assert (
        result.mean == pytest.approx(2 / 3)
        and result.se == 0
        and result.n_pairs == 3
        and result.exact
    )


def test_mean_pairwise_needs_two_items():
    result = mean_pairwise_distance(["ab"])
    assert result.n_pairs == 0 and math.isnan(result.mean)


def random_strings(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [",".join(map(str, rng.integers(0, 64, rng.integers(3, 12)))) for _ in range(n)]


def brute_mean(strings) -> float:
    return float(np.mean([dp_levenshtein(a, b) for a, b in itertools.combinations(strings, 2)]))


def test_mean_pairwise_exact_matches_brute_force_and_blocked_path(monkeypatch):
    strings = random_strings(30)
    expected = brute_mean(strings)
    assert mean_pairwise_distance(strings).mean == pytest.approx(expected)
    monkeypatch.setattr(pm, "BLOCK_ENTRIES", 64)  # forces row blocks of 2 out of 30
    assert mean_pairwise_distance(strings).mean == pytest.approx(expected)


def test_mean_pairwise_sampled_is_seeded_and_close():
    strings = random_strings(60, seed=1)
    exact = mean_pairwise_distance(strings)
    sampled = mean_pairwise_distance(strings, max_pairs=800, seed=5)
    assert not sampled.exact and sampled.n_pairs == 800 and sampled.se > 0
    assert abs(sampled.mean - exact.mean) < 5 * sampled.se
    assert sampled == mean_pairwise_distance(strings, max_pairs=800, seed=5)
    assert sampled != mean_pairwise_distance(strings, max_pairs=800, seed=6)


def test_sampled_pairs_are_distinct_and_uniform():
    i, j = pm.sample_within_pairs(4, 60_000, np.random.default_rng(0))
    assert (i != j).all()
    pairs = pd.Series([tuple(sorted(p)) for p in zip(i.tolist(), j.tolist())]).value_counts(
        normalize=True
    )
    assert len(pairs) == 6 and np.allclose(pairs.values, 1 / 6, atol=0.01)


def test_cross_distance_hand_case_and_sampling(monkeypatch):
    result = mean_cross_distance(["a", "ab"], ["b", "abc"])  # 1, 2, 1, 1
    assert result.mean == pytest.approx(5 / 4) and result.n_pairs == 4 and result.exact
    a, b = random_strings(20, 2), random_strings(25, 3)
    exact = mean_cross_distance(a, b)
    assert exact.mean == pytest.approx(np.mean([dp_levenshtein(x, y) for x in a for y in b]))
    monkeypatch.setattr(pm, "BLOCK_ENTRIES", 60)  # row blocks of 2 out of 20
    assert mean_cross_distance(a, b).mean == pytest.approx(exact.mean)
    sampled = mean_cross_distance(a, b, max_pairs=300, seed=1)
    assert not sampled.exact and abs(sampled.mean - exact.mean) < 5 * sampled.se


def repeated_strings(n: int, n_distinct: int, seed: int) -> list[str]:
    """Pathway-like strings with many repeats (a few routes shared by many samples)."""
    pool = random_strings(n_distinct, seed)
    return [pool[k] for k in np.random.default_rng(seed).integers(0, n_distinct, n)]


def test_distinct_string_shortcuts_give_the_same_integers(monkeypatch):
    """Distances through the distinct strings (matrix lookup, counts) equal the direct ones."""
    strings, other = repeated_strings(300, 12, 4), repeated_strings(250, 9, 5)
    rng = np.random.default_rng(0)
    i, j = pm.sample_within_pairs(len(strings), 5000, rng)
    direct = np.array([dp_levenshtein(strings[a], strings[b]) for a, b in zip(i, j)])
    assert np.array_equal(pm._pair_distances(strings, i, strings, j, 1), direct)
    a, b = pm.sample_cross_pairs(len(strings), len(other), 5000, rng)
    cross = np.array([dp_levenshtein(strings[x], other[y]) for x, y in zip(a, b)])
    assert np.array_equal(pm._pair_distances(strings, a, other, b, 1), cross)
    within = sum(dp_levenshtein(x, y) for x, y in itertools.combinations(strings, 2))
    across = sum(dp_levenshtein(x, y) for x in strings for y in other)
    assert pm._within_sum(strings, 1) == within and pm._cross_sum(strings, other, 1) == across
    monkeypatch.setattr(pm, "BLOCK_ENTRIES", 64)  # too many distinct strings: the direct paths
    assert pm._within_sum(strings, 1) == within and pm._cross_sum(strings, other, 1) == across


@settings(max_examples=40, deadline=None)
@given(st.lists(pathways_st.filter(lambda p: len(p) == 3), min_size=1, max_size=8))
def test_encoded_pathways_are_the_pathway_strings(pathways):
    for id_level, encode, encode_layer in (
        (False, pathway_string, layer_string),
        (True, id_token_string, id_token_string),
    ):
        encoded = pm.EncodedPathways.of(pathways, id_level)
        assert encoded.whole.tolist() == [encode(p) for p in pathways]
        assert [layer.tolist() for layer in encoded.layers] == [
            [encode_layer(p[pos]) for p in pathways] for pos in range(3)
        ]


def test_per_layer_distance_hand_case():
    paths = [((1, 2), (3,)), ((1,), (3,)), ((2, 1), (4,))]
    char = per_layer_mean_distance(paths)
    # layer 0: "1,2" "1" "2,1" -> 2, 2, 2 ; layer 1: "3" "3" "4" -> 0, 1, 1
    assert [r.mean for r in char] == pytest.approx([2.0, 2 / 3])
    ids = per_layer_mean_distance(paths, id_level=True)
    # layer 0 as id tokens: (1,2) (1) (2,1) -> 1, 2, 1
    assert [r.mean for r in ids] == pytest.approx([4 / 3, 2 / 3])


# ---------------------------------------------------------------- Metric 2


def test_consistency_two_layer_hand_case():
    # e_0 = [1, 0], e_1 = 0.5 [1, 0] + 0.5 [0, 1] = [0.5, 0.5]: c = 1/sqrt(2)
    router = np.stack([np.eye(2), np.eye(2)])
    weights = np.array([[[1.0, 0.0], [0.5, 0.5]]])
    c = 1 / math.sqrt(2)
    scores = consistency_scores(weights, router)
    assert scores.adjacent_cos[0].tolist() == pytest.approx([c])
    assert scores.consistency_norm_mean_cos[0] == pytest.approx(c / (c + 1e-8), abs=1e-12)
    assert scores.inconsistency_paper_formula[0] == pytest.approx(1 - c / (c + 1e-8), abs=1e-12)


def test_consistency_three_layer_hand_case():
    # one-hot routing on expert 0 makes e_l = row 0 of W_l: [1, 0], [1, 1], [1, 3]
    router = np.array(
        [[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]], [[1.0, 3.0], [0.0, 0.0]]]
    )
    weights = np.array([[[1.0, 0.0]] * 3])
    c0, c1 = 1 / math.sqrt(2), 4 / math.sqrt(20)
    scores = consistency_scores(weights, router)
    assert scores.adjacent_cos[0].tolist() == pytest.approx([c0, c1])
    expected = (c0 / (c1 + 1e-8) + c1 / (c1 + 1e-8)) / 2
    assert scores.consistency_norm_mean_cos[0] == pytest.approx(expected)
    assert scores.inconsistency_paper_formula[0] == pytest.approx(1 - expected)


def test_gram_cosines_match_explicit_embeddings():
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(8), size=(5, 4))
    router = rng.normal(size=(4, 8, 16))
    embeddings = np.einsum("nle,leh->nlh", weights, router)
    a, b = embeddings[:, :-1], embeddings[:, 1:]
    explicit = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    np.testing.assert_allclose(adjacent_layer_cosines(weights, router), explicit, rtol=1e-10)


# ---------------------------------------------------------------- baselines


def test_router_saturation_hand_case():
    final = np.array([[[0.5, 0.3, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]]])
    now = np.array([[[0.1, 0.6, 0.3, 0.0], [0.4, 0.3, 0.2, 0.1]]])
    # layer 0: {1, 2} vs {0, 1} -> 1/2 ; layer 1: {0, 1} vs {3, 2} -> 0
    assert router_saturation(now, final, k=2).tolist() == [[0.5, 0.0]]
    assert router_saturation(final, final, k=2).tolist() == [[1.0, 1.0]]


# ---------------------------------------------------------------- tidy tables


def synthetic_table(
    step: int, seed: int, n: int = 8, layers=(0, 1, 2), experts: int = 6
) -> PathwayTable:
    rng = np.random.default_rng(seed)
    ids = np.array([f"s{i}" for i in range(n)], dtype=object)
    return PathwayTable(
        step=step,
        domains=np.array(["math" if i % 2 else "code" for i in range(n)], dtype=object),
        sample_ids=ids,
        layers=np.array(layers),
        n_tokens=np.full(n, 5),
        weights=rng.dirichlet(np.ones(experts) * 0.3, size=(n, len(layers))).astype(np.float32),
        entropy=rng.uniform(0, 1, size=(n, len(layers))).astype(np.float32),
    )


def memorization_for(n: int = 8) -> pd.DataFrame:
    t_star = [100 if i < 3 else (200 if i < 5 else None) for i in range(n)]
    return pd.DataFrame(
        {
            "domain": ["math" if i % 2 else "code" for i in range(n)],
            "sample_id": [f"s{i}" for i in range(n)],
            "t_star": pd.array(t_star, dtype="Int64"),
            "memorized": [t is not None for t in t_star],
        }
    )


def test_edit_distance_table_rows_match_direct_computation():
    table = synthetic_table(100, 0)
    frame = edit_distance_table([table], memorization_for(), max_pairs=1000)
    assert list(frame.columns) == pm.METRIC_TABLE_COLUMNS
    assert set(frame["group"]) == {"all", "memorized", "100", "200"}
    assert set(frame["layer"]) == {"all", "0", "1", "2"}
    row = frame.query(
        "domain == 'all' and group == '100' and layer == 'all' and metric == 'edit_distance_char'"
    )
    strings = [pathway_string(p) for p in id_pathways(table.weights[:3])]  # s0, s1, s2
    assert row["value"].item() == pytest.approx(brute_mean(strings)) and row["n"].item() == 3
    cross = frame.query("metric == 'edit_distance_char_cross'")
    assert cross["domain"].tolist() == ["code|math"] and cross["n"].item() == 16


def test_edit_distance_pairs_do_not_change_between_steps():
    base = synthetic_table(100, 0, n=40)
    later = synthetic_table(200, 0, n=40)  # same weights, another step
    memo = memorization_for(40)
    frame = edit_distance_table([base, later], memo, max_pairs=50, seed=3)
    values = frame.pivot_table(
        index=["domain", "group", "layer", "metric"], columns="step", values="value"
    )
    np.testing.assert_allclose(values[100], values[200])


def test_consistency_and_baseline_tables():
    tables = [synthetic_table(100, 0), synthetic_table(200, 1)]
    router = {
        100: np.random.default_rng(2).normal(size=(3, 6, 4)),
        200: np.random.default_rng(3).normal(size=(3, 6, 4)),
    }
    consistency = consistency_table(tables, router, memorization_for())
    pair = consistency.query("layer == 'all'").pivot_table(
        index=["step", "domain", "group"], columns="metric", values="value"
    )
    np.testing.assert_allclose(
        pair["consistency_norm_mean_cos"] + pair["inconsistency_paper_formula"], 1.0
    )
    assert set(consistency.query("metric == 'adjacent_layer_cos'")["layer"]) == {"0", "1"}
    baselines = baselines_table(tables, tables[-1], top_k=2, memorization=memorization_for())
    final = baselines.query("step == 200 and metric == 'router_saturation'")
    np.testing.assert_allclose(final["value"], 1.0)
    entropy = baselines.query(
        "step == 100 and domain == 'all' and group == 'all' and layer == 'all' and metric == 'routing_entropy'"
    )
    assert entropy["value"].item() == pytest.approx(tables[0].entropy.mean(axis=1).mean(), rel=1e-6)
    assert entropy["n"].item() == 8
