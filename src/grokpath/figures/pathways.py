"""Pathway metrics over training: paper Figs 4, 5, 6 (memorized groups), 12 (cross-domain), 13 (entropy)."""

from __future__ import annotations

import pandas as pd

from grokpath.analysis.stats import pearson, post_memorization_trend, quadratic_trend, spearman
from grokpath.analysis.trends import (
    CONSISTENCY,
    EDIT_DISTANCE,
    TRAINING_LOSS,
    cross_domain_label,
    entropy_distance_points,
    layer_change_after,
    layer_order,
    select_rows,
)
from grokpath.figures.common import (
    ALL,
    domains_with_all,
    note,
    panel_grid,
    require_rows,
    save_figure,
    sequential_colours,
    step_label,
)


def _style_legend(fig, groups: list[int], colours: dict, ylabel: str) -> None:
    """One legend for the figure: colour = group, line style = what is drawn."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=colours[t], lw=2, label=f"t* = {step_label(t)}") for t in groups
    ]
    handles += [
        Line2D([], [], color="0.3", marker="o", ms=3, label=ylabel),
        Line2D(
            [], [], color="0.3", ls="--", label="fit: quadratic (global), line after t* (domains)"
        ),
        Line2D([], [], color="0.3", ls="-.", label="training loss (right axis)"),
        Line2D([], [], color="0.3", ls=":", label="t*"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)


def trend_panels(
    metric_table: pd.DataFrame, metric: str, ylabel: str, loss_baselines: pd.DataFrame,
    groups: list[int], title: str, png: str, pdf: str,
) -> None:  # fmt: skip
    """Figs 4 and 6: global + per-domain panels, metric (left) and training loss (right) per group.

    Fits follow the paper: a quadratic over all checkpoints on the global panel, a straight
    line through the checkpoints from t* on in the domain panels (slopes in the panel title).
    """
    require_rows(metric_table, title)
    panels = domains_with_all(metric_table)
    colours = sequential_colours(groups)
    fig, axes = panel_grid(len(panels), max_columns=5, size=(3.4, 2.8))
    for ax, domain in zip(axes, panels):
        twin = ax.twinx()
        twin.spines["right"].set_visible(True)
        slopes = []
        for t_star in groups:
            series = select_rows(metric_table, metric, domain, str(t_star))
            if series.empty:
                continue
            colour = colours[t_star]
            ax.plot(series["step"], series["value"], color=colour, marker="o", ms=3)
            ax.axvline(t_star, color=colour, ls=":", lw=0.8)
            trend = (
                quadratic_trend(series["step"], series["value"])
                if domain == ALL
                else post_memorization_trend(series["step"], series["value"], t_star)
            )
            if trend is not None:
                ax.plot(trend.steps, trend.fitted, color=colour, ls="--", lw=1)
                if domain != ALL:
                    slopes.append(f"{trend.slope:+.3g}")
            loss = select_rows(loss_baselines, TRAINING_LOSS, domain, str(t_star))
            if not loss.empty:
                twin.plot(loss["step"], loss["value"], color=colour, ls="-.", lw=1, alpha=0.7)
        if not ax.lines:
            note(ax, "none of the chosen groups here")
        name = "global" if domain == ALL else domain
        ax.set_title(f"{name}\nslope after t*: {', '.join(slopes)} /1k steps" if slopes else name)
        ax.set_xlabel("checkpoint step")
        ax.set_ylabel(ylabel)
        twin.set_ylabel("training loss")
    fig.suptitle(title)
    _style_legend(fig, groups, colours, ylabel)
    save_figure(fig, png, pdf)


def fig4_edit_distance(edit_distance, loss_baselines, groups: list[int], png, pdf) -> None:
    trend_panels(
        edit_distance, EDIT_DISTANCE, "edit distance", loss_baselines, groups,
        "Pathway edit distance (lower = more shared) and training loss of memorized groups",
        png, pdf,
    )  # fmt: skip


def fig6_consistency(consistency, loss_baselines, groups: list[int], png, pdf) -> None:
    trend_panels(
        consistency, CONSISTENCY, "consistency", loss_baselines, groups,
        "Pathway consistency (normalised mean adjacent-layer cosine, higher = more consistent)",
        png, pdf,
    )  # fmt: skip


def fig5_layer_edit_distance(edit_distance: pd.DataFrame, t_star: int | None, png, pdf) -> None:
    """One panel per MoE layer: the group's edit distance over steps (global, domain "all")."""
    rows = edit_distance[
        (edit_distance["metric"] == EDIT_DISTANCE) & (edit_distance["domain"] == ALL)
        & (edit_distance["group"] == str(t_star))
    ]  # fmt: skip
    layers = layer_order(rows)
    fig, axes = panel_grid(max(len(layers), 1), max_columns=4, size=(2.8, 2.3))
    if not layers:
        note(axes[0], f"no per-layer rows for group t*={t_star}")
    for ax, layer in zip(axes, layers):
        series = rows[rows["layer"] == layer].sort_values("step")
        ax.plot(series["step"], series["value"], marker="o", ms=3, color="#4c72b0")
        ax.axvline(t_star, color="0.4", ls=":", lw=0.8)
        change = layer_change_after(series["step"], series["value"], t_star)
        ax.set_title(f"layer {layer}: change after t* {change:+.3g}")
        ax.set_xlabel("checkpoint step")
        ax.set_ylabel("edit distance")
    fig.suptitle(f"Per-layer pathway edit distance, group memorized at {step_label(t_star or 0)}")
    save_figure(fig, png, pdf)


def fig12_cross_domain(edit_distance: pd.DataFrame, domain_a: str, domain_b: str, png, pdf) -> None:
    """Mean distance between the two domains' pathways over steps, beside each domain's own."""
    label = cross_domain_label(domain_a, domain_b)
    cross = select_rows(edit_distance, f"{EDIT_DISTANCE}_cross", label, ALL)
    fig, axes = panel_grid(1, size=(4.6, 3.2))
    ax = axes[0]
    if cross.empty:
        note(ax, f"no {EDIT_DISTANCE}_cross rows for {label}")
    rho, p = spearman(cross["step"], cross["value"])
    ax.plot(cross["step"], cross["value"], marker="o", ms=3, color="black",
            label=f"{domain_a} x {domain_b}")  # fmt: skip
    for domain, style in ((domain_a, "--"), (domain_b, ":")):
        within = select_rows(edit_distance, EDIT_DISTANCE, domain, ALL)
        ax.plot(within["step"], within["value"], ls=style, color="0.45", label=f"within {domain}")
    ax.set_title(f"Cross-domain pathway distance (Spearman with step {rho:+.2f}, p={p:.2g})")
    ax.set_xlabel("checkpoint step")
    ax.set_ylabel("edit distance")
    ax.legend()
    save_figure(fig, png, pdf)


def fig13_entropy_vs_distance(edit_distance: pd.DataFrame, routing: pd.DataFrame, png, pdf) -> None:
    points = entropy_distance_points(edit_distance, routing)
    r, p = pearson(points["routing_entropy"], points["edit_distance"])
    fig, axes = panel_grid(1, size=(4.4, 3.4))
    ax = axes[0]
    if points.empty:
        note(ax, "no memorized group of two or more samples has per-layer rows")
    else:
        cells = ax.hexbin(points["routing_entropy"], points["edit_distance"], gridsize=25,
                          mincnt=1, cmap="viridis")  # fmt: skip
        fig.colorbar(cells, ax=ax, label="(step, domain, group, layer) sets")
    ax.set_xlabel("routing entropy (nats)")
    ax.set_ylabel("edit distance (per layer)")
    ax.set_title(f"Routing entropy vs edit distance: r = {r:+.2f} (p={p:.2g}, n={len(points)})")
    save_figure(fig, png, pdf)
