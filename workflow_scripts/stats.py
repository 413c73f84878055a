"""Rule correlations: test accuracy against every predictor (paper Table 1, Fig 7 fits).

Inputs: eval_items, contamination (eval tables); edit_distance, consistency, routing (metrics at the
config's routing threshold); loss_baselines. Outputs: accuracy (with both checkpoint windows),
points (predictor x accuracy per domain and step), correlations (Table 1 + CIs, OLS, LOO R^2, both
windows), nested (F-tests of loss + metric vs loss), fits (Fig 7 lines and bands, within-domain z).
Params: window, rise_fraction, min_gain, min_checkpoints, group, n_resamples, confidence, seed,
nested_loss. Columns: grokpath.analysis.stats.
"""

from grokpath.analysis import stats
from grokpath.entry import log, run
from grokpath.evaluation.contamination import CONTAMINATION_COLUMNS
from grokpath.evaluation.harness import ITEM_COLUMNS
from grokpath.routing.metrics import METRIC_TABLE_COLUMNS
from grokpath.tableio import read_parquet, write_parquet

SOURCES = ("edit_distance", "consistency", "routing", "loss_baselines")


def read_metrics(path):
    return read_parquet(path, METRIC_TABLE_COLUMNS).astype({"group": str, "layer": str})


def log_windows(accuracy) -> None:
    for domain, part in accuracy.groupby("domain"):
        log.info(
            "%s: %s window %s (rise found: %s, rise after the paper window starts: %s)",
            domain,
            part["window"].iloc[0],
            part.loc[part["in_window"], "step"].tolist(),
            bool(part["rise_found"].all()),
            bool(part["late_rise"].any()),
        )


def log_left_out(correlations) -> None:
    pooled = stats.primary_rows(correlations)
    pooled = pooled[(pooled["domain"] == stats.POOLED) & (pooled["left_out"] != "")]
    for row in pooled.itertuples():
        log.warning("%s, %s: left out of the pool: %s", row.domain, row.predictor, row.left_out)


def main(args: dict) -> None:
    accuracy = stats.domain_accuracy(
        read_parquet(args["eval_items"], ITEM_COLUMNS),
        read_parquet(args["contamination"], CONTAMINATION_COLUMNS),
    )
    accuracy = stats.accuracy_with_window(
        accuracy,
        float(args["rise_fraction"]),
        float(args["min_gain"]),
        int(args["min_checkpoints"]),
        str(args["window"]),
    )
    log_windows(accuracy)
    tables = {source: read_metrics(args[source]) for source in SOURCES}
    points = stats.predictor_points(tables, accuracy, str(args["group"]))
    confidence = float(args["confidence"])
    correlations = stats.correlation_table(
        points, str(args["group"]), int(args["n_resamples"]), confidence, int(args["seed"])
    )
    log_left_out(correlations)
    write_parquet(accuracy, args["accuracy"])
    write_parquet(points, args["points"])
    write_parquet(correlations, args["correlations"])
    write_parquet(stats.nested_f_tests(points, str(args["nested_loss"])), args["nested"])
    write_parquet(stats.pooled_fit_bands(points, confidence), args["fits"])


run(main, globals())
