"""Does the lab grok? One verdict per domain, from checkpoint accuracies and memorization steps.

Accuracy is chance-corrected: gain g = (acc - chance) / (1 - chance), so 0 is guessing and 1 is
perfect. Chance is 0 for exact match (generate_until) and, for multiple choice, the mean of
1 / len(choices) over the domain's test items (4 choices in the lab, so 0.25; 4 is the default
when the rows carry no choices). Per domain, over the saved checkpoints:
- t_fit: the first checkpoint whose training (probe) accuracy is >= `fit_accuracy` (0.9);
- g_T: the test gain at the last checkpoint; t_gen50: the first checkpoint whose test gain
  reaches g_T / 2 (none when g_T <= 0);
- t_mem50: the step by which half of the domain's memorized samples have their t*;
- the domain groks when it fits and (a) g_T >= 0.5, (b) the gain at t_fit is <= g_T / 2 (most of
  the generalization comes after the training set is fit) and (c) t_gen50 - t_mem50 > 0.
Domains are staggered when the t_gen50 of the grokking domains (at least two) spread over at
least a quarter of the run (the last checkpoint's step).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from grokpath.errors import GrokpathError
from grokpath.tableio import read_jsonl

FIT_ACCURACY = 0.9
MIN_FINAL_GAIN = 0.5
STAGGER_FRACTION = 0.25
DEFAULT_CHOICES = 4
# lm-eval's accuracy metric of our tasks: acc (multiple choice), exact_match (generate_until)
ACCURACY_METRICS = ("acc", "exact_match")
# float round-off must not decide "reaches half the final gain" when a checkpoint sits exactly there
TOLERANCE = 1e-9

VERDICT_COLUMNS = [
    "domain", "chance", "t_fit", "gain_at_fit", "final_gain", "t_mem50", "t_gen50", "gap",
    "n_memorized", "fits", "generalizes", "late", "after_memorization", "groks", "reason",
]  # fmt: skip
TABLE_COLUMNS = VERDICT_COLUMNS + ["last_step", "staggered", "t_gen50_spread"]
STEP_COLUMNS = ["t_fit", "t_mem50", "t_gen50", "gap"]
# what is read of train/probe.parquet; its `checkpoint` flag is optional (older probes lack it)
PROBE_COLUMNS = ["step", "domain", "split", "accuracy"]
SAMPLE_COLUMNS = ["domain", "t_star", "memorized"]


def gain(acc, chance: float):
    """Chance-corrected accuracy: 0 at chance, 1 at perfect."""
    return (acc - chance) / (1 - chance)


def half_memorized_step(t_star: pd.Series) -> int | None:
    """Step by which half of the memorized samples (non-null t*) have their t*."""
    steps = np.sort(t_star.dropna().astype("int64").to_numpy())
    if steps.size == 0:
        return None
    return int(steps[int(np.ceil(steps.size / 2)) - 1])


def _first_step(series: pd.Series, level: float) -> int | None:
    reached = series[series >= level - TOLERANCE]
    return int(reached.index[0]) if len(reached) else None


def fit_step(train_accuracy: pd.Series, fit_accuracy: float = FIT_ACCURACY) -> int | None:
    """t_fit: the first step (index) whose training accuracy is >= fit_accuracy (None: never)."""
    return _first_step(train_accuracy.sort_index(), fit_accuracy)


def _domain_verdict(domain, train: pd.Series, test: pd.Series, t_star: pd.Series,
                    chance: float, fit_accuracy: float) -> dict:  # fmt: skip
    """train, test: accuracy indexed by checkpoint step (sorted)."""
    test_gain = gain(test, chance)
    final_gain = float(test_gain.iloc[-1])
    t_fit = fit_step(train, fit_accuracy)
    gain_at_fit = float(test_gain[t_fit]) if t_fit is not None else np.nan
    t_gen50 = _first_step(test_gain, final_gain / 2) if final_gain > 0 else None
    t_mem50 = half_memorized_step(t_star)
    gap = None if t_gen50 is None or t_mem50 is None else t_gen50 - t_mem50
    fits = t_fit is not None
    generalizes = final_gain >= MIN_FINAL_GAIN
    late = fits and gain_at_fit <= final_gain / 2 + TOLERANCE
    after_memorization = gap is not None and gap > 0
    reasons = []
    if not fits:
        reasons.append("never fits")
    if not generalizes:
        reasons.append(f"final gain {final_gain:.2f} < {MIN_FINAL_GAIN}")
    if fits and not late:
        reasons.append(f"gain at fit {gain_at_fit:.2f} > half the final {final_gain:.2f}")
    if t_mem50 is None:
        reasons.append("no memorized samples")
    elif not after_memorization and t_gen50 is not None:
        reasons.append("generalizes before memorization")
    return {
        "domain": domain, "chance": chance, "t_fit": t_fit, "gain_at_fit": gain_at_fit,
        "final_gain": final_gain, "t_mem50": t_mem50, "t_gen50": t_gen50, "gap": gap,
        "n_memorized": int(t_star.notna().sum()), "fits": fits, "generalizes": generalizes,
        "late": late, "after_memorization": after_memorization,
        "groks": fits and generalizes and late and after_memorization, "reason": "; ".join(reasons),
    }  # fmt: skip


def grokking_verdict(train_acc: pd.DataFrame, test_acc: pd.DataFrame, t_star: pd.DataFrame,
                     chance: Mapping[str, float],
                     fit_accuracy: float = FIT_ACCURACY) -> pd.DataFrame:  # fmt: skip
    """VERDICT_COLUMNS, one row per domain of `test_acc`.

    train_acc, test_acc: domain, step, accuracy. The checkpoints are test_acc's steps: training
    rows at other steps (the dense probe) are ignored. t_star: domain, t_star of the memorized
    samples (null t* counts as not memorized). chance: per domain.
    """
    rows = []
    for domain, test in test_acc.groupby("domain", sort=True):
        test = test.set_index("step")["accuracy"].sort_index()
        train = train_acc[train_acc["domain"] == domain].set_index("step")["accuracy"]
        train = train[train.index.isin(test.index)].sort_index()
        if domain not in chance:
            raise GrokpathError(f"domain {domain!r}: no chance level (not in the corpus manifest)")
        memorized = t_star.loc[t_star["domain"] == domain, "t_star"]
        rows.append(_domain_verdict(domain, train, test, memorized, chance[domain], fit_accuracy))
    table = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    return table.astype({c: "Int64" for c in STEP_COLUMNS})


def staggered(verdicts: pd.DataFrame, last_step: int) -> tuple[bool, float | None]:
    """(staggered, t_gen50 spread over the grokking domains; None with fewer than two)."""
    steps = verdicts.loc[verdicts["groks"], "t_gen50"].dropna()
    if len(steps) < 2:
        return False, None
    spread = float(steps.max() - steps.min())
    return spread >= STAGGER_FRACTION * last_step, spread


# ---------------------------------------------------------------- from the workflow's tables


def chance_levels(manifest: Mapping, corpus_dir: str | Path) -> dict[str, float]:
    """Per domain: 0 for exact match, the mean 1 / len(choices) of the test items for multiple
    choice (an item without choices counts as DEFAULT_CHOICES)."""
    levels = {}
    for domain, info in manifest["domains"].items():
        if info["output_type"] != "multiple_choice":
            levels[domain] = 0.0
            continue
        rows = read_jsonl(Path(corpus_dir) / domain / "test.jsonl")
        sizes = [len(r.get("choices") or []) or DEFAULT_CHOICES for r in rows] or [DEFAULT_CHOICES]
        levels[domain] = float(np.mean([1 / n for n in sizes]))
    return levels


def checkpoint_test_accuracy(aggregate: pd.DataFrame) -> pd.DataFrame:
    """domain, step, accuracy from lm-eval's aggregate: per domain the first of ACCURACY_METRICS
    present, under its first filter by name (our tasks have one), averaged over the domain's tasks."""
    parts = []
    for domain, rows in aggregate.groupby("domain", sort=True):
        metric = next((m for m in ACCURACY_METRICS if m in set(rows["metric"])), None)
        if metric is None:
            raise GrokpathError(f"eval/aggregate.parquet: domain {domain!r} has none of the "
                                f"metrics {', '.join(ACCURACY_METRICS)}")  # fmt: skip
        rows = rows[rows["metric"] == metric]
        rows = rows[rows["filter"] == sorted(rows["filter"].unique())[0]]
        parts.append(rows.groupby("step", as_index=False)["value"].mean().assign(domain=domain))
    table = pd.concat(parts, ignore_index=True).rename(columns={"value": "accuracy"})
    return table.astype({"step": "int64"})[["domain", "step", "accuracy"]]


def training_accuracy(probe: pd.DataFrame) -> pd.DataFrame:
    """domain, step, accuracy of the probe's training split (a table without `checkpoint` flags
    counts every row as a checkpoint)."""
    rows = probe[probe["split"] == "train"]
    if "checkpoint" in rows:
        rows = rows[rows["checkpoint"].astype(bool)]
    return rows[["domain", "step", "accuracy"]].astype({"step": "int64"})


def grokking_table(aggregate: pd.DataFrame, probe: pd.DataFrame, samples: pd.DataFrame,
                   chance: Mapping[str, float]) -> pd.DataFrame:  # fmt: skip
    """TABLE_COLUMNS: the verdicts with the run-level result repeated on every row."""
    test = checkpoint_test_accuracy(aggregate)
    memorized = samples.loc[samples["memorized"].astype(bool), ["domain", "t_star"]]
    verdicts = grokking_verdict(training_accuracy(probe), test, memorized, chance)
    last_step = int(test["step"].max())
    is_staggered, spread = staggered(verdicts, last_step)
    return verdicts.assign(
        last_step=last_step, staggered=is_staggered,
        t_gen50_spread=np.nan if spread is None else spread,
    )[TABLE_COLUMNS]  # fmt: skip
