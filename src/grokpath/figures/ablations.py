"""Robustness of the distance trend: paper Fig 9 (routing threshold), Figs 10-11 (eps, delta).

Each panel is one setting and shows the global (domain "all") pathway edit distance of every
memorized group over steps, plus the pooled "memorized" set in black. The title counts the
groups whose distance falls after their t* (negative post-t* trend), the paper's pattern.
"""

from __future__ import annotations

import pandas as pd

from grokpath.analysis.trends import (
    EDIT_DISTANCE,
    falling_after_memorization,
    memorized_group_labels,
    select_rows,
)
from grokpath.figures.common import ALL, note, panel_grid, save_figure, sequential_colours


def setting_panels(
    tables: dict[str, pd.DataFrame], titles: dict[str, str], suptitle: str, png: str, pdf: str
) -> None:
    settings = list(tables)
    fig, axes = panel_grid(len(settings), max_columns=4, size=(3.2, 2.7))
    for ax, setting in zip(axes, settings):
        table = tables[setting]
        labels = memorized_group_labels(table)
        colours = sequential_colours(labels)
        for group in labels:
            series = select_rows(table, EDIT_DISTANCE, ALL, group)
            ax.plot(series["step"], series["value"], color=colours[group], lw=1, marker="o", ms=2,
                    label=f"t*={group}")  # fmt: skip
        pooled = select_rows(table, EDIT_DISTANCE, ALL, "memorized")
        if not pooled.empty:
            ax.plot(pooled["step"], pooled["value"], color="black", lw=2, label="all memorized")
        if not labels and pooled.empty:
            note(ax, "no memorized group has two samples")
        counts = falling_after_memorization(table)
        ax.set_title(
            f"{titles[setting]}\n{counts.falling}/{counts.with_trend} groups fall after t*"
        )
        ax.set_xlabel("checkpoint step")
        ax.set_ylabel("edit distance (global)")
    handles, names = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, names, fontsize=6)
    fig.suptitle(suptitle)
    save_figure(fig, png, pdf)


def fig9_threshold_ablation(
    tables_by_threshold: dict[str, pd.DataFrame], png: str, pdf: str
) -> None:
    titles = {t: f"routing threshold {t}" for t in tables_by_threshold}
    setting_panels(tables_by_threshold, titles, "Routing-threshold ablation: pathway edit distance",
                   png, pdf)  # fmt: skip


def _memorized_title(prefix: str, fractions: pd.DataFrame) -> str:
    overall = fractions[fractions["domain"] == ALL]
    if overall.empty:
        return prefix
    return f"{prefix} ({100 * float(overall['memorized_fraction'].iloc[0]):.0f}% memorized)"


def memorization_ablation_figure(
    tables: dict[str, pd.DataFrame], fractions: dict[str, pd.DataFrame], parameter: str,
    suptitle: str, png: str, pdf: str,
) -> None:  # fmt: skip
    titles = {value: _memorized_title(f"{parameter} {value}", fractions[value]) for value in tables}
    setting_panels(tables, titles, suptitle, png, pdf)


def fig10_eps_ablation(tables, fractions, png, pdf) -> None:
    memorization_ablation_figure(
        tables, fractions, "eps x", "eps ablation (factor on each domain's eps): edit distance",
        png, pdf,
    )  # fmt: skip


def fig11_delta_ablation(tables, fractions, png, pdf) -> None:
    memorization_ablation_figure(
        tables, fractions, "delta", "delta ablation: edit distance of the redrawn groups", png, pdf
    )
