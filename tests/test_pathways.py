"""Pathway construction against hand-computed cases, and the pathway-table reader."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from grokpath.errors import GrokpathError
from grokpath.routing.extract import PATHWAY_SCHEMA
from grokpath.routing.pathways import (
    ID_TOKEN_BASE,
    id_pathways,
    id_token_string,
    kept_counts,
    layer_strings,
    load_pathway_table,
    pathway_string,
    pathway_strings,
    top_k_ids,
)


def one_hot_mix(n_experts: int, **weights: float) -> np.ndarray:
    """A weight row with weights["e3"] on expert 3 and so on."""
    row = np.zeros(n_experts)
    for name, value in weights.items():
        row[int(name[1:])] = value
    return row


def test_keeps_experts_until_cumulative_weight_exceeds_threshold():
    row = np.array([0.05, 0.6, 0.3, 0.05])  # 0.6 <= 0.7 < 0.9: experts 1 then 2
    assert id_pathways(row[None]) == [((1, 2),)]


def test_reaching_the_threshold_exactly_is_not_exceeding_it():
    row = np.array([0.125, 0.5, 0.25, 0.125])  # cumulative 0.5, 0.75 (== threshold), 0.875
    assert id_pathways(row[None], threshold=0.75) == [((1, 2, 0),)]


def test_ties_go_to_the_lower_expert_id():
    row = np.array([0.1, 0.3, 0.1, 0.3, 0.2])
    assert id_pathways(row[None])[0] == ((1, 3, 4),)  # 0.3 (1), 0.3 (3) = 0.6, + 0.2 (4) = 0.8
    assert top_k_ids(row, 4).tolist() == [1, 3, 4, 0]


def test_paper_example_string():
    weights = np.stack(
        [
            one_hot_mix(10, e3=0.4, e1=0.2, e5=0.15, e0=0.1, e2=0.1, e4=0.05),  # 0.4, 0.6, 0.75
            one_hot_mix(10, e2=0.8, e7=0.2),
            one_hot_mix(10, e9=0.5, e1=0.3, e8=0.2),  # 0.5, 0.8
        ]
    )
    assert id_pathways(weights) == [((3, 1, 5), (2,), (9, 1))]
    assert pathway_strings(weights) == ["3,1,5-2-9,1"]


def test_threshold_at_or_above_one_keeps_every_expert():
    row = np.full(4, 0.25)
    assert kept_counts(row[None], threshold=1.0).tolist() == [4]
    assert id_pathways(row[None], threshold=1.0) == [((0, 1, 2, 3),)]


def test_batch_of_samples_and_layer_strings():
    weights = np.array(
        [
            [[0.9, 0.1, 0.0], [0.2, 0.2, 0.6]],
            [[0.1, 0.1, 0.8], [0.4, 0.5, 0.1]],
        ]
    )
    paths = id_pathways(weights)
    assert paths == [((0,), (2, 0)), ((2,), (1, 0))]
    assert [pathway_string(p) for p in paths] == ["0-2,0", "2-1,0"]
    assert layer_strings(paths, 1) == ["2,0", "1,0"]


def test_id_token_string_has_one_character_per_expert():
    encoded = id_token_string(((12, 5), (63,)))
    assert encoded == chr(ID_TOKEN_BASE + 12) + chr(ID_TOKEN_BASE + 5) + "-" + chr(
        ID_TOKEN_BASE + 63
    )
    assert id_token_string((12, 5)) == encoded[:2]


def test_top_k_ids_rejects_bad_k():
    with pytest.raises(GrokpathError):
        top_k_ids(np.ones(4), 5)


def write_table(path, rows):
    columns = {name: [row[name] for row in rows] for name in PATHWAY_SCHEMA.names}
    pq.write_table(pa.Table.from_pydict(columns, schema=PATHWAY_SCHEMA), path)


def rows_for(sample_ids, layers=(0, 2), n_experts=3, step=5):
    rng = np.random.default_rng(0)
    rows = []
    for sid in sample_ids:
        for layer in layers:
            w = rng.dirichlet(np.ones(n_experts)).astype(np.float32)
            rows.append(
                {
                    "domain": "math",
                    "sample_id": sid,
                    "step": step,
                    "layer": layer,
                    "n_tokens": 4,
                    "weights": w.tolist(),
                    "entropy": 0.5,
                }
            )
    return rows


def test_load_pathway_table_round_trip(tmp_path):
    rows = rows_for(["a", "b"])
    write_table(tmp_path / "p.parquet", rows)
    table = load_pathway_table(tmp_path / "p.parquet")
    assert table.step == 5 and table.layers.tolist() == [0, 2]
    assert table.sample_ids.tolist() == ["a", "b"] and table.weights.shape == (2, 2, 3)
    np.testing.assert_allclose(table.weights[1, 0], rows[2]["weights"])
    assert table.select(np.array([1])).sample_ids.tolist() == ["b"]


def test_load_pathway_table_rejects_ungrouped_rows(tmp_path):
    rows = rows_for(["a", "b"])
    write_table(tmp_path / "p.parquet", [rows[0], rows[2], rows[1], rows[3]])
    with pytest.raises(GrokpathError, match="grouped"):
        load_pathway_table(tmp_path / "p.parquet")


def test_load_pathway_table_rejects_missing_column(tmp_path):
    pq.write_table(pa.table({"sample_id": ["a"]}), tmp_path / "p.parquet")
    with pytest.raises(GrokpathError, match="missing column"):
        load_pathway_table(tmp_path / "p.parquet")
