"""eps and delta ablations (paper App., Figs 10-11): memorization groups redrawn, distances redone.

The paper varies eps over 1.5-2.0 around its domain-specific eps of 2.0, and delta over
0.03-0.05. Our eps is chosen per domain (often `auto`), so an ablation value is a factor on
each domain's eps of the main run (memorization/eps.json): factor 0.75-1.0 is the paper's
1.5-2.0 at eps 2.0. Memorization is recomputed from the cached loss tables with
`grokpath.loss.memorization.memorization_table`; the pathway edit distances of the new groups are
recomputed from the cached pathway tables, so neither loss nor extraction runs again.

Only what Figs 10-11 plot is computed: the char-level distance over whole pathways (layer
"all") for every (domain, group) set, with the same pair sampling as
`grokpath.routing.metrics.edit_distance_table` (so the factor-1.0 rows equal the main table's).
Extraction kept the main run's sample selection: at paper scale, where it is capped per domain,
an ablation's groups are the extracted samples that the new rule memorizes.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from grokpath.errors import GrokpathError
from grokpath.loss.memorization import memorization_table
from grokpath.routing.metrics import (
    DEFAULT_MAX_PAIRS,
    METRIC_TABLE_COLUMNS,
    EncodedPathways,
    _rng,
    _row,
    mean_pairwise_distance,
    memorization_groups,
    sample_sets,
)
from grokpath.routing.pathways import PAPER_THRESHOLD, PathwayTable, id_pathways

EDIT_DISTANCE = "edit_distance_char"


def scaled_eps(eps_report: dict, factor: float) -> dict[str, float]:
    """Each domain's eps of the main run (eps.json entries) times the ablation factor."""
    if factor <= 0:
        raise GrokpathError(f"eps ablation factor {factor}: must be > 0")
    try:
        return {
            domain: round(float(entry["eps"]) * factor, 10) for domain, entry in eps_report.items()
        }
    except (KeyError, TypeError, ValueError):
        raise GrokpathError(
            "memorization/eps.json: expected {domain: {eps: number, ...}}"
        ) from None


def ablation_memorization(
    losses: pd.DataFrame, eps_report: dict, eps_factor: float, delta: float
) -> pd.DataFrame:
    """The memorization samples table under eps x factor and this delta (eps fixed per domain)."""
    eps = scaled_eps(eps_report, eps_factor)
    # eps is given per domain, so the auto-eps scan (eps_step, target) never runs
    samples, _, _ = memorization_table(losses, eps, delta, eps_step=1.0, target=1.0)
    return samples.assign(eps_factor=float(eps_factor))


def group_edit_distance_table(
    tables: Sequence[PathwayTable],
    memorization: pd.DataFrame,
    threshold: float = PAPER_THRESHOLD,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
    workers: int = 1,
) -> pd.DataFrame:
    """edit_distance_char rows (layer "all") for every (step, domain, group) set of >= 2 samples."""
    rows = []
    for table in tables:
        strings = EncodedPathways.of(id_pathways(table.weights, threshold), id_level=False).whole
        groups = memorization_groups(table, memorization)
        for domain, group, members in sample_sets(table, groups):
            if len(members) < 2:
                continue
            result = mean_pairwise_distance(
                strings[members].tolist(),
                max_pairs=max_pairs,
                workers=workers,
                rng=_rng(seed, domain, group),
            )
            rows.append(
                _row(table.step, domain, group, "all", EDIT_DISTANCE, result.mean, result.se,
                     result.n_pairs)  # fmt: skip
            )
    return pd.DataFrame(rows, columns=METRIC_TABLE_COLUMNS)


def memorized_fractions(memorization: pd.DataFrame) -> pd.DataFrame:
    """domain (and "all"), memorized_fraction, n_memorized of a samples table."""
    memorized = memorization["memorized"].fillna(False).astype(bool)
    per_domain = (
        memorization.assign(memorized=memorized)
        .groupby("domain")["memorized"]
        .agg(memorized_fraction="mean", n_memorized="sum")
        .reset_index()
    )
    overall = pd.DataFrame(
        {
            "domain": ["all"],
            "memorized_fraction": [memorized.mean()],
            "n_memorized": [memorized.sum()],
        }
    )
    return pd.concat([per_domain, overall], ignore_index=True).astype({"n_memorized": "int64"})
