"""Paper Fig 7 over every seed of a run: one panel per predictor, each seed's within-domain
z-scores (grokpath.analysis.seeds.fig7_points_across_seeds), one colour per domain, one marker per seed,
with the OLS line over all seeds. Titles give R^2 over all seeds, its range over the seeds' own
pooled fits, and the paper's (raw-pool) R^2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from grokpath.analysis.seeds import fig7_points_across_seeds, pooled_r2_across_seeds
from grokpath.analysis.stats import FIG7_PREDICTORS, PAPER_FIG7_R2, POOLED, ols_fit, primary_rows
from grokpath.figures.common import colour_cycle, note, panel_grid, save_figure
from grokpath.figures.correlation import PREDICTOR_LABELS, window_title

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p"]


def seed_markers(seeds) -> dict[int, str]:
    return {seed: MARKERS[i % len(MARKERS)] for i, seed in enumerate(sorted(seeds))}


def seed_pooled_r2(correlations: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Per seed and predictor, R^2 of that seed's within-domain pooled fit (its Table 1 row)."""
    rows = []
    for seed, table in correlations.items():
        pooled = primary_rows(table)
        pooled = pooled.loc[pooled["domain"] == POOLED, ["predictor", "r2"]]
        rows.append(pooled.assign(seed=seed))
    return pd.concat(rows, ignore_index=True)


def _range(values: pd.Series) -> str:
    values = values.dropna()
    return "n/a" if values.empty else f"{values.min():.2f}-{values.max():.2f}"


def fig7_across_seeds(
    points: dict[int, pd.DataFrame], correlations: dict[int, pd.DataFrame], png: str, pdf: str
) -> None:
    z_points, left_out = fig7_points_across_seeds(points)
    colours = colour_cycle(sorted({d for t in points.values() for d in t["domain"].unique()}))
    markers = seed_markers(points)
    r2_all = pooled_r2_across_seeds(z_points)
    r2_seed = seed_pooled_r2(correlations)
    fig, axes = panel_grid(len(FIG7_PREDICTORS), max_columns=5, size=(3.0, 2.8))
    for ax, predictor in zip(axes, FIG7_PREDICTORS):
        part = z_points[z_points["predictor"] == predictor]
        ax.set_xlabel(f"{PREDICTOR_LABELS[predictor]} (z)")
        ax.set_ylabel("test accuracy (z)")
        if part.empty:
            note(ax, "no domain to pool in any seed")
            continue
        for (seed, domain), rows in part.groupby(["seed", "domain"]):
            ax.scatter(rows["x"], rows["accuracy"], s=14, color=colours[domain],
                       marker=markers[seed], alpha=0.8, linewidths=0)  # fmt: skip
        fit = ols_fit(part["x"].to_numpy(float), part["accuracy"].to_numpy(float))
        if fit is not None:
            grid = np.linspace(part["x"].min(), part["x"].max(), 50)
            ax.plot(grid, fit.intercept + fit.slope * grid, color="black", lw=1)
        per_seed = r2_seed.loc[r2_seed["predictor"] == predictor, "r2"].astype(float)
        ax.set_title(
            f"R² = {r2_all[predictor]:.2f} over seeds (each {_range(per_seed)})\n"
            f"paper {PAPER_FIG7_R2[predictor]:.2f} (raw pool)",
            fontsize=8,
        )
    handles = [Line2D([], [], ls="", marker="o", color=c, label=d) for d, c in colours.items()]
    handles += [Line2D([], [], ls="", marker=m, color="0.3", label=f"seed {s}")
                for s, m in markers.items()]  # fmt: skip
    axes[0].legend(handles=handles, loc="best", fontsize=6)
    first = next(iter(correlations.values()))
    fig.suptitle(
        f"Test accuracy against each metric over {len(points)} seeds: within-domain z-scores of "
        f"each seed over {window_title(first)} (one marker per seed, one colour per domain; "
        "OLS over all seeds)",
        fontsize=9,
    )
    if left_out:
        fig.text(0.01, 0.0, "Left out: " + "; ".join(left_out), fontsize=5, wrap=True)
    save_figure(fig, png, pdf)
