"""Metric 1, Metric 2 and baselines against hand-computed values and reference code."""

from __future__ import annotations

import functools
import itertools
import math
import statistics

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


@functools.lru_cache(maxsize=None)
def cached_levenshtein(a: str, b: str) -> int:
    """The dynamic programme, memoised: repeated strings make the brute-force loops cheap."""
    return dp_levenshtein(a, b)


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
    direct = np.array([cached_levenshtein(strings[a], strings[b]) for a, b in zip(i, j)])
    assert np.array_equal(pm._pair_distances(strings, i, strings, j, 1), direct)
    a, b = pm.sample_cross_pairs(len(strings), len(other), 5000, rng)
    cross = np.array([cached_levenshtein(strings[x], other[y]) for x, y in zip(a, b)])
    assert np.array_equal(pm._pair_distances(strings, a, other, b, 1), cross)
    within = sum(cached_levenshtein(x, y) for x, y in itertools.combinations(strings, 2))
    across = sum(cached_levenshtein(x, y) for x in strings for y in other)
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


# ---------------------------------------------------------------- hand-built tables (mutation tests)


def mean_and_se(values) -> tuple[float, float]:
    """Between-sample mean and se (stdev with ddof 1 / sqrt n; NaN for one sample)."""
    values = [float(v) for v in values]
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return statistics.fmean(values), se


def one_hot_routing(top: list[tuple[int, ...]], experts: int = 3) -> np.ndarray:
    """(samples, layers, experts) weights whose top-1 expert per layer is `top[sample][layer]`."""
    weights = np.full((len(top), len(top[0]), experts), 0.1, dtype=np.float32)
    for sample, layers in enumerate(top):
        for layer, expert in enumerate(layers):
            weights[sample, layer, expert] = 0.8
    return weights


def hand_table(step, domains, ids, top, entropy, layers=(3, 7)) -> PathwayTable:
    n = len(ids)
    return PathwayTable(
        step=step,
        domains=np.array(domains, dtype=object),
        sample_ids=np.array(ids, dtype=object),
        layers=np.array(layers),
        n_tokens=np.full(n, 5),
        weights=one_hot_routing(top),
        entropy=np.array(entropy, dtype=np.float32),
    )


def memorization_frame(rows: list[tuple[str, str, int | None, object]]) -> pd.DataFrame:
    """(domain, sample_id, t_star, memorized) rows, typed as loss.memorization writes them."""
    return pd.DataFrame(
        {
            "domain": [r[0] for r in rows],
            "sample_id": [r[1] for r in rows],
            "t_star": pd.array([r[2] for r in rows], dtype="Int64"),
            "memorized": [r[3] for r in rows],
        }
    )


def by_key(frame: pd.DataFrame) -> dict:
    keys = ["domain", "group", "layer", "metric"]
    assert not frame.duplicated(keys).any()
    return {tuple(row[k] for k in keys): row for _, row in frame.iterrows()}


def assert_row(row, value, se, n, rel=1e-6):
    assert row["value"] == pytest.approx(value, rel=rel, abs=1e-12)
    if math.isnan(se):
        assert math.isnan(row["se"])
    else:
        assert row["se"] == pytest.approx(se, rel=rel, abs=1e-12)
    assert row["n"] == n


# Six samples, MoE layers 3 and 7, top-1 routing over three experts. s3 keeps a t* but was not
# memorized before the last checkpoint; s5 is missing from the final step's table.
BASE_IDS = ["s0", "s1", "s2", "s3", "s4", "s5"]
BASE_DOMAINS = ["math", "code", "math", "math", "code", "math"]
BASE_TOP = [(0, 1), (2, 2), (1, 0), (0, 0), (1, 1), (2, 0)]
BASE_ENTROPY = [[0.5, 1.0], [0.25, 0.75], [1.5, 0.5], [2.0, 1.0], [0.0, 0.5], [1.0, 1.0]]
FINAL_TOP = {"s0": (0, 2), "s1": (2, 2), "s2": (0, 0), "s3": (0, 0), "s4": (0, 1)}
# top-1 now vs final, per layer: s0 [1, 0], s1 [1, 1], s2 [0, 1], s3 [1, 1], s4 [0, 1]
SATURATION = {"s0": [1, 0], "s1": [1, 1], "s2": [0, 1], "s3": [1, 1], "s4": [0, 1]}
BASE_MEMORIZATION = [
    ("math", "s0", 100, True),
    ("code", "s1", 100, True),
    ("math", "s2", 200, True),
    ("math", "s3", 300, False),
    ("code", "s4", None, False),
    ("math", "s5", 100, True),
]
BASE_SETS = {
    ("code", "all"): ["s1", "s4"],
    ("code", "memorized"): ["s1"],
    ("code", "100"): ["s1"],
    ("math", "all"): ["s0", "s2", "s3", "s5"],
    ("math", "memorized"): ["s0", "s2", "s5"],
    ("math", "100"): ["s0", "s5"],
    ("math", "200"): ["s2"],
    ("all", "all"): BASE_IDS,
    ("all", "memorized"): ["s0", "s1", "s2", "s5"],
    ("all", "100"): ["s0", "s1", "s5"],
    ("all", "200"): ["s2"],
}


def base_tables() -> tuple[PathwayTable, PathwayTable]:
    table = hand_table(100, BASE_DOMAINS, BASE_IDS, BASE_TOP, BASE_ENTROPY)
    # the final table lists its samples in another order: saturation must pair them by id
    final_ids = ["s4", "s3", "s2", "s1", "s0"]
    final = hand_table(
        900,
        [BASE_DOMAINS[BASE_IDS.index(s)] for s in final_ids],
        final_ids,
        [FINAL_TOP[s] for s in final_ids],
        np.zeros((5, 2)),
    )
    return table, final


@pytest.mark.filterwarnings("error")  # singleton sets: se is NaN without a numpy warning
def test_baselines_table_rows_match_hand_computed_set_means():
    table, final = base_tables()
    frame = baselines_table([table], final, 1, memorization_frame(BASE_MEMORIZATION))
    assert list(frame.columns) == pm.METRIC_TABLE_COLUMNS
    assert (frame["step"] == 100).all()
    entropy = dict(zip(BASE_IDS, BASE_ENTROPY))
    expected = {}
    for (domain, group), members in BASE_SETS.items():
        per_layer = {"all": {s: np.mean(entropy[s]) for s in members}}
        per_layer.update(
            {str(l): {s: entropy[s][p] for s in members} for p, l in enumerate((3, 7))}
        )
        for layer, values in per_layer.items():
            expected[(domain, group, layer, "routing_entropy")] = mean_and_se(values.values())
        paired = [s for s in members if s in SATURATION]  # s5 has no final-step pathway
        saturation = {"all": [np.mean(SATURATION[s]) for s in paired]}
        saturation.update(
            {str(l): [SATURATION[s][p] for s in paired] for p, l in enumerate((3, 7))}
        )
        for layer, values in saturation.items():
            expected[(domain, group, layer, "router_saturation")] = mean_and_se(values)
    rows = by_key(frame)
    assert set(rows) == set(expected)
    for key, (value, se) in expected.items():
        members = BASE_SETS[key[:2]]
        n = len(members) if key[3] == "routing_entropy" else len(set(members) - {"s5"})
        assert_row(rows[key], value, se, n)


def test_baselines_of_a_single_moe_layer():
    table = hand_table(100, ["math", "math"], ["s0", "s1"], [(0,), (2,)], [[0.5], [1.5]], (5,))
    final = hand_table(900, ["math", "math"], ["s0", "s1"], [(0,), (1,)], [[0.0], [0.0]], (5,))
    frame = baselines_table([table], final, 1, memorization_frame([]))
    rows = by_key(frame.query("domain == 'all'"))
    # with one layer the "all" rows are that layer's rows; saturation per sample: 1, 0
    for layer in ("all", "5"):
        assert_row(rows[("all", "all", layer, "routing_entropy")], 1.0, 0.5, 2)
        assert_row(rows[("all", "all", layer, "router_saturation")], 0.5, 0.5, 2)


def test_step_sharing_no_sample_with_the_final_step_has_entropy_rows_only():
    table, final = base_tables()
    other = hand_table(
        50, ["math", "code"], ["x0", "x1"], [(0, 1), (1, 0)], [[1.0, 2.0], [0.0, 1.0]]
    )
    frame = baselines_table([other, table], final, 1, memorization_frame([]))
    early = frame.query("step == 50")
    assert set(early["metric"]) == {"routing_entropy"}
    assert_row(by_key(early)[("all", "all", "all", "routing_entropy")], 1.0, 0.5, 2)
    assert set(frame.query("step == 100")["metric"]) == {"routing_entropy", "router_saturation"}


def test_baselines_reject_other_moe_layers_and_saturation_shapes():
    table, final = base_tables()
    moved = hand_table(100, BASE_DOMAINS, BASE_IDS, BASE_TOP, BASE_ENTROPY, layers=(3, 8))
    with pytest.raises(GrokpathError, match="step 100: MoE layers differ from the final step's"):
        baselines_table([moved], final, 1, memorization_frame([]))
    with pytest.raises(GrokpathError, match=r"shapes differ \(1, 2, 3\) vs \(1, 3, 3\)"):
        router_saturation(np.ones((1, 2, 3)), np.ones((1, 3, 3)), 1)


def test_t_star_groups_are_reported_in_step_order():
    ids = ["s0", "s1", "s2"]
    table = hand_table(100, ["math"] * 3, ids, [(0, 0)] * 3, [[0.0, 0.0]] * 3)
    memo = memorization_frame(
        [("math", "s0", 1000, True), ("math", "s1", 200, True), ("math", "s2", 30, True)]
    )
    frame = baselines_table([table], table, 1, memo)
    groups = frame.query("domain == 'all' and layer == 'all' and metric == 'routing_entropy'")
    # numeric order: a string sort would put "1000" before "200" and "30"
    assert groups["group"].tolist() == ["all", "memorized", "30", "200", "1000"]


def test_memorization_groups_treat_unknown_flags_as_not_memorized():
    table, _ = base_tables()
    # a nullable flag (as a Parquet bool column with nulls reads back) may be missing
    memo = memorization_frame(
        [
            ("math", "s0", 100, True),
            ("code", "s1", 100, None),
            ("math", "s2", 200, False),
            ("math", "s3", None, True),
        ]
    )
    memo["memorized"] = memo["memorized"].astype("boolean")
    groups = pm.memorization_groups(table, memo)
    assert groups.tolist() == ["100", None, None, None, None, None]


# ---------------------------------------------------------------- Metric 2 (mutation tests)


def test_consistency_table_needs_router_weights_for_every_step():
    table, router = cosine_table([NORMAL_COS], step=100)
    with pytest.raises(GrokpathError, match="no router weights for step 100"):
        consistency_table([table], {200: router[100]}, memorization_for(0))


def test_consistency_floor_is_the_one_passed():
    # max cosine 0.3: kept at the default floor 0.05, left out at 0.4
    low = [0.3, 0.2, 0.1]
    table, router = cosine_table([NORMAL_COS, low])
    frame = consistency_table([table], router, memorization_for(0), min_cos=0.4)
    row = by_key(frame.query("domain == 'all'"))[("all", "all", "all", "consistency_norm_mean_cos")]
    assert row["value"] == pytest.approx(np.mean(NORMAL_COS) / (0.9 + 1e-8), rel=1e-12)
    assert (row["n"], row["n_excluded"]) == (1, 1)
    weights, router_weights = routers_with_cosines([NORMAL_COS, low])
    scores = consistency_scores(weights, router_weights, min_cos=0.4)
    assert scores.excluded.tolist() == [False, True]
    assert math.isnan(scores.consistency_norm_mean_cos[1])


def test_floor_accepts_both_ends_of_the_unit_interval_only():
    cos = np.array([[1.0, 0.5], [0.99, 0.5]])
    _, excluded = normalised_consistency(cos, 1.0)
    assert excluded.tolist() == [False, True]
    _, excluded = normalised_consistency(cos, 0.0)
    assert excluded.tolist() == [False, False]
    with pytest.raises(GrokpathError, match=r"consistency_min_cos 1.5: must lie in \[0, 1\]"):
        normalised_consistency(cos, 1.5)


@pytest.mark.parametrize("shape", [(3,), (3, 0)])
def test_normalised_consistency_rejects_cosines_without_a_layer_axis(shape):
    with pytest.raises(GrokpathError, match=r"cosines must be \(samples, layers - 1\)"):
        normalised_consistency(np.ones(shape), 0.05)


def test_normalised_consistency_works_in_float64():
    # float32 input: in float32 the 1e-8 guard vanishes and the largest cosine's ratio is 1
    cos = np.array([NORMAL_COS], dtype=np.float32)
    consistency, _ = normalised_consistency(cos, 0.05)
    exact = np.mean([float(c) / (float(cos.max()) + 1e-8) for c in cos[0]])
    assert consistency.dtype == np.float64
    assert consistency[0] == pytest.approx(exact, rel=1e-13)


@pytest.mark.filterwarnings("error")
def test_guarded_rows_divide_by_zero_silently():
    # a largest cosine of exactly -1e-8 makes the denominator 0: excluded, and no warning
    consistency, excluded = normalised_consistency(
        np.array([[-1e-8, -0.3, -0.5], NORMAL_COS]), 0.05
    )
    assert excluded.tolist() == [True, False] and math.isnan(consistency[0])


def test_cosines_of_float32_routers_are_computed_in_float64():
    # monitor passes float32 router weights: a float32 Gram matrix would cost ~7 digits
    rng = np.random.default_rng(1)
    weights = rng.dirichlet(np.ones(6), size=(4, 3)).astype(np.float32)
    router = rng.normal(size=(3, 6, 8)).astype(np.float32)
    g, w = weights.astype(np.float64), router.astype(np.float64)
    embeddings = np.einsum("nle,leh->nlh", g, w)
    a, b = embeddings[:, :-1], embeddings[:, 1:]
    explicit = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    np.testing.assert_allclose(adjacent_layer_cosines(weights, router), explicit, rtol=1e-12)


@pytest.mark.parametrize(
    "weights_shape, router_shape",
    [
        ((2, 3, 4), (3, 5, 8)),  # experts differ
        ((2, 3, 4), (4, 4, 8)),  # layers differ
        ((3, 4), (3, 4, 8)),  # one sample without its sample axis
        ((2, 3, 4), (3, 4, 8, 1)),  # router with a stray axis
    ],
)
def test_cosines_reject_mismatched_shapes(weights_shape, router_shape):
    with pytest.raises(
        GrokpathError,
        match=r"do not match router weights .*\(expected \(samples, layers, experts\) and "
        r"\(layers, experts, hidden\)\)$",
    ):
        adjacent_layer_cosines(np.ones(weights_shape), np.ones(router_shape))


def test_cosines_need_two_moe_layers():
    with pytest.raises(GrokpathError, match="^consistency needs at least two MoE layers$"):
        adjacent_layer_cosines(np.ones((2, 1, 4)), np.ones((1, 4, 8)))


# ---------------------------------------------------------------- empty tables keep their schema


TABLE_DTYPES = {"step": "int64", "value": "float64", "se": "float64", "n": "int64"}


def assert_empty_schema(frame: pd.DataFrame, columns: list[str]):
    assert len(frame) == 0 and list(frame.columns) == columns
    expected = {**TABLE_DTYPES, "n_excluded": "int64"}
    assert {c: str(frame[c].dtype) for c in expected if c in columns} == {
        c: t for c, t in expected.items() if c in columns
    }


def test_tables_without_rows_keep_columns_and_dtypes():
    single = synthetic_table(100, 0, n=1)
    assert_empty_schema(edit_distance_table([single], memorization_for(1)), pm.METRIC_TABLE_COLUMNS)
    empty = synthetic_table(100, 0, n=0)
    assert_empty_schema(edit_distance_table([empty], memorization_for(0)), pm.METRIC_TABLE_COLUMNS)
    assert_empty_schema(
        consistency_table([], {}, memorization_for(0)), pm.CONSISTENCY_TABLE_COLUMNS
    )
    final = synthetic_table(100, 0)
    assert_empty_schema(baselines_table([], final, 2, memorization_for()), pm.METRIC_TABLE_COLUMNS)


def test_encoded_pathways_of_no_samples_have_no_layers():
    for id_level in (False, True):
        encoded = pm.EncodedPathways.of([], id_level)
        assert encoded.whole.tolist() == [] and encoded.layers == []


# ---------------------------------------------------------------- means over pairs (mutation tests)


def short_strings(n: int, seed: int, alphabet: str = "abcd") -> list[str]:
    """n distinct short strings: cheap for the dynamic programme, varied distances."""
    rng = np.random.default_rng(seed)
    found: list[str] = []
    while len(found) < n:
        s = "".join(rng.choice(list(alphabet), size=rng.integers(1, 7)))
        if s not in found:
            found.append(s)
    return found


@pytest.mark.filterwarnings("error")  # one drawn pair: se is NaN without a numpy warning
@pytest.mark.parametrize("max_pairs", [1, 2, 20])
def test_sampled_mean_and_se_are_those_of_the_drawn_pairs(max_pairs):
    strings = short_strings(12, 7)  # 66 pairs, more than max_pairs: sampled
    i, j = pm.sample_within_pairs(12, max_pairs, np.random.default_rng(3))
    drawn = [dp_levenshtein(strings[a], strings[b]) for a, b in zip(i, j)]
    result = mean_pairwise_distance(strings, max_pairs=max_pairs, seed=3)
    assert result.exact is False and result.n_pairs == max_pairs
    mean, se = mean_and_se(drawn)
    assert result.mean == pytest.approx(mean)
    assert math.isnan(result.se) if max_pairs == 1 else result.se == pytest.approx(se)
    a, b = strings[:5], short_strings(6, 8)  # 30 pairs
    i, j = pm.sample_cross_pairs(5, 6, max_pairs, np.random.default_rng(4))
    drawn = [dp_levenshtein(a[x], b[y]) for x, y in zip(i, j)]
    result = mean_cross_distance(a, b, max_pairs=max_pairs, seed=4)
    assert result.exact is False and result.n_pairs == max_pairs
    mean, se = mean_and_se(drawn)
    assert result.mean == pytest.approx(mean)
    assert math.isnan(result.se) if max_pairs == 1 else result.se == pytest.approx(se)


def test_max_pairs_equal_to_the_pair_count_is_exact():
    strings = short_strings(5, 1)  # 10 pairs
    result = mean_pairwise_distance(strings, max_pairs=10)
    assert result == pm.PairMean(brute_mean(strings), 0.0, 10, True)
    a, b = short_strings(2, 2), short_strings(3, 3)
    cross = mean_cross_distance(a, b, max_pairs=6)
    expected = statistics.fmean(dp_levenshtein(x, y) for x in a for y in b)
    assert cross == pm.PairMean(pytest.approx(expected), 0.0, 6, True)


def test_cross_distance_of_one_sample_each_is_their_distance():
    assert mean_cross_distance(["abc"], ["b"]) == pm.PairMean(2.0, 0.0, 1, True)


def test_cross_pairs_cover_every_pair_uniformly():
    a, b = pm.sample_cross_pairs(2, 3, 60_000, np.random.default_rng(0))
    frequency = pd.Series(list(zip(a.tolist(), b.tolist()))).value_counts(normalize=True)
    assert len(frequency) == 6 and np.allclose(frequency.values, 1 / 6, atol=0.01)


def test_sampled_layers_share_their_pairs_and_follow_the_seed():
    # both layers hold the same strings per sample: the same pairs give the same means
    rng = np.random.default_rng(0)
    layers = [
        tuple(int(e) for e in rng.choice(8, size=rng.integers(1, 4), replace=False))
        for _ in range(12)
    ]
    paths = [(layer, layer) for layer in layers]
    first, second = per_layer_mean_distance(paths, max_pairs=10, seed=5)
    assert first == second and first.n_pairs == 10 and first.exact is False
    others = [per_layer_mean_distance(paths, max_pairs=10, seed=s)[0].mean for s in range(6, 10)]
    assert any(m != first.mean for m in others)
    assert per_layer_mean_distance(paths, max_pairs=10, seed=5)[0] == first


def test_distance_blocks_stay_within_block_entries(monkeypatch):
    """The documented memory bound: no distance matrix above BLOCK_ENTRIES entries."""
    sizes = []
    real = pm._cdist

    def recording(queries, choices, workers):
        sizes.append(len(queries) * len(choices))
        return real(queries, choices, workers)

    monkeypatch.setattr(pm, "_cdist", recording)
    monkeypatch.setattr(pm, "BLOCK_ENTRIES", 64)
    distinct = short_strings(40, 11)  # 40 > 64 / 2: one row per block
    pool = short_strings(12, 12)  # 12 distinct strings: 144 > 64 entries between them
    repeated = [pool[k % 12] for k in range(40)]
    for strings in (distinct, repeated):
        sizes.clear()
        assert mean_pairwise_distance(strings).mean == pytest.approx(
            statistics.fmean(
                cached_levenshtein(x, y) for x, y in itertools.combinations(strings, 2)
            )
        )
        assert max(sizes) <= 64
    for a, b in ((repeated, repeated[:30]), (distinct[:10], distinct)):
        sizes.clear()
        assert mean_cross_distance(a, b).mean == pytest.approx(
            statistics.fmean(cached_levenshtein(x, y) for x in a for y in b)
        )
        assert max(sizes) <= 64


# ---------------------------------------------------------------- edit-distance table (mutation tests)


def pair_mean(pairs, distance) -> float:
    return statistics.fmean(distance(x, y) for x, y in pairs)


def char_and_id_forms(pathway):
    """(level, whole form, per-layer forms) for the char and id levels, in the test's own terms."""
    return (
        ("edit_distance_char", pathway_string(pathway), [layer_string(l) for l in pathway]),
        ("edit_distance_id", id_tokens(pathway), [list(l) for l in pathway]),
    )


def test_edit_distance_table_every_row_matches_brute_force():
    # three domains, a threshold above the paper's (more experts kept), every pair used
    ids = [f"s{k}" for k in range(7)]
    domains = ["b", "a", "c", "a", "b", "a", "c"]
    table = synthetic_table(300, 4, n=7, layers=(2, 5, 9))
    table.domains, table.sample_ids = np.array(domains, dtype=object), np.array(ids, dtype=object)
    memo = memorization_frame(
        [("a", "s1", 100, True), ("a", "s3", 100, True), ("b", "s4", 100, True),
         ("b", "s0", 200, True), ("a", "s5", 200, False)]  # fmt: skip
    )
    sets = {
        ("a", "all"): ["s1", "s3", "s5"],
        ("a", "memorized"): ["s1", "s3"],
        ("a", "100"): ["s1", "s3"],
        ("b", "all"): ["s0", "s4"],
        ("b", "memorized"): ["s0", "s4"],
        ("c", "all"): ["s2", "s6"],
        ("all", "all"): ids,
        ("all", "memorized"): ["s0", "s1", "s3", "s4"],
        ("all", "100"): ["s1", "s3", "s4"],
    }  # sets of one sample give no row
    paths = dict(zip(ids, id_pathways(table.weights, 0.9)))
    assert paths != dict(zip(ids, id_pathways(table.weights, 0.7)))  # the threshold matters
    forms = {s: char_and_id_forms(p) for s, p in paths.items()}
    expected = {}
    for (domain, group), members in sets.items():
        pairs = list(itertools.combinations(members, 2))
        for level in range(2):
            metric = forms[members[0]][level][0]
            whole = pair_mean(
                [(forms[x][level][1], forms[y][level][1]) for x, y in pairs], dp_levenshtein
            )
            expected[(domain, group, "all", metric)] = (whole, len(pairs))
            for pos, layer in enumerate(("2", "5", "9")):
                value = pair_mean(
                    [(forms[x][level][2][pos], forms[y][level][2][pos]) for x, y in pairs],
                    dp_levenshtein,
                )
                expected[(domain, group, layer, metric)] = (value, len(pairs))
    for a, b in (("a", "b"), ("a", "c"), ("b", "c")):
        pairs = [
            (x, y)
            for x in ids
            for y in ids
            if domains[ids.index(x)] == a and domains[ids.index(y)] == b
        ]
        for level in range(2):
            metric = forms["s0"][level][0] + "_cross"
            value = pair_mean(
                [(forms[x][level][1], forms[y][level][1]) for x, y in pairs], dp_levenshtein
            )
            expected[(f"{a}|{b}", "all", "all", metric)] = (value, len(pairs))
    frame = edit_distance_table([table], memo, threshold=0.9, max_pairs=1000)
    rows = by_key(frame)
    assert set(rows) == set(expected)
    for key, (value, n) in expected.items():
        assert_row(rows[key], value, 0.0, n, rel=1e-12)
    assert (frame["step"] == 300).all()


def test_edit_distance_sampling_uses_max_pairs_and_the_seed():
    table = synthetic_table(100, 6, n=12)  # 6 per domain: 15 pairs within, 36 across, 66 in all
    memo = memorization_frame([])
    first = edit_distance_table([table], memo, max_pairs=10, seed=1)
    # every set has more than 10 pairs: 10 drawn pairs each, with a Monte Carlo se
    assert (first["n"] == 10).all() and first["se"].notna().all()
    pd.testing.assert_frame_equal(first, edit_distance_table([table], memo, max_pairs=10, seed=1))
    second = edit_distance_table([table], memo, max_pairs=10, seed=2)
    changed = first.assign(changed=first["value"] != second["value"])
    changed["kind"] = np.where(
        changed["domain"].str.contains("|", regex=False), "cross", changed["layer"]
    )
    # another seed draws other pairs: whole pathways, each layer and the cross-domain rows
    assert changed.groupby("kind")["changed"].any().all()


def test_sets_with_the_same_members_draw_their_own_pairs():
    # one domain, everyone memorized at one step: six sets with the same twelve members
    table = synthetic_table(100, 8, n=12)
    table.domains = np.array(["math"] * 12, dtype=object)
    memo = memorization_frame([("math", f"s{k}", 100, True) for k in range(12)])
    frame = edit_distance_table([table], memo, max_pairs=8, seed=0)
    assert frame.groupby(["domain", "group"]).ngroups == 6
    for layer_rows in (frame.query("layer == 'all'"), frame.query("layer != 'all'")):
        vectors = layer_rows.groupby(["domain", "group"])["value"].apply(tuple)
        assert vectors.nunique() == len(vectors), vectors
    # three domains holding the same pathways: each domain pair draws its own pairs
    same = synthetic_table(100, 9, n=4)
    tripled = PathwayTable(
        step=100,
        domains=np.repeat(np.array(["a", "b", "c"], dtype=object), 4),
        sample_ids=np.array([f"{d}{k}" for d in "abc" for k in range(4)], dtype=object),
        layers=same.layers,
        n_tokens=np.full(12, 5),
        weights=np.concatenate([same.weights] * 3),
        entropy=np.concatenate([same.entropy] * 3),
    )
    cross = edit_distance_table([tripled], memorization_frame([]), max_pairs=5)
    cross = cross.query("metric.str.endswith('_cross')")
    vectors = cross.groupby("domain")["value"].apply(tuple)
    assert len(vectors) == 3 and vectors.nunique() == 3, vectors


def test_mean_pathway_distance_char_level_by_default_and_id_level_on_request():
    # expert 12 vs experts 1 and 2: the paper's strings "12-3" and "1,2-3" differ by one
    # inserted comma; as id tokens [12, |, 3] vs [1, 2, |, 3] they differ by a substitution and
    # an insertion
    pathways = [((12,), (3,)), ((1, 2), (3,))]
    char = pm.mean_pathway_distance(pathways)
    assert char.mean == 1 and char.n_pairs == 1 and char.exact
    assert pm.mean_pathway_distance(pathways, id_level=True).mean == 2
    sampled = pm.mean_pathway_distance(pathways * 3, max_pairs=4, seed=1)  # kwargs reach the mean
    assert sampled.n_pairs == 4 and not sampled.exact
