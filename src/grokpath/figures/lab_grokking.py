"""The lab verdict drawn (no paper figure): per domain, training and test accuracy over steps with
the steps that decide whether it groks (analysis/grokking.parquet, grokpath.analysis.verdict)."""

from __future__ import annotations

import textwrap

import pandas as pd

from grokpath.figures.common import note, panel_grid, require_rows, save_figure, step_label

TRAIN_COLOUR = "#4c72b0"
TEST_COLOUR = "#dd8452"
# (column, label, colour): drawn in this order, labels stacked so coinciding steps stay readable
MARKED_STEPS = [
    ("t_fit", "t_fit", "#55a868"),
    ("t_mem50", "t_mem50", "#8172b3"),
    ("t_gen50", "t_gen50", "#c44e52"),
]


def _mark_steps(ax, verdict) -> None:
    for height, (column, label, colour) in zip((0.97, 0.87, 0.77), MARKED_STEPS):
        step = verdict[column]
        if pd.isna(step):
            continue
        ax.axvline(int(step), color=colour, lw=1, ls="--")
        # a white box keeps the label readable where it crosses the curves
        ax.text(int(step), height, f"{label} {step_label(step)}", color=colour, fontsize=7,
                transform=ax.get_xaxis_transform(), va="top", ha="left",
                bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1})  # fmt: skip


def _title(verdict) -> str:
    if verdict["groks"]:
        return f"{verdict['domain']}: groks"
    return f"{verdict['domain']}: does not grok\n" + textwrap.fill(f"({verdict['reason']})", 48)


def fig_lab_grokking(probe: pd.DataFrame, test_accuracy: pd.DataFrame, verdicts: pd.DataFrame,
                     png: str, pdf: str) -> None:  # fmt: skip
    """probe: the dense pretraining probe (every row drawn); test_accuracy: lm-eval's, domain,
    step, accuracy at the checkpoints; verdicts: grokpath.analysis.verdict.TABLE_COLUMNS."""
    require_rows(verdicts, "lab_grokking: analysis/grokking.parquet")
    fig, axes = panel_grid(len(verdicts), max_columns=2, size=(3.8, 3.0))
    for ax, verdict in zip(axes, verdicts.sort_values("domain").to_dict("records")):
        domain = verdict["domain"]
        rows = probe[probe["domain"] == domain].sort_values("step")
        if rows.empty:
            note(ax, f"no probe rows for {domain}")
        for split, colour, style in (("train", TRAIN_COLOUR, "-"), ("test", TEST_COLOUR, ":")):
            part = rows[rows["split"] == split]
            ax.plot(part["step"], part["accuracy"], color=colour, ls=style, lw=1.2,
                    label=f"{split} accuracy (probe)")  # fmt: skip
        evaluated = test_accuracy[test_accuracy["domain"] == domain].sort_values("step")
        ax.plot(evaluated["step"], evaluated["accuracy"], color=TEST_COLOUR, ls="none", marker="o",
                ms=4, label="test accuracy (lm-eval, checkpoints)")  # fmt: skip
        if verdict["chance"] > 0:
            ax.axhline(verdict["chance"], color="0.6", lw=0.8, ls="-.", label="chance")
        _mark_steps(ax, verdict)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy")
        ax.set_title(_title(verdict), fontsize=8 if not verdict["groks"] else None)
    # chance is drawn only in multiple-choice panels: collect the legend over all of them
    legend = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncol=4)
    first = verdicts.iloc[0]
    spread = first["t_gen50_spread"]
    spread_text = "" if pd.isna(spread) else f", t_gen50 spread {int(spread)} of {int(first['last_step'])} steps"
    fig.suptitle(f"{int(verdicts['groks'].sum())} of {len(verdicts)} domains grok; staggered: "
                 f"{'yes' if first['staggered'] else 'no'}{spread_text}")  # fmt: skip
    save_figure(fig, png, pdf)
