"""Metrics against test accuracy: paper Table 1 (rendered + CSV) and Fig 7 (scatter with fits).

Both draw the configured checkpoint window (the `primary` rows of the correlation table); the CSV
holds every row, both windows. Fig 7 plots within-domain z-scores (grokpath.analysis.stats module doc): the
pooled fit then measures how metric and accuracy move together inside domains, not how the
domains' levels differ.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokpath.analysis.stats import (
    FIG7_PREDICTORS,
    PAPER_FIG7_R2,
    PAPER_WINDOW,
    POOLED,
    PREDICTORS,
    pooled_z_points,
    primary_rows,
)
from grokpath.figures.common import colour_cycle, note, panel_grid, require_rows, save_figure
from grokpath.tableio import atomic_path

PREDICTOR_LABELS = {
    "edit_distance": "edit distance",
    "consistency": "consistency",
    "training_loss": "training loss",
    "training_loss_ma": "training loss (moving avg.)",
    "validation_loss": "validation loss",
    "routing_entropy": "routing entropy",
}
SIGNIFICANCE = 0.05
WINDOW_TITLES = {
    "paper": f"the last {PAPER_WINDOW} checkpoints (the paper's window)",
    "rise": "the checkpoints from the accuracy rise on",
}


def write_table1_csv(correlations: pd.DataFrame, csv: str) -> None:
    with atomic_path(csv) as tmp:
        correlations.to_csv(tmp, index=False, float_format="%.6g")


def _cell(value: float, p: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:+.2f}{'*' if np.isfinite(p) and p < SIGNIFICANCE else ''}"


def table1_cells(correlations: pd.DataFrame) -> tuple[list[str], list[str], list[list[str]]]:
    """Row labels (predictors), column labels (domain x Pearson/Spearman) and cell texts."""
    domains = [d for d in correlations["domain"].unique() if d != POOLED] + [POOLED]
    columns = [f"{d}\n{kind}" for d in domains for kind in ("Pearson", "Spearman")]
    rows, cells = [], []
    for predictor in (p.name for p in PREDICTORS):
        rows.append(PREDICTOR_LABELS[predictor])
        line = []
        for domain in domains:
            hit = correlations[
                (correlations["domain"] == domain) & (correlations["predictor"] == predictor)
            ]
            if hit.empty:
                line += ["n/a", "n/a"]
                continue
            row = hit.iloc[0]
            line += [_cell(row["pearson_r"], row["pearson_p"]),
                     _cell(row["spearman_rho"], row["spearman_p"])]  # fmt: skip
        cells.append(line)
    return rows, columns, cells


def window_title(correlations: pd.DataFrame) -> str:
    """How the title names the configured window (any rows of the correlation table)."""
    return WINDOW_TITLES[str(primary_rows(correlations)["window"].iloc[0])]


def window_note(correlations: pd.DataFrame) -> str:
    """Per domain the checkpoints used and its flags; the domains the pooled rows leave out."""
    rows = primary_rows(correlations)
    per_domain = rows[rows["domain"] != POOLED].drop_duplicates("domain")
    parts = [
        f"{r.domain}: {r.n_checkpoints} checkpoints ({r.steps})"
        + ("" if r.rise_found else ", no accuracy rise")
        + (", accuracy rises after the window starts" if r.late_rise else "")
        for r in per_domain.itertuples(index=False)
    ]
    pooled = rows[(rows["domain"] == POOLED) & (rows["left_out"] != "")]
    left_out = sorted({part for text in pooled["left_out"] for part in text.split("; ")})
    note_text = "Window per domain - " + "; ".join(parts)
    return note_text + (f". Left out of the pool: {'; '.join(left_out)}" if left_out else "")


def table1_correlations(correlations: pd.DataFrame, csv: str, png: str, pdf: str) -> None:
    """Table 1 as CSV (every row and column of the stats table) and rendered (configured window)."""
    require_rows(correlations, "table1: correlations")
    write_table1_csv(correlations, csv)
    rows, columns, cells = table1_cells(primary_rows(correlations))
    fig, axes = panel_grid(1, size=(1.05 * len(columns) + 2.2, 0.3 * len(rows) + 1.0))
    ax = axes[0]
    ax.axis("off")
    table = ax.table(cellText=cells, rowLabels=rows, colLabels=columns, loc="center",
                     cellLoc="center")  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1, 1.6)
    ax.set_title(f"Correlation with test accuracy over {window_title(correlations)} "
                 f"(* p < {SIGNIFICANCE}; pooled: within-domain z-scores)", fontsize=9)  # fmt: skip
    fig.text(0.01, 0.01, window_note(correlations), fontsize=6, wrap=True)
    save_figure(fig, png, pdf)


def fig7_metric_vs_accuracy(
    points: pd.DataFrame, fits: pd.DataFrame, correlations: pd.DataFrame, png: str, pdf: str
) -> None:
    """Five panels: within-domain z of accuracy against z of each predictor over the configured
    window, one colour per domain, with the pooled OLS fit."""
    colours = colour_cycle(sorted(points["domain"].unique()))
    pooled = primary_rows(correlations)
    pooled = pooled[pooled["domain"] == POOLED].set_index("predictor")
    fig, axes = panel_grid(len(FIG7_PREDICTORS), max_columns=5, size=(3.0, 2.8))
    for ax, predictor in zip(axes, FIG7_PREDICTORS):
        part, left_out = pooled_z_points(points[points["predictor"] == predictor])
        ax.set_xlabel(f"{PREDICTOR_LABELS[predictor]} (z)")
        ax.set_ylabel("test accuracy (z)")
        if part.empty:
            note(ax, "no domain to pool: " + "; ".join(left_out))
            continue
        for domain, rows in part.groupby("domain"):
            ax.scatter(rows["x"], rows["accuracy"], s=14, color=colours[domain], label=domain)
        _draw_band(ax, fits[fits["predictor"] == predictor])
        r2 = float(pooled["r2"].get(predictor, np.nan))
        ax.set_title(f"R² = {r2:.2f} (paper {PAPER_FIG7_R2[predictor]:.2f}, raw)", fontsize=9)
        if left_out:
            ax.text(0.02, 0.02, "left out: " + "; ".join(left_out), transform=ax.transAxes,
                    fontsize=6, color="0.4", wrap=True)  # fmt: skip
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="best")
    fig.suptitle(f"Test accuracy against each metric, within-domain z-scores over "
                 f"{window_title(correlations)} (OLS fit, 95% CI of the mean)")  # fmt: skip
    save_figure(fig, png, pdf)


def _draw_band(ax, band: pd.DataFrame) -> None:
    if band.empty:
        return
    ax.plot(band["x"], band["fit"], color="black", lw=1)
    ax.fill_between(band["x"], band["ci_low"], band["ci_high"], color="0.6", alpha=0.3, lw=0)
