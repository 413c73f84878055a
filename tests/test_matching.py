"""Hungarian group matching on hand-made similarities and texts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grokpath.errors import GrokpathError
from grokpath.evaluation import matching


def test_hungarian_beats_greedy_on_a_known_optimum():
    # Greedy takes 0.9 then is left with 0.1 (total 1.0); the optimum pairs crosswise (1.6).
    similarity = np.array([[0.9, 0.8], [0.8, 0.1]])
    assert sorted(matching.hungarian_pairs(similarity)) == [(0, 1), (1, 0)]


def test_hungarian_on_a_rectangular_matrix_leaves_surplus_groups_out():
    # Three train groups, two test groups: the best total is 0.7 + 0.9 (rows 0 and 2).
    similarity = np.array([[0.7, 0.2], [0.6, 0.3], [0.65, 0.9]])
    assert sorted(matching.hungarian_pairs(similarity)) == [(0, 0), (2, 1)]


def test_group_similarity_is_mean_pairwise_cosine():
    rng = np.random.default_rng(0)
    train = matching._unit_rows(rng.normal(size=(5, 4)))
    test = matching._unit_rows(rng.normal(size=(3, 4)))
    train_groups, test_groups = np.array([1, 1, 2, 2, 2]), np.array([7, 9, 9])
    keys_a, keys_b, similarity = matching.group_similarity(train, train_groups, test, test_groups)
    assert keys_a.tolist() == [1, 2] and keys_b.tolist() == [7, 9]
    pairwise = train[2:] @ test[1:].T  # group 2 against group 9
    assert similarity[1, 1] == pytest.approx(pairwise.mean())
    # Sparse input (tfidf) gives the same matrix.
    from scipy import sparse

    _, _, from_sparse = matching.group_similarity(
        sparse.csr_matrix(train), train_groups, sparse.csr_matrix(test), test_groups
    )
    assert np.allclose(from_sparse, similarity)


def test_tfidf_splits_on_whitespace_so_symbols_count():
    vectors = matching.embed(["1 + 2 = 3", "1 * 2 = 2", "cat dog"], matching.TFIDF).toarray()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1)
    assert vectors[0] @ vectors[1] > 0 and vectors[0] @ vectors[2] == 0


def test_missing_sentence_transformers_is_a_clear_error():
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(GrokpathError, match="sentence_transformers package"):
            matching.embed(["a b"], matching.MINILM)
        # Before any work, even when a domain has nothing to match.
        empty = pd.DataFrame(columns=["domain", "sample_id", "t_star", "memorized"])
        with pytest.raises(GrokpathError, match="sentence_transformers package"):
            matching.match_groups(empty, empty, {}, {}, embedding=matching.MINILM)
    else:
        pytest.skip("sentence_transformers is installed")


def test_unknown_embedding_is_refused():
    with pytest.raises(GrokpathError, match="expected 'tfidf'"):
        matching.embed(["a"], "word2vec")


def test_match_groups_pairs_groups_by_their_texts():
    # Train groups at t* = 100 (additions) and 200 (colours); test groups at 300 (colours) and
    # 400 (additions). Text similarity must pair 100 -> 400 and 200 -> 300.
    memorization = pd.DataFrame(
        {
            "domain": ["math"] * 5,
            "sample_id": ["a", "b", "c", "d", "e"],
            "t_star": pd.array([100, 100, 200, 200, None], dtype="Int64"),
            "memorized": [True, True, True, True, False],
        }
    )
    generalization = pd.DataFrame(
        {
            "domain": ["math"] * 4,
            "doc_id": [0, 1, 2, 3],
            "gen_step": pd.array([300, 400, 400, None], dtype="Int64"),
            "generalized": [True, True, True, False],
        }
    )
    train_texts = {
        "math": {
            "a": "1 + 2 = 3",
            "b": "4 + 4 = 8",
            "c": "red blue",
            "d": "blue green",
            "e": "never memorized",
        }
    }
    test_texts = {"math": {0: "green red", 1: "2 + 2 = 4", 2: "1 + 1 = 2", 3: "x"}}
    table = matching.match_groups(memorization, generalization, train_texts, test_texts)
    assert list(table.columns) == matching.MATCH_COLUMNS
    pairs = table.set_index("train_group")
    assert pairs.loc[100, "test_group"] == 400 and pairs.loc[100, "delay"] == 300
    assert pairs.loc[200, "test_group"] == 300 and pairs.loc[200, "delay"] == 100
    assert pairs.loc[100, "n_train"] == 2 and pairs.loc[100, "n_test"] == 2
    assert pairs.loc[200, "n_test"] == 1
    assert (table.similarity > 0).all()


def test_a_domain_without_groups_gives_no_rows():
    memorization = pd.DataFrame(
        {
            "domain": ["code"],
            "sample_id": ["a"],
            "t_star": pd.array([None], dtype="Int64"),
            "memorized": [False],
        }
    )
    generalization = pd.DataFrame(
        {
            "domain": ["code"],
            "doc_id": [0],
            "gen_step": pd.array([5], dtype="Int64"),
            "generalized": [True],
        }
    )
    table = matching.match_groups(memorization, generalization, {"code": {}}, {"code": {0: "x"}})
    assert table.empty and list(table.columns) == matching.MATCH_COLUMNS
