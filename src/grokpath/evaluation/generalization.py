"""Generalization step of each test item from its per-checkpoint correctness (paper §3).

An item has generalized from the earliest checkpoint t such that, over the window of
checkpoints t, t+1, ..., last (t itself included):
- the mean accuracy is > min_mean_acc (paper 0.8), and
- the item is wrong at no more than max_misses checkpoints (paper 1), and
- the item is correct at t itself, so the step reported is never one where it was wrong
  (otherwise a long correct tail could absorb an earlier miss as "the" generalization step).
The window must hold at least two checkpoints: an item whose first qualifying checkpoint is the
last one (e.g. right only at the last checkpoint) is unconfirmed, as a training sample's t* at
the last checkpoint does not count as memorized (grokpath.loss.memorization). Items that meet the rule
at no checkpoint before the last get gen_step = <NA>, generalized = False, so every reader of
gen_step (Fig 1's cumulative line, the matching, Fig 2's test groups) leaves them out alike.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from grokpath.errors import GrokpathError

GENERALIZATION_COLUMNS = ["task", "domain", "doc_id", "gen_step", "generalized"]
_ITEM_KEYS = ["task", "domain", "doc_id"]


def generalization_index(
    correct: Sequence[bool], min_mean_acc: float, max_misses: int
) -> int | None:
    """Index of the first checkpoint before the last from which the rule holds, for correctness
    in step order; None when there is none."""
    hits = np.asarray(correct, dtype=bool)
    if hits.size == 0:
        return None
    window_len = np.arange(hits.size, 0, -1)
    window_hits = np.cumsum(hits[::-1])[::-1]
    holds = (
        hits & (window_hits / window_len > min_mean_acc) & (window_len - window_hits <= max_misses)
    )
    # a one-checkpoint window (the last) has no later checkpoint to confirm it
    first = np.flatnonzero(holds[:-1])
    return int(first[0]) if first.size else None


def drop_contaminated(items: pd.DataFrame, contamination: pd.DataFrame) -> pd.DataFrame:
    """Items without the ones flagged in the contamination table (joined on domain, doc_id:
    the base and instruction-tuned evaluations name their tasks differently)."""
    flagged = contamination.loc[contamination["contaminated"].astype(bool), ["domain", "doc_id"]]
    keys = pd.MultiIndex.from_frame(items[["domain", "doc_id"]].astype({"doc_id": "int64"}))
    drop = keys.isin(pd.MultiIndex.from_frame(flagged.astype({"doc_id": "int64"})))
    return items[~drop]


def generalization_steps(
    items: pd.DataFrame, min_mean_acc: float = 0.8, max_misses: int = 1
) -> pd.DataFrame:
    """One row per test item from the evaluation's per-item table (task, domain, doc_id, step,
    correct): GENERALIZATION_COLUMNS, gen_step a nullable Int64."""
    missing = [c for c in _ITEM_KEYS + ["step", "correct"] if c not in items.columns]
    if missing:
        raise GrokpathError(f"per-item table lacks column(s) {', '.join(missing)}")
    duplicated = items.duplicated(_ITEM_KEYS + ["step"])
    if duplicated.any():
        first = items[duplicated].iloc[0]
        raise GrokpathError(
            f"item {first.task}/{first.doc_id} appears twice at step {first.step}: "
            "one evaluation (base or instruction-tuned) per table"
        )
    rows = []
    for (task, domain, doc_id), group in items.sort_values("step").groupby(_ITEM_KEYS, sort=True):
        index = generalization_index(group["correct"].to_numpy(), min_mean_acc, max_misses)
        rows.append(
            {
                "task": task,
                "domain": domain,
                "doc_id": int(doc_id),
                "gen_step": None if index is None else int(group["step"].iloc[index]),
                "generalized": index is not None,
            }
        )
    table = pd.DataFrame(rows, columns=GENERALIZATION_COLUMNS)
    return table.astype({"doc_id": "int64", "gen_step": "Int64", "generalized": "bool"})
