"""Metric 1, Metric 2 and baselines against hand-computed values and reference code."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import grokpath.routing.metrics as pm
from grokpath.errors import GrokpathError
from grokpath.routing.metrics import (
    adjacent_layer_cosines,
    baselines_table,
    char_distance,
    consistency_scores,
    consistency_table,
    edit_distance_table,
    id_distance,
    mean_cross_distance,
    mean_pairwise_distance,
    normalised_consistency,
    per_layer_mean_distance,
    router_saturation,
)
from grokpath.routing.pathways import (
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


UNSTABLE_COS = [0.01, 0.001, -0.2]  # unguarded: (1 + 0.1 - 20) / 3 = -6.30
NEGATIVE_COS = [-0.1, -0.2, -0.4]  # unguarded: (1 + 2 + 4) / 3 = +2.33
NORMAL_COS = [0.9, 0.5, 0.8]  # max 0.9 >= 0.05: kept


def test_unstable_and_negative_cosines_are_excluded():
    consistency, excluded = normalised_consistency(np.array([UNSTABLE_COS, NEGATIVE_COS]), 0.05)
    assert excluded.tolist() == [True, True]
    assert np.isnan(consistency).all()
    # with no floor the two show the values the guard is there for
    unguarded, _ = normalised_consistency(np.array([UNSTABLE_COS]), 0.0)
    assert unguarded[0] == pytest.approx((1 + 0.1 - 20) / 3, abs=1e-5)  # -6.30


def test_normal_cosines_keep_the_unguarded_value_exactly():
    consistency, excluded = normalised_consistency(np.array([NORMAL_COS]), 0.05)
    assert not excluded[0]
    assert consistency[0] == np.mean([c / (0.9 + 1e-8) for c in NORMAL_COS])


def test_floor_is_inclusive_and_checked():
    _, excluded = normalised_consistency(np.array([[0.05, 0.01], [0.0499, 0.01]]), 0.05)
    assert excluded.tolist() == [False, True]
    with pytest.raises(GrokpathError, match="consistency_min_cos"):
        normalised_consistency(np.array([NORMAL_COS]), -0.1)


def routers_with_cosines(per_sample: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """One-hot weights (sample k on expert k) and 2-d router rows turning by arccos(c_l).

    e_{k,l} = row k of W_l = a unit vector at the summed angle, so cos(e_l, e_{l+1}) = c_l.
    """
    n, layers = len(per_sample), len(per_sample[0]) + 1
    router = np.zeros((layers, n, 2))
    for k, cosines in enumerate(per_sample):
        angles = np.concatenate([[0.0], np.cumsum(np.arccos(cosines))])
        router[:, k] = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    weights = np.zeros((n, layers, n))
    for k in range(n):
        weights[k, :, k] = 1.0
    return weights, router


def test_routers_with_cosines_reproduce_them():
    weights, router = routers_with_cosines([UNSTABLE_COS, NORMAL_COS])
    np.testing.assert_allclose(
        adjacent_layer_cosines(weights, router), [UNSTABLE_COS, NORMAL_COS], atol=1e-12
    )


def cosine_table(per_sample: list[list[float]], step: int = 100) -> tuple[PathwayTable, dict]:
    weights, router = routers_with_cosines(per_sample)
    n = len(per_sample)
    table = PathwayTable(
        step=step,
        domains=np.array(["math"] * n, dtype=object),
        sample_ids=np.array([f"s{i}" for i in range(n)], dtype=object),
        layers=np.arange(weights.shape[1]),
        n_tokens=np.full(n, 5),
        weights=weights,
        entropy=np.zeros(weights.shape[:2]),
    )
    return table, {step: router}


def test_consistency_table_leaves_out_and_counts_unstable_samples():
    table, router = cosine_table([UNSTABLE_COS, NEGATIVE_COS, NORMAL_COS])
    frame = consistency_table([table], router, memorization_for(0), min_cos=0.05)
    assert list(frame.columns) == pm.CONSISTENCY_TABLE_COLUMNS
    rows = frame.query("domain == 'math' and group == 'all' and layer == 'all'")
    rows = rows.set_index("metric")
    normal = np.mean([c / (0.9 + 1e-8) for c in NORMAL_COS])
    assert rows.loc["consistency_norm_mean_cos", "value"] == pytest.approx(normal, rel=1e-12)
    assert rows.loc["inconsistency_paper_formula", "value"] == pytest.approx(1 - normal, rel=1e-12)
    assert rows.loc["consistency_norm_mean_cos", ["n", "n_excluded"]].tolist() == [1, 2]
    # the plain mean keeps all three samples: (-0.189 - 0.7 + 2.2) / 3 / 3
    mean_cos = (sum(UNSTABLE_COS) + sum(NEGATIVE_COS) + sum(NORMAL_COS)) / 9
    assert rows.loc["consistency_mean_cos", "value"] == pytest.approx(mean_cos, rel=1e-12)
    assert rows.loc["consistency_mean_cos", ["n", "n_excluded"]].tolist() == [3, 0]
    assert (frame.query("metric == 'adjacent_layer_cos'")["n_excluded"] == 0).all()


def test_consistency_table_without_exclusions_is_unchanged():
    table, router = cosine_table([NORMAL_COS, [0.5, 0.25, 0.75]])
    frame = consistency_table([table], router, memorization_for(0), min_cos=0.05)
    row = frame.query(
        "domain == 'all' and group == 'all' and metric == 'consistency_norm_mean_cos'"
    )
    first, second = np.mean(NORMAL_COS) / (0.9 + 1e-8), np.mean([0.5, 0.25, 0.75]) / (0.75 + 1e-8)
    expected = (first + second) / 2
    assert row["value"].item() == pytest.approx(expected, rel=1e-12)
    assert row[["n", "n_excluded"]].values.tolist() == [[2, 0]]


def test_all_excluded_set_has_only_the_plain_mean_row():
    table, router = cosine_table([UNSTABLE_COS, NEGATIVE_COS])
    frame = consistency_table([table], router, memorization_for(0), min_cos=0.05)
    layer_all = frame.query("group == 'all' and layer == 'all' and domain == 'all'")
    assert layer_all["metric"].tolist() == ["consistency_mean_cos"]
    assert layer_all["n"].item() == 2


def test_mean_cos_hand_case():
    # cosines from the three-layer hand case above: c0 = 1/sqrt(2), c1 = 4/sqrt(20)
    router = np.array(
        [[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]], [[1.0, 3.0], [0.0, 0.0]]]
    )
    scores = consistency_scores(np.array([[[1.0, 0.0]] * 3]), router)
    expected = (1 / math.sqrt(2) + 4 / math.sqrt(20)) / 2
    assert scores.consistency_mean_cos[0] == pytest.approx(expected)


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
    both = pair[["consistency_norm_mean_cos", "inconsistency_paper_formula"]].dropna()
    assert len(both) > 10
    np.testing.assert_allclose(both.sum(axis=1), 1.0)
    # every set's size is split into kept (n) and left out (n_excluded)
    counts = consistency.query("layer == 'all'").pivot_table(
        index=["step", "domain", "group"], columns="metric", values=["n", "n_excluded"]
    )
    kept = counts[("n", "consistency_norm_mean_cos")].dropna()
    excluded = counts[("n_excluded", "consistency_norm_mean_cos")].dropna()
    sizes = counts[("n", "consistency_mean_cos")][kept.index]
    np.testing.assert_array_equal(kept + excluded, sizes)
    assert set(consistency.query("metric == 'adjacent_layer_cos'")["layer"]) == {"0", "1"}
    baselines = baselines_table(tables, tables[-1], top_k=2, memorization=memorization_for())
    final = baselines.query("step == 200 and metric == 'router_saturation'")
    np.testing.assert_allclose(final["value"], 1.0)
    entropy = baselines.query(
        "step == 100 and domain == 'all' and group == 'all' and layer == 'all' and metric == 'routing_entropy'"
    )
    assert entropy["value"].item() == pytest.approx(tables[0].entropy.mean(axis=1).mean(), rel=1e-6)
    assert entropy["n"].item() == 8
