"""The theory toy (paper App. C.4, Fig 8): effective dimension against routing-path edit distance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokpath.analysis.stats import fit_band, ols_fit, pearson
from grokpath.figures.common import panel_grid, require_rows, save_figure

CONFIDENCE = 0.95


def fig8_theory_toy(toy: pd.DataFrame, png: str, pdf: str) -> None:
    require_rows(toy, "fig8: theory toy")
    fig, axes = panel_grid(1, size=(4.4, 3.4))
    ax = axes[0]
    points = ax.scatter(toy["edit_distance"], toy["effective_dim"], c=toy["routing_specificity"],
                        cmap="viridis", s=16)  # fmt: skip
    fig.colorbar(points, ax=ax, label="routing specificity rho")
    fit = ols_fit(toy["edit_distance"], toy["effective_dim"], CONFIDENCE)
    r, p = pearson(toy["edit_distance"], toy["effective_dim"])
    if fit is not None:
        grid = np.linspace(toy["edit_distance"].min(), toy["edit_distance"].max(), 50)
        band = fit_band(fit, grid, CONFIDENCE)
        ax.plot(band["x"], band["fit"], color="black", lw=1)
        ax.fill_between(band["x"], band["ci_low"], band["ci_high"], color="0.6", alpha=0.3, lw=0)
        ax.set_title(f"{len(toy)} seeds: r = {r:+.2f} (p={p:.2g}), R² = {fit.r2:.2f}")
    ax.set_xlabel("mean routing-path edit distance")
    ax.set_ylabel("effective dimension Tr(H(H+λI)⁻¹)")
    save_figure(fig, png, pdf)
