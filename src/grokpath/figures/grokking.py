"""Memorization against generalization: paper Fig 1 (per domain) and Fig 2 (matched group pairs)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokpath.analysis.trends import cumulative_generalized_fraction
from grokpath.evaluation.generalization import drop_contaminated
from grokpath.figures.common import (
    colour_cycle,
    note,
    panel_grid,
    require_rows,
    save_figure,
    step_label,
)

MEMORIZED_COLOUR = "#4c72b0"
GENERALIZED_COLOUR = "#dd8452"
PHASE_COLOUR = "0.85"


def fig1_memorization_generalization(
    groups: pd.DataFrame, generalization: pd.DataFrame, contamination: pd.DataFrame, steps,
    png: str, pdf: str,
) -> None:  # fmt: skip
    """Per domain: bars = samples memorized at each step, line = cumulative generalized fraction."""
    require_rows(generalization, "fig1: eval/generalization.parquet")
    steps = sorted(int(s) for s in steps)
    clean = drop_contaminated(generalization, contamination)
    generalized = cumulative_generalized_fraction(clean, steps)
    domains = sorted(set(generalized["domain"]) | set(groups["domain"]))
    fig, axes = panel_grid(len(domains), max_columns=4, size=(3.4, 2.8))
    positions = np.arange(len(steps))
    for ax, domain in zip(axes, domains):
        counts = groups[groups["domain"] == domain].set_index("t_star")["n_samples"]
        bars = ax.bar(positions, [int(counts.get(s, 0)) for s in steps],
                      color=MEMORIZED_COLOUR, alpha=0.8)  # fmt: skip
        ax.set_ylabel("memorized samples")
        twin = ax.twinx()
        line = generalized[generalized["domain"] == domain]
        (curve,) = twin.plot(positions, line["fraction"], color=GENERALIZED_COLOUR, marker="o",
                             ms=3)  # fmt: skip
        twin.set_ylim(0, 1.02)
        twin.set_ylabel("generalized fraction")
        twin.spines["right"].set_visible(True)
        ax.set_xticks(positions, [step_label(s) for s in steps], rotation=60, fontsize=7)
        ax.set_xlabel("checkpoint step")
        ax.set_title(domain)
    fig.legend([bars, curve], ["samples memorized at step", "test items generalized (cumulative)"],
               loc="outside upper center", ncol=2)  # fmt: skip
    save_figure(fig, png, pdf)


def matched_pairs_for(matches: pd.DataFrame, domain: str, max_pairs: int) -> pd.DataFrame:
    """The domain's matched (train group, test group) pairs, earliest memorized first."""
    pairs = matches[matches["domain"] == domain].sort_values("train_group")
    return pairs.head(max_pairs).reset_index(drop=True)


def _pair_legend(colours: dict) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [
        Line2D([], [], color=colours["loss"], marker="o", ms=3, label="training loss of the group memorized at t*"),
        Line2D([], [], color=colours["accuracy"], marker="s", ms=3,
               label="accuracy of the matched test group (right axis)"),
        Patch(color=PHASE_COLOUR, alpha=0.6, label="grokking phase: memorized, not yet generalized"),
    ]  # fmt: skip


def fig2_matched_pairs(
    loss_baselines: pd.DataFrame, matches: pd.DataFrame, group_accuracy: pd.DataFrame,
    domain: str, max_pairs: int, png: str, pdf: str,
) -> None:  # fmt: skip
    """Per matched pair: the training group's loss and the matched test group's accuracy."""
    pairs = matched_pairs_for(matches, domain, max_pairs)
    fig, axes = panel_grid(max(len(pairs), 1), max_columns=4, size=(3.4, 2.8))
    if pairs.empty:
        note(axes[0], f"no matched group pairs in {domain}")
        axes[0].set_title(f"{domain}: matched pairs")
    colours = colour_cycle(["loss", "accuracy"])
    for ax, pair in zip(axes, pairs.itertuples(index=False)):
        train_group, test_group = int(pair.train_group), int(pair.test_group)
        loss = loss_baselines[
            (loss_baselines["metric"] == "training_loss") & (loss_baselines["domain"] == domain)
            & (loss_baselines["group"] == str(train_group)) & (loss_baselines["layer"] == "all")
        ].sort_values("step")  # fmt: skip
        accuracy = group_accuracy[
            (group_accuracy["domain"] == domain) & (group_accuracy["test_group"] == test_group)
        ].sort_values("step")
        ax.plot(loss["step"], loss["value"], color=colours["loss"], marker="o", ms=3)
        ax.set_ylabel("training loss")
        ax.set_xlabel("checkpoint step")
        twin = ax.twinx()
        twin.plot(accuracy["step"], accuracy["accuracy"], color=colours["accuracy"], marker="s",
                  ms=3)  # fmt: skip
        twin.set_ylim(-0.02, 1.02)
        twin.set_ylabel("matched test accuracy")
        twin.spines["right"].set_visible(True)
        if test_group > train_group:
            ax.axvspan(train_group, test_group, color=PHASE_COLOUR, alpha=0.6, lw=0)
        ax.set_title(
            f"{step_label(train_group)} -> {step_label(test_group)} "
            f"(delay {step_label(test_group - train_group)})"
        )
    fig.legend(handles=_pair_legend(colours), loc="outside lower center", ncol=3)
    fig.suptitle(f"{domain}: training-group loss vs matched test-group accuracy")
    save_figure(fig, png, pdf)
