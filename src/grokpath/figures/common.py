"""What every figure shares: the Agg backend, colours, panel grids and atomic PNG + PDF writes."""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on cluster nodes or in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from grokpath.errors import GrokpathError  # noqa: E402
from grokpath.tableio import atomic_path  # noqa: E402

ALL = "all"
plt.rcParams.update(
    {
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.fontsize": 7,
        "legend.frameon": False,
    }
)


def save_figure(fig: plt.Figure, png: str | os.PathLike, pdf: str | os.PathLike) -> None:
    """Write both formats atomically, then free the figure."""
    # solve the constrained layout once and freeze it: each save would otherwise solve it again
    fig.canvas.draw()
    fig.set_layout_engine("none")
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            # tight: a suptitle wider than a one-panel figure would otherwise be cut off
            fig.savefig(tmp, format=fmt, bbox_inches="tight")
    plt.close(fig)


def panel_grid(n_panels: int, max_columns: int = 5, size: tuple[float, float] = (3.2, 2.6)):
    """A figure with n_panels axes in rows of at most max_columns; spare axes are hidden."""
    columns = min(n_panels, max_columns)
    rows = math.ceil(n_panels / columns)
    # constrained layout keeps twin axes' labels, suptitles and figure legends apart
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(size[0] * columns, size[1] * rows),
        squeeze=False,
        layout="constrained",
    )
    flat = axes.ravel()
    for spare in flat[n_panels:]:
        spare.set_visible(False)
    return fig, list(flat[:n_panels])


def colour_cycle(labels) -> dict:
    palette = plt.get_cmap("tab10")
    return {label: palette(i % 10) for i, label in enumerate(labels)}


def sequential_colours(labels) -> dict:
    """Ordered labels (steps, thresholds) on a light-to-dark scale."""
    labels = list(labels)
    cmap = plt.get_cmap("viridis")
    positions = np.linspace(0.1, 0.85, max(len(labels), 1))
    return {label: cmap(p) for label, p in zip(labels, positions)}


def domains_with_all(table: pd.DataFrame) -> list[str]:
    """Panel order of the paper's five-panel figures: the global panel first, then domains."""
    domains = sorted(d for d in table["domain"].unique() if d != ALL and "|" not in d)
    return ([ALL] if ALL in set(table["domain"]) else []) + domains


def note(ax: plt.Axes, text: str) -> None:
    """Say on the panel why it is empty rather than leave a blank axis."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8,
            color="0.4", wrap=True)  # fmt: skip


def require_rows(table: pd.DataFrame, what: str) -> None:
    if table.empty:
        raise GrokpathError(f"{what}: no rows to plot")


def step_label(step) -> str:
    """1100000 -> 1100k, 750 -> 750: the paper writes checkpoint steps in thousands."""
    step = int(step)
    return f"{step // 1000}k" if step >= 10_000 and step % 1000 == 0 else str(step)
