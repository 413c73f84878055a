"""Trends of the measured tables over checkpoints, shared by the figures and the summary.

The row selections, memorized-group choices and per-group trends that a paper figure draws and
that summary.md tests as a claim: computed here once, so that `grokpath.figures` only draws and
`grokpath.analysis.summary` reads the same numbers without importing any figure module.

- from the pathway tables: `select_rows`, `resolve_groups` (the t* groups Figs 4-6 show),
  `layer_order` and `layer_change_after` (Fig 5), `cross_domain_label` (Fig 12),
  `entropy_distance_points` (Fig 13);
- from the ablation tables: `memorized_group_labels`, `falling_after_memorization` (Figs 9-11);
- from the generalization table: `cumulative_generalized_fraction` (Fig 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from grokpath.analysis.stats import post_memorization_trend

ALL = "all"  # the tables' domain, group and layer value for "pooled over all of them"
EDIT_DISTANCE = "edit_distance_char"
CONSISTENCY = "consistency_norm_mean_cos"
TRAINING_LOSS = "training_loss"


def select_rows(table: pd.DataFrame, metric: str, domain: str, group: str, layer: str = ALL):
    rows = table[
        (table["metric"] == metric) & (table["domain"] == domain)
        & (table["group"] == group) & (table["layer"] == layer)
    ]  # fmt: skip
    return rows.sort_values("step")


def resolve_groups(setting, groups: pd.DataFrame, count: int) -> list[int]:
    """The t* groups a figure shows: the config's step or list, or `auto` = the `count` largest.

    Size is summed over domains, because the five panels show the same groups; ties go to the
    earlier step, and the chosen groups are returned in step order.
    """
    if isinstance(setting, (int, str)) and setting != "auto":
        return [int(setting)]
    if setting != "auto":
        return sorted(int(s) for s in setting)
    if groups.empty:
        return []
    sizes = groups.groupby("t_star")["n_samples"].sum().reset_index()
    largest = sizes.sort_values(["n_samples", "t_star"], ascending=[False, True]).head(count)
    return sorted(int(s) for s in largest["t_star"])


def layer_order(table: pd.DataFrame) -> list[str]:
    return sorted((l for l in table["layer"].unique() if l != ALL), key=int)


def layer_change_after(steps, values, t_star: int) -> float:
    """Value at the last checkpoint minus the value at t* (NaN if t* is not a checkpoint)."""
    steps, values = np.asarray(steps), np.asarray(values, float)
    at = np.flatnonzero(steps == t_star)
    if len(at) == 0 or len(values) == 0:
        return float("nan")
    return float(values[-1] - values[at[0]])


def cross_domain_label(domain_a: str, domain_b: str) -> str:
    """Cross-domain rows name the pair in sorted order, e.g. "code|math"."""
    return "|".join(sorted((domain_a, domain_b)))


def entropy_distance_points(edit_distance: pd.DataFrame, routing: pd.DataFrame) -> pd.DataFrame:
    """Paired (edit distance, routing entropy) per step, domain, memorized group and layer.

    Per-layer rows of single domains: each point is one set of samples at one checkpoint in
    one layer (the tables hold set means, not per-sample distances).
    """
    keys = ["step", "domain", "group", "layer"]

    def pick(table, metric, name):
        rows = table[
            (table["metric"] == metric) & (table["layer"] != ALL) & (table["domain"] != ALL)
            & ~table["domain"].str.contains("|", regex=False)
            & ~table["group"].isin([ALL, "memorized"])
        ]  # fmt: skip
        return rows[keys + ["value"]].rename(columns={"value": name})

    return pick(edit_distance, EDIT_DISTANCE, "edit_distance").merge(
        pick(routing, "routing_entropy", "routing_entropy"), on=keys
    )


@dataclass(frozen=True)
class FallingGroups:
    falling: int
    with_trend: int  # groups with at least three checkpoints from t* on


def memorized_group_labels(table: pd.DataFrame) -> list[str]:
    groups = {g for g in table["group"].unique() if g not in (ALL, "memorized")}
    return sorted(groups, key=int)


def falling_after_memorization(table: pd.DataFrame, domain: str = ALL) -> FallingGroups:
    """How many groups' edit distance trends down from their t* on."""
    falling = with_trend = 0
    for group in memorized_group_labels(table):
        series = select_rows(table, EDIT_DISTANCE, domain, group)
        trend = post_memorization_trend(series["step"], series["value"], int(group))
        if trend is None:
            continue
        with_trend += 1
        falling += trend.slope < 0
    return FallingGroups(falling, with_trend)


def cumulative_generalized_fraction(generalization: pd.DataFrame, steps) -> pd.DataFrame:
    """domain, step, fraction: share of a domain's test items generalized at or before step."""
    rows = []
    for domain, part in generalization.groupby("domain", sort=True):
        gen = part["gen_step"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        for step in steps:
            rows.append(
                {"domain": domain, "step": int(step), "fraction": float(np.mean(gen <= step))}
            )
    return pd.DataFrame(rows, columns=["domain", "step", "fraction"])
