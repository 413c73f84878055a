"""Rule dense_correlations (lab): each pathway-monitor metric vs test accuracy over the monitor's
steps after each domain's fit (grokpath.analysis.dense_correlations).

Inputs:  monitor   train/monitor.parquet (the pathway monitor of the lab pretraining)
         probe     train/probe.parquet (the dense accuracy probe: t_fit and test accuracy)
Outputs: dense_correlations   analysis/dense_correlations.parquet
         (grokpath.analysis.dense_correlations.DENSE_CORRELATION_COLUMNS)
"""

from grokpath.analysis import dense_correlations as dense
from grokpath.entry import log, run
from grokpath.tableio import read_parquet, write_parquet


def main(args: dict) -> None:
    table = dense.dense_correlations(
        read_parquet(args["monitor"], dense.MONITOR_COLUMNS),
        read_parquet(args["probe"], dense.PROBE_COLUMNS),
    )
    for row in table[table["metric"].isin(["edit_distance_char", "consistency_norm_mean_cos"])].itertuples():
        log.info("%s %s: n %d, pearson %.2f, spearman %.2f", row.domain, row.metric, row.n,
                 row.pearson_r, row.spearman_r)  # fmt: skip
    write_parquet(table, args["dense_correlations"])


run(main, globals())
