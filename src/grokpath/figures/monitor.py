"""The pathway monitor of the lab pretraining drawn (no paper figure): per domain, over training
steps, the dense probe's train and test accuracy (train/probe.parquet) with the monitor's edit
distance and consistency of the probe set (train/monitor.parquet), the memorization steps
(memorization/samples.parquet: t* of the memorized samples) as a strip, and t_fit and t_mem50
marked. The panel title gives the dense Spearman r of each metric with test accuracy after t_fit
(grokpath.analysis.dense_correlations)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokpath.analysis.dense_correlations import dense_correlations
from grokpath.analysis.verdict import FIT_ACCURACY, fit_step, half_memorized_step
from grokpath.figures.common import ALL, note, panel_grid, require_rows, save_figure, step_label
from grokpath.figures.lab_grokking import MARKED_STEPS, TEST_COLOUR, TRAIN_COLOUR

EDIT_DISTANCE = "edit_distance_char"
CONSISTENCY = "consistency_norm_mean_cos"
DISTANCE_COLOUR = "#c44e52"
CONSISTENCY_COLOUR = "#1f9e89"  # teal: t_fit has the green
FIT_COLOUR = dict((c, colour) for c, _, colour in MARKED_STEPS)["t_fit"]
MEMORIZED_COLOUR = dict((c, colour) for c, _, colour in MARKED_STEPS)["t_mem50"]
STRIP_HEIGHT = 0.15  # the memorization strip's tallest bar, as a fraction of the panel height


def monitor_domains(probe: pd.DataFrame, monitor: pd.DataFrame) -> list[str]:
    """Panel order: the domains of either table, without the pooled "all" and cross-domain pairs."""
    domains = set(probe["domain"].astype(str)) | set(monitor["domain"].astype(str))
    return sorted(d for d in domains if d != ALL and "|" not in d)


def metric_curve(monitor: pd.DataFrame, domain: str, metric: str) -> pd.Series:
    """value by step of a domain's whole-probe-set row (group "all", layer "all")."""
    rows = monitor[(monitor["domain"] == domain) & (monitor["metric"] == metric)
                   & (monitor["group"].astype(str) == ALL) & (monitor["layer"].astype(str) == ALL)]  # fmt: skip
    return rows.groupby("step")["value"].mean().sort_index()


def _memorization_strip(ax, t_star: pd.Series) -> None:
    """One bar per step at which samples were memorized, height by count (t* are checkpoints)."""
    counts = t_star.dropna().astype("int64").value_counts().sort_index()
    if counts.empty:
        return
    for step, count in counts.items():
        ax.axvline(int(step), ymin=0, ymax=STRIP_HEIGHT * count / counts.max(), color=MEMORIZED_COLOUR,
                   lw=4, alpha=0.45, solid_capstyle="butt", label="memorized at t* (count)")  # fmt: skip


def _mark(ax, step, label: str, colour: str, height: float) -> None:
    if step is None or pd.isna(step):
        return
    ax.axvline(int(step), color=colour, lw=1, ls="--")
    ax.text(int(step), height, f"{label} {step_label(step)}", color=colour, fontsize=7,
            transform=ax.get_xaxis_transform(), va="top", ha="left",
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1})  # fmt: skip


def _title(domain: str, correlations: pd.DataFrame) -> str:
    parts = []
    for metric, short in ((EDIT_DISTANCE, "ED"), (CONSISTENCY, "cons")):
        row = correlations[(correlations["domain"] == domain) & (correlations["metric"] == metric)]
        if len(row) and np.isfinite(row["spearman_r"].iloc[0]):
            parts.append(f"{short} {row['spearman_r'].iloc[0]:+.2f}")
    if not parts:
        return domain
    n = int(correlations.loc[correlations["domain"] == domain, "n"].max())
    return f"{domain}\nSpearman r with test acc. after t_fit (n={n}): " + ", ".join(parts)


def fig_monitor(probe: pd.DataFrame, monitor: pd.DataFrame, samples: pd.DataFrame, png: str,
                pdf: str) -> None:  # fmt: skip
    """probe: train/probe.parquet (step, domain, split, accuracy); monitor: train/monitor.parquet
    (grokpath.routing.monitor.MONITOR_TABLE_COLUMNS); samples: memorization/samples.parquet (domain,
    t_star, memorized)."""
    require_rows(monitor, "fig_monitor: train/monitor.parquet")
    domains = monitor_domains(probe, monitor)
    require_rows(pd.DataFrame({"domain": domains}), "fig_monitor: domains")
    correlations = dense_correlations(monitor, probe)
    memorized = samples[samples["memorized"].astype(bool)]
    fig, axes = panel_grid(len(domains), max_columns=2, size=(4.2, 3.2))
    twins = []
    for ax, domain in zip(axes, domains):
        rows = probe[probe["domain"] == domain]
        for split, colour, style in (("train", TRAIN_COLOUR, "-"), ("test", TEST_COLOUR, ":")):
            part = rows[rows["split"] == split].groupby("step")["accuracy"].mean().sort_index()
            ax.plot(part.index, part.to_numpy(), color=colour, ls=style, lw=1.2,
                    label=f"{split} accuracy (probe)")  # fmt: skip
        consistency = metric_curve(monitor, domain, CONSISTENCY)
        ax.plot(consistency.index, consistency.to_numpy(), color=CONSISTENCY_COLOUR, ls="--", lw=1.2,
                label="consistency (norm. mean cos)")  # fmt: skip
        low = min(-0.02, float(consistency.min()) - 0.02) if len(consistency) else -0.02
        ax.set_ylim(low, 1.02)
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy, consistency")
        twin = ax.twinx()
        twins.append(twin)
        distance = metric_curve(monitor, domain, EDIT_DISTANCE)
        twin.plot(distance.index, distance.to_numpy(), color=DISTANCE_COLOUR, lw=1.2,
                  label="edit distance (char)")  # fmt: skip
        twin.set_ylabel("edit distance", color=DISTANCE_COLOUR)
        twin.tick_params(axis="y", colors=DISTANCE_COLOUR)
        twin.spines["right"].set_visible(True)
        if distance.empty and consistency.empty:
            note(ax, f"no monitor rows for {domain}")
        t_star = memorized.loc[memorized["domain"] == domain, "t_star"]
        _memorization_strip(ax, t_star)
        train = rows[rows["split"] == "train"].groupby("step")["accuracy"].mean()
        _mark(ax, fit_step(train, FIT_ACCURACY) if len(train) else None, "t_fit", FIT_COLOUR, 0.97)
        _mark(ax, half_memorized_step(t_star), "t_mem50", MEMORIZED_COLOUR, 0.87)
        ax.set_title(_title(domain, correlations), fontsize=8)
    legend = {}
    for ax in [*axes, *twins]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncol=3)
    fig.suptitle("Pathway monitor of the lab pretraining: probe-set routing vs probe accuracy")
    save_figure(fig, png, pdf)
