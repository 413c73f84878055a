"""Dense correlations of the lab: each pathway-monitor metric vs test accuracy over the monitor's
steps, per domain (train/monitor.parquet, train/probe.parquet; grokpath.lab.pretrain).

The ten-checkpoint correlations of Table 1 (grokpath.analysis.stats) have five points per domain; the
monitor runs at the dense accuracy probe's steps (every `pretrain.monitor_every`), so a domain
has a curve of a hundred points. Per domain and metric (group "all", layer "all": the whole
probe set, every layer) this gives Pearson and Spearman r of the metric against the probe's test
accuracy over every monitor step from the domain's fit on: t_fit is the first probe step whose
training accuracy is >= `fit_accuracy` (grokpath.analysis.verdict.fit_step, FIT_ACCURACY 0.9, the
verdict's convention, here on the dense probe's steps rather than the checkpoints). Before the fit
test accuracy and the metrics both move with memorization itself; the question is whether a
metric tracks generalization once the training set is fit.

No p-values: consecutive steps of one run are strongly autocorrelated, so the usual tests would
be far too confident. r is NaN with fewer than 3 steps or a constant side (grokpath.analysis.stats).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokpath.analysis.stats import pearson, spearman
from grokpath.analysis.verdict import FIT_ACCURACY, fit_step

DENSE_CORRELATION_COLUMNS = [
    "domain", "metric", "t_fit", "first_step", "last_step", "n", "pearson_r", "spearman_r",
]  # fmt: skip
# what is read of the two tables
PROBE_COLUMNS = ["step", "domain", "split", "accuracy"]
MONITOR_COLUMNS = ["step", "domain", "group", "layer", "metric", "value"]
ALL = "all"


def dense_correlations(monitor: pd.DataFrame, probe: pd.DataFrame,
                       fit_accuracy: float = FIT_ACCURACY) -> pd.DataFrame:  # fmt: skip
    """DENSE_CORRELATION_COLUMNS, one row per domain of `probe` and metric of `monitor`.

    monitor: the monitor's tidy table (step, domain, group, layer, metric, value); its rows at
    group "all" and layer "all" of each domain are used. probe: the dense accuracy probe (step,
    domain, split train|test, accuracy). t_fit is null (and n 0) for a domain that never fits;
    first_step and last_step bound the steps used (null when none); n counts the steps where
    both the metric and test accuracy are finite.
    """
    whole = monitor[(monitor["group"].astype(str) == ALL) & (monitor["layer"].astype(str) == ALL)]
    metrics = sorted(whole["metric"].unique())
    rows = []
    for domain in sorted(probe["domain"].unique()):
        mine = probe[probe["domain"] == domain]
        train = mine[mine["split"] == "train"].groupby("step")["accuracy"].mean()
        test = mine[mine["split"] == "test"].groupby("step")["accuracy"].mean().rename("accuracy")
        t_fit = fit_step(train, fit_accuracy)
        for metric in metrics:
            series = whole[(whole["domain"] == domain) & (whole["metric"] == metric)]
            joined = series.groupby("step")["value"].mean().to_frame().join(test, how="inner")
            joined = joined[np.isfinite(joined["value"]) & np.isfinite(joined["accuracy"])]
            if t_fit is None:
                joined = joined.iloc[:0]
            else:
                joined = joined[joined.index >= t_fit].sort_index()
            x, y = joined["value"].to_numpy(float), joined["accuracy"].to_numpy(float)
            rows.append({
                "domain": domain, "metric": metric, "t_fit": t_fit,
                "first_step": int(joined.index[0]) if len(joined) else None,
                "last_step": int(joined.index[-1]) if len(joined) else None,
                "n": len(joined), "pearson_r": pearson(x, y)[0], "spearman_r": spearman(x, y)[0],
            })  # fmt: skip
    table = pd.DataFrame(rows, columns=DENSE_CORRELATION_COLUMNS)
    return table.astype({
        "domain": "object", "metric": "object", "t_fit": "Int64", "first_step": "Int64",
        "last_step": "Int64", "n": "int64", "pearson_r": "float64", "spearman_r": "float64",
    })  # fmt: skip
