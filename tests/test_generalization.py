"""Generalization step on hand-made correctness tables."""

from __future__ import annotations

import pandas as pd
import pytest

from grokpath.errors import GrokpathError
from grokpath.evaluation.generalization import (
    GENERALIZATION_COLUMNS,
    generalization_index,
    generalization_steps,
)

STEPS = [100, 200, 300, 400, 500, 600, 700]


def _items(patterns: dict[int, str], task="lab_math", domain="math") -> pd.DataFrame:
    """One item per doc_id; its pattern gives correctness per step ('1' right, '0' wrong)."""
    rows = [
        {"task": task, "domain": domain, "doc_id": doc_id, "step": step, "correct": ch == "1"}
        for doc_id, pattern in patterns.items()
        for step, ch in zip(STEPS, pattern)
    ]
    return pd.DataFrame(rows).sample(frac=1, random_state=0)  # order must not matter


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("0001111", 3),  # clean jump
        ("1111111", 0),  # right from the start
        ("0000000", None),  # never
        ("0101011", 5),  # flips: the tail 1,0,1,1 (4 long) cannot afford its miss
        ("0111011", 1),  # one late miss in a 6-long window: mean 5/6 > 0.8, kept
        ("0010111", 4),  # one miss in a 5-long window: mean 4/5 = 0.8 is not > 0.8
        ("0111001", None),  # two late misses: only the last checkpoint qualifies, unconfirmed
        ("0000001", None),  # right only at the last checkpoint: unconfirmed
        ("0000011", 5),  # right at the last two checkpoints: confirmed by the last
        ("0000010", None),  # right once, then wrong at the end
        ("0011110", None),  # 1,1,1,1,0 has mean 0.8; shorter windows end on the miss
    ],
)
def test_generalization_index(pattern, expected):
    assert generalization_index([c == "1" for c in pattern], 0.8, 1) == expected


def test_the_step_itself_must_be_correct():
    # From index 0 the window is 0,1,1,1,1,1,1: mean 6/7 > 0.8 with one miss, but the item was
    # wrong at step 100, so it generalized at step 200.
    assert generalization_index([c == "1" for c in "0111111"], 0.8, 1) == 1


def test_parameters_come_from_the_config():
    flips = [c == "1" for c in "0111011"]
    assert generalization_index(flips, 0.8, 0) == 5
    assert generalization_index(flips, 0.9, 1) == 5


def test_table_has_one_nullable_row_per_item():
    table = generalization_steps(_items({0: "0001111", 1: "0000000", 2: "0111011"}))
    assert list(table.columns) == GENERALIZATION_COLUMNS
    assert str(table.gen_step.dtype) == "Int64"
    by_doc = table.set_index("doc_id")
    assert by_doc.loc[0, "gen_step"] == 400 and by_doc.loc[0, "generalized"]
    assert pd.isna(by_doc.loc[1, "gen_step"]) and not by_doc.loc[1, "generalized"]
    assert by_doc.loc[2, "gen_step"] == 200


def test_right_only_at_the_last_checkpoint_is_not_generalized():
    table = generalization_steps(_items({0: "0000001", 1: "0000011", 2: "1111111"}))
    by_doc = table.set_index("doc_id")
    assert pd.isna(by_doc.loc[0, "gen_step"]) and not by_doc.loc[0, "generalized"]
    assert by_doc.loc[1, "gen_step"] == 600 and by_doc.loc[1, "generalized"]
    assert by_doc.loc[2, "gen_step"] == 100


def test_a_single_checkpoint_confirms_nothing():
    assert generalization_index([True], 0.8, 1) is None


def test_tasks_are_kept_apart():
    items = pd.concat(
        [
            _items({0: "0000011"}),
            _items({0: "1111111"}, task="lab_code", domain="code"),
        ]
    )
    table = generalization_steps(items).set_index("task")
    assert table.loc["lab_math", "gen_step"] == 600
    assert table.loc["lab_code", "gen_step"] == 100


def test_duplicate_evaluations_are_refused():
    items = _items({0: "0001111"})
    with pytest.raises(GrokpathError, match="twice"):
        generalization_steps(pd.concat([items, items]))


def test_contaminated_items_are_dropped_by_domain_and_doc_id():
    from grokpath.evaluation.generalization import drop_contaminated

    items = pd.concat(
        [
            _items({0: "0001111", 1: "1111111"}, task="lab_math_instruct"),
            _items({0: "0001111"}, task="lab_code", domain="code"),
        ]
    )
    contamination = pd.DataFrame(
        {
            "domain": ["math", "math", "code"],
            "doc_id": [0, 1, 0],
            "task": ["lab_math"] * 2 + ["lab_code"],
            "min_k_pp": [0.5, 0.1, 0.2],
            "contaminated": [False, True, False],
        }
    )
    kept = drop_contaminated(items, contamination)
    assert sorted(set(zip(kept.domain, kept.doc_id))) == [("code", 0), ("math", 0)]


def test_float_correctness_from_lm_eval_reads_as_hits():
    # lm-eval writes per-item accuracy as 0.0 / 1.0
    assert generalization_index([float(c) for c in "0001111"], 0.8, 1) == 3


def test_the_paper_allows_one_miss_by_default():
    # 11 checkpoints, "10101111111": from index 0 the window has 9/11 = 0.82 > 0.8 but two misses,
    # so the paper's default (at most one miss) starts at index 2 (8/9, one miss)
    steps = [100 * (i + 1) for i in range(11)]
    items = pd.DataFrame({"task": "lab_math", "domain": "math", "doc_id": 0, "step": steps,
                          "correct": [c == "1" for c in "10101111111"]})
    assert generalization_steps(items)["gen_step"].tolist() == [300]


def test_rows_are_ordered_by_task_domain_and_doc_id():
    items = pd.concat([_items({3: "0001111", 1: "0000000"}, task="lab_math", domain="math"),
                       _items({2: "1111111"}, task="lab_code", domain="code")])
    table = generalization_steps(items)
    assert table[["task", "domain", "doc_id"]].values.tolist() == [
        ["lab_code", "code", 2], ["lab_math", "math", 1], ["lab_math", "math", 3]]


def test_an_empty_item_table_gives_an_empty_table_with_the_columns():
    empty = _items({0: "0001111"}).iloc[0:0]
    table = generalization_steps(empty)
    assert list(table.columns) == GENERALIZATION_COLUMNS and table.empty


def test_missing_item_columns_are_named():
    items = _items({0: "0001111"}).drop(columns=["doc_id", "correct"])
    with pytest.raises(GrokpathError, match=r"^per-item table lacks column\(s\) doc_id, correct$"):
        generalization_steps(items)


def test_a_second_evaluation_at_a_step_is_refused_by_item_and_step():
    # the same item scored twice at step 400 with different answers (base and instruct mixed)
    items = _items({0: "0001111"})
    again = items[items.step == 400].assign(correct=False)
    with pytest.raises(
        GrokpathError,
        match=r"^item lab_math/0 appears twice at step 400: one evaluation \(base or "
        r"instruction-tuned\) per table$",
    ):
        generalization_steps(pd.concat([items, again]))
