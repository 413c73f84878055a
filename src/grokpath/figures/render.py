"""From a rule's named inputs and params to one figure: read the tables, call the figure function.

`render(name, args)` is what workflow_scripts/figure.py runs; `args` holds the rule's named
inputs, outputs (png, pdf and, for Table 1, csv) and params, as grokpath.entry builds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from grokpath.analysis import trends
from grokpath.analysis.ablation import memorized_fractions
from grokpath.analysis.stats import CORRELATION_COLUMNS, FIT_COLUMNS, accuracy_by_test_group
from grokpath.analysis.theory import TOY_COLUMNS
from grokpath.analysis.verdict import PROBE_COLUMNS, TABLE_COLUMNS, checkpoint_test_accuracy
from grokpath.errors import GrokpathError
from grokpath.evaluation.contamination import CONTAMINATION_COLUMNS
from grokpath.evaluation.generalization import GENERALIZATION_COLUMNS
from grokpath.evaluation.harness import AGGREGATE_COLUMNS, ITEM_COLUMNS
from grokpath.evaluation.matching import MATCH_COLUMNS
from grokpath.figures import ablations, correlation, grokking, lab_grokking, monitor, pathways, theory
from grokpath.routing.metrics import METRIC_TABLE_COLUMNS
from grokpath.tableio import read_parquet

GROUP_COLUMNS = ["domain", "t_star", "n_samples"]
POINT_COLUMNS = ["domain", "step", "predictor", "x", "accuracy", "in_window", "rise_found"]
MEMORIZATION_COLUMNS = ["domain", "sample_id", "t_star", "memorized"]


def as_list(value) -> list:
    return [value] if isinstance(value, (str, Path)) else list(value)


def metrics(path) -> pd.DataFrame:
    table = read_parquet(path, METRIC_TABLE_COLUMNS)
    return table.astype({"group": str, "layer": str, "domain": str})


def groups_table(path) -> pd.DataFrame:
    return read_parquet(path, GROUP_COLUMNS)


def paired(args: dict, paths_key: str, values_key: str) -> list[tuple[str, str]]:
    """(setting value as text, path) pairs, in the order the rule listed them."""
    paths, values = as_list(args[paths_key]), [str(v) for v in as_list(args[values_key])]
    if len(paths) != len(values):
        raise GrokpathError(f"{paths_key}: {len(paths)} files for {len(values)} {values_key}")
    return list(zip(values, paths))


def fig1(args: dict) -> None:
    grokking.fig1_memorization_generalization(
        groups_table(args["groups"]),
        read_parquet(args["generalization"], GENERALIZATION_COLUMNS),
        read_parquet(args["contamination"], CONTAMINATION_COLUMNS),
        args["steps"], args["png"], args["pdf"],
    )  # fmt: skip


def fig2(args: dict) -> None:
    accuracy = accuracy_by_test_group(
        read_parquet(args["eval_items"], ITEM_COLUMNS),
        read_parquet(args["generalization"], GENERALIZATION_COLUMNS),
        read_parquet(args["contamination"], CONTAMINATION_COLUMNS),
    )
    grokking.fig2_matched_pairs(
        metrics(args["loss_baselines"]), read_parquet(args["matches"], MATCH_COLUMNS), accuracy,
        args["domain"], int(args["max_pairs"]), args["png"], args["pdf"],
    )  # fmt: skip


def fig4(args: dict) -> None:
    shown = trends.resolve_groups(args["show_groups"], groups_table(args["groups"]), 2)
    pathways.fig4_edit_distance(
        metrics(args["edit_distance"]), metrics(args["loss_baselines"]), shown, args["png"],
        args["pdf"],
    )  # fmt: skip


def fig5(args: dict) -> None:
    shown = trends.resolve_groups(args["show_group"], groups_table(args["groups"]), 1)
    pathways.fig5_layer_edit_distance(
        metrics(args["edit_distance"]), shown[0] if shown else None, args["png"], args["pdf"]
    )


def fig6(args: dict) -> None:
    shown = trends.resolve_groups(args["show_groups"], groups_table(args["groups"]), 2)
    pathways.fig6_consistency(
        metrics(args["consistency"]), metrics(args["loss_baselines"]), shown, args["png"],
        args["pdf"],
    )  # fmt: skip


def table1(args: dict) -> None:
    correlation.table1_correlations(
        read_parquet(args["correlations"], CORRELATION_COLUMNS), args["csv"], args["png"],
        args["pdf"],
    )  # fmt: skip


def fig7(args: dict) -> None:
    correlation.fig7_metric_vs_accuracy(
        read_parquet(args["points"], POINT_COLUMNS), read_parquet(args["fits"], FIT_COLUMNS),
        read_parquet(args["correlations"], CORRELATION_COLUMNS), args["png"], args["pdf"],
    )  # fmt: skip


def fig8(args: dict) -> None:
    theory.fig8_theory_toy(read_parquet(args["toy"], TOY_COLUMNS), args["png"], args["pdf"])


def fig9(args: dict) -> None:
    tables = {value: metrics(path) for value, path in paired(args, "edit_distances", "thresholds")}
    ablations.fig9_threshold_ablation(tables, args["png"], args["pdf"])


def _memorization_ablation(args: dict, draw: Callable) -> None:
    tables = {value: metrics(path) for value, path in paired(args, "edit_distances", "values")}
    fractions = {
        value: memorization_fractions(path)
        for value, path in paired(args, "memorizations", "values")
    }
    draw(tables, fractions, args["png"], args["pdf"])


def memorization_fractions(path) -> pd.DataFrame:
    return memorized_fractions(read_parquet(path, MEMORIZATION_COLUMNS))


def fig10(args: dict) -> None:
    _memorization_ablation(args, ablations.fig10_eps_ablation)


def fig11(args: dict) -> None:
    _memorization_ablation(args, ablations.fig11_delta_ablation)


def fig12(args: dict) -> None:
    pathways.fig12_cross_domain(
        metrics(args["edit_distance"]), args["domain_a"], args["domain_b"], args["png"], args["pdf"]
    )


def fig13(args: dict) -> None:
    pathways.fig13_entropy_vs_distance(
        metrics(args["edit_distance"]), metrics(args["routing"]), args["png"], args["pdf"]
    )


def lab_grokking_figure(args: dict) -> None:
    lab_grokking.fig_lab_grokking(
        read_parquet(args["probe"], PROBE_COLUMNS),
        checkpoint_test_accuracy(read_parquet(args["aggregate"], AGGREGATE_COLUMNS)),
        read_parquet(args["grokking"], TABLE_COLUMNS), args["png"], args["pdf"],
    )  # fmt: skip


def monitor_figure(args: dict) -> None:
    monitor.fig_monitor(
        read_parquet(args["probe"], PROBE_COLUMNS),
        metrics(args["monitor"]),  # grokpath.routing.monitor's table: the metric tables' columns + n_excluded
        read_parquet(args["samples"], MEMORIZATION_COLUMNS), args["png"], args["pdf"],
    )  # fmt: skip


RENDERERS: dict[str, Callable[[dict], None]] = {
    "fig1": fig1, "fig2": fig2, "fig4": fig4, "fig5": fig5, "fig6": fig6, "table1": table1,
    "fig7": fig7, "fig8": fig8, "fig9": fig9, "fig10": fig10, "fig11": fig11, "fig12": fig12,
    "fig13": fig13, "lab_grokking": lab_grokking_figure, "monitor": monitor_figure,
}  # fmt: skip


def render(name: str, args: dict) -> None:
    if name not in RENDERERS:
        raise GrokpathError(f"figure {name!r}: expected one of {', '.join(RENDERERS)}")
    RENDERERS[name](args)
