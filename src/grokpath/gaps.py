"""The memorize-then-generalize gap of a domain, in steps (the lab's acceptance measure).

gap = (first step at which the domain's test accuracy reaches half of its final value)
    - (step by which half of the domain's eventually-memorized training samples are memorized,
       by the paper's rule, i.e. t* from `memorization/samples.parquet`).
Positive: test accuracy rises only after most memorization happened.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def half_final_step(accuracy: pd.Series) -> int | None:
    """First step whose accuracy reaches half the final accuracy; `accuracy` is indexed by step."""
    accuracy = accuracy.sort_index()
    final = accuracy.iloc[-1]
    if not final > 0:
        return None
    reached = accuracy[accuracy >= final / 2]
    return int(reached.index[0])


def half_memorized_step(t_star: pd.Series) -> int | None:
    """Step by which half of the memorized samples (non-null t*) have their t*."""
    steps = np.sort(t_star.dropna().astype("int64").to_numpy())
    if steps.size == 0:
        return None
    return int(steps[int(np.ceil(steps.size / 2)) - 1])


def domain_gaps(test_accuracy: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """test_accuracy: domain, step, accuracy. samples: the memorization table."""
    rows = []
    memorized = samples[samples["memorized"]]
    for domain, part in test_accuracy.groupby("domain"):
        series = part.set_index("step")["accuracy"]
        test_half = half_final_step(series)
        memo_half = half_memorized_step(memorized.loc[memorized["domain"] == domain, "t_star"])
        gap = None if test_half is None or memo_half is None else test_half - memo_half
        rows.append({
            "domain": domain, "final_test_accuracy": float(series.sort_index().iloc[-1]),
            "test_half_step": test_half, "memorized_half_step": memo_half, "gap": gap,
            "n_memorized": int((memorized["domain"] == domain).sum()),
        })
    return pd.DataFrame(rows)
