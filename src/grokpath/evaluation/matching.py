"""One-to-one matching of memorized training groups to generalized test groups (paper §3).

Per domain, training samples are grouped by memorization step t* and test items by
generalization step. Group similarity is the mean cosine over all (train member, test member)
pairs, which equals the dot product of the two groups' mean unit-length embeddings. The
Hungarian method (scipy's linear_sum_assignment) then pairs groups to maximize the total
similarity; with unequal group counts the surplus groups stay unmatched.

Embeddings: `tfidf` (scikit-learn, fitted per domain on its train and test texts, split on
whitespace so the lab's one-character tokens count) or
`sentence-transformers/all-MiniLM-L6-v2` as in the paper (needs the sentence_transformers
package and the model in the local HF cache).
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from grokpath.errors import GrokpathError

log = logging.getLogger("grokpath.evaluation.matching")

MATCH_COLUMNS = ["domain", "train_group", "test_group", "similarity", "delay", "n_train", "n_test"]
TFIDF = "tfidf"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


# ---------------------------------------------------------------- embeddings


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def _tfidf(texts: Sequence[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Rows come out L2-normalized; kept sparse, since a paper-scale vocabulary times 10k
    # samples would not fit densely.
    vectorizer = TfidfVectorizer(tokenizer=str.split, token_pattern=None, lowercase=False)
    return vectorizer.fit_transform(texts)


def check_embedding(embedding: str) -> None:
    """Fail before any work when the configured embedding cannot be computed here."""
    if embedding == TFIDF:
        return
    if not embedding.startswith("sentence-transformers/"):
        raise GrokpathError(f"matching embedding {embedding!r}: expected {TFIDF!r} or {MINILM!r}")
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        raise GrokpathError(
            f"embedding {embedding!r} needs the sentence_transformers package, which is not "
            f"installed; install it or set the matching embedding to {TFIDF!r}"
        ) from None


def _sentence_transformer(texts: Sequence[str], model_name: str, device: str) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    # sentence-transformers picks cuda when available by itself when given no device.
    model = SentenceTransformer(model_name, device=None if device == "auto" else device)
    return np.asarray(model.encode(list(texts), normalize_embeddings=True, batch_size=64))


def embed(texts: Sequence[str], embedding: str, device: str = "auto"):
    """Unit-length embeddings of `texts`, one row each (a scipy sparse matrix for tfidf)."""
    check_embedding(embedding)
    if embedding == TFIDF:
        return _tfidf(texts)
    return _unit_rows(_sentence_transformer(texts, embedding, device))


# ---------------------------------------------------------------- groups and assignment


def group_means(vectors, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted group keys, dense mean vector of each group) for dense or sparse `vectors`."""
    # scipy is imported here, not at the top: figure and summary jobs import this module for
    # MATCH_COLUMNS alone, and scipy.optimize costs them half a second
    from scipy import sparse

    keys, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    averaging = sparse.csr_matrix(
        (1.0 / counts[inverse], (inverse, np.arange(len(groups)))), shape=(len(keys), len(groups))
    )
    means = averaging @ vectors
    return keys, means.toarray() if sparse.issparse(means) else np.asarray(means)


def group_similarity(
    train_vectors, train_groups: np.ndarray, test_vectors, test_groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted train group keys, sorted test group keys, mean pairwise cosine matrix)."""
    train_keys, train_means = group_means(train_vectors, train_groups)
    test_keys, test_means = group_means(test_vectors, test_groups)
    return train_keys, test_keys, train_means @ test_means.T


def hungarian_pairs(similarity: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) pairs of the one-to-one matching with the largest total similarity."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return list(zip(rows.tolist(), cols.tolist()))


def match_domain(
    domain: str, train: pd.DataFrame, test: pd.DataFrame, embedding: str, device: str = "auto"
) -> list[dict]:
    """Matched group pairs of one domain. `train` has columns text, t_star; `test` has text,
    gen_step; only their members (memorized / generalized) are passed in."""
    if train.empty or test.empty:
        log.info(
            "%s: %d train / %d test grouped items, nothing to match", domain, len(train), len(test)
        )
        return []
    vectors = embed(list(train.text) + list(test.text), embedding, device)
    train_groups = train.t_star.to_numpy(dtype=np.int64)
    test_groups = test.gen_step.to_numpy(dtype=np.int64)
    train_keys, test_keys, similarity = group_similarity(
        vectors[: len(train)], train_groups, vectors[len(train) :], test_groups
    )
    rows = []
    for i, j in hungarian_pairs(similarity):
        rows.append(
            {
                "domain": domain,
                "train_group": int(train_keys[i]),
                "test_group": int(test_keys[j]),
                "similarity": float(similarity[i, j]),
                "delay": int(test_keys[j] - train_keys[i]),
                "n_train": int((train_groups == train_keys[i]).sum()),
                "n_test": int((test_groups == test_keys[j]).sum()),
            }
        )
    return rows


def _members(table: pd.DataFrame, flag: str, step: str, texts: Mapping, key: str, what: str):
    members = table[table[flag].astype(bool) & table[step].notna()].copy()
    unknown = [k for k in members[key] if k not in texts]
    if unknown:
        raise GrokpathError(f"{what} {unknown[0]!r} (and {len(unknown) - 1} more) has no text")
    members["text"] = [texts[k] for k in members[key]]
    return members


def match_groups(
    memorization: pd.DataFrame,
    generalization: pd.DataFrame,
    train_texts: Mapping[str, Mapping[str, str]],
    test_texts: Mapping[str, Mapping[int, str]],
    embedding: str = TFIDF,
    device: str = "auto",
) -> pd.DataFrame:
    """MATCH_COLUMNS for every domain present in both tables.

    memorization: domain, sample_id, t_star, memorized (memorization/samples.parquet).
    generalization: domain, doc_id, gen_step, generalized (the generalization step's table,
    already without contaminated items if they are to be dropped).
    train_texts / test_texts: {domain: {sample_id: text}} and {domain: {doc_id: text}}.
    """
    check_embedding(embedding)
    rows: list[dict] = []
    domains = sorted(set(memorization.domain) & set(generalization.domain))
    for domain in domains:
        train = _members(
            memorization[memorization.domain == domain],
            "memorized",
            "t_star",
            train_texts.get(domain, {}),
            "sample_id",
            f"{domain} training sample",
        )
        test = _members(
            generalization[generalization.domain == domain],
            "generalized",
            "gen_step",
            test_texts.get(domain, {}),
            "doc_id",
            f"{domain} test item",
        )
        rows += match_domain(domain, train, test, embedding, device)
    table = pd.DataFrame(rows, columns=MATCH_COLUMNS)
    return table.astype(
        {
            "train_group": "int64",
            "test_group": "int64",
            "similarity": "float64",
            "delay": "int64",
            "n_train": "int64",
            "n_test": "int64",
        }
    )
