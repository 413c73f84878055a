"""Metrics against test accuracy: paper Table 1 (rendered + CSV) and Fig 7 (scatter with fits)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokpath.figures.common import colour_cycle, note, panel_grid, require_rows, save_figure
from grokpath.stats import FIG7_PREDICTORS, PAPER_FIG7_R2, POOLED, PREDICTORS
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


def window_note(correlations: pd.DataFrame) -> str:
    per_domain = correlations[correlations["domain"] != POOLED].drop_duplicates("domain")
    parts = [
        f"{r.domain}: {r.n_checkpoints} checkpoints ({r.steps})"
        + ("" if r.rise_found else ", no accuracy rise: all checkpoints")
        for r in per_domain.itertuples(index=False)
    ]
    return "Window per domain - " + "; ".join(parts)


def table1_correlations(correlations: pd.DataFrame, csv: str, png: str, pdf: str) -> None:
    """Table 1 as CSV (every column of the stats table) and as a rendered table."""
    require_rows(correlations, "table1: correlations")
    write_table1_csv(correlations, csv)
    rows, columns, cells = table1_cells(correlations)
    fig, axes = panel_grid(1, size=(1.05 * len(columns) + 2.2, 0.3 * len(rows) + 1.0))
    ax = axes[0]
    ax.axis("off")
    table = ax.table(cellText=cells, rowLabels=rows, colLabels=columns, loc="center",
                     cellLoc="center")  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1, 1.6)
    ax.set_title("Correlation with test accuracy over the post-rise checkpoints "
                 f"(* p < {SIGNIFICANCE})", fontsize=9)  # fmt: skip
    fig.text(0.01, 0.01, window_note(correlations), fontsize=6, wrap=True)
    save_figure(fig, png, pdf)


def fig7_metric_vs_accuracy(
    points: pd.DataFrame, fits: pd.DataFrame, correlations: pd.DataFrame, png: str, pdf: str
) -> None:
    """Five panels: accuracy against each predictor over the pooled window, with the OLS fit."""
    window = points[points["in_window"] & points["rise_found"]]
    colours = colour_cycle(sorted(points["domain"].unique()))
    fig, axes = panel_grid(len(FIG7_PREDICTORS), max_columns=5, size=(3.0, 2.8))
    for ax, predictor in zip(axes, FIG7_PREDICTORS):
        part = window[window["predictor"] == predictor]
        ax.set_xlabel(PREDICTOR_LABELS[predictor])
        ax.set_ylabel("test accuracy")
        if part.empty:
            note(ax, "no checkpoints in a post-rise window")
            continue
        for domain, rows in part.groupby("domain"):
            ax.scatter(rows["x"], rows["accuracy"], s=14, color=colours[domain], label=domain)
        band = fits[fits["predictor"] == predictor]
        if not band.empty:
            ax.plot(band["x"], band["fit"], color="black", lw=1)
            ax.fill_between(band["x"], band["ci_low"], band["ci_high"], color="0.6", alpha=0.3,
                            lw=0)  # fmt: skip
        row = correlations[
            (correlations["domain"] == POOLED) & (correlations["predictor"] == predictor)
        ]
        r2 = float(row["r2"].iloc[0]) if len(row) else float("nan")
        ax.set_title(f"R² = {r2:.2f} (paper {PAPER_FIG7_R2[predictor]:.2f})")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="best")
    fig.suptitle("Test accuracy against each metric, post-rise checkpoints of every domain "
                 "(OLS fit, 95% CI of the mean)")  # fmt: skip
    save_figure(fig, png, pdf)
