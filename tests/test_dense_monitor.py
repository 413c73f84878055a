"""The lab's pathway monitor downstream of pretraining: dense correlations of each monitor metric
with the probe's test accuracy after the fit (grokpath.analysis.dense_correlations), and the monitor
figure (grokpath.figures.monitor), on small hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from grokpath.analysis.dense_correlations import DENSE_CORRELATION_COLUMNS, dense_correlations
from grokpath.figures import monitor as monitor_figure
from grokpath.figures.render import render
from grokpath.routing.monitor import MONITOR_TABLE_COLUMNS

STEPS = list(range(50, 501, 50))
# math fits at 150 (0.9 exactly: the verdict's tolerance counts it), code never does
TRAIN = {
    "math": dict(zip(STEPS, [0.2, 0.6, 0.9, 0.95, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])),
    "code": dict(zip(STEPS, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.8, 0.8])),
}
TEST = {
    "math": dict(zip(STEPS, [0.0, 0.0, 0.05, 0.1, 0.2, 0.4, 0.7, 0.8, 0.85, 0.9])),
    "code": dict(zip(STEPS, [0.0, 0.0, 0.0, 0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.3])),
}
NAN_STEP = 300  # math's consistency is NaN here: left out of its n


def probe_table() -> pd.DataFrame:
    rows = [
        {"step": s, "domain": d, "split": split, "n": 20, "accuracy": curve[d][s], "checkpoint": s % 100 == 0}
        for d in TRAIN for s in STEPS for split, curve in (("train", TRAIN), ("test", TEST))
    ]  # fmt: skip
    return pd.DataFrame(rows)


def monitor_table() -> pd.DataFrame:
    rows = []

    def add(step, domain, metric, value, layer="all"):
        rows.append({"step": step, "domain": domain, "group": "all", "layer": layer, "metric": metric,
                     "value": value, "se": 0.1, "n": 10, "n_excluded": 0})  # fmt: skip

    for domain in TEST:
        for step in STEPS + [525]:  # 525: a monitor step without probe rows, ignored
            accuracy = TEST[domain].get(step, 0.5)
            add(step, domain, "edit_distance_char", 10 - 5 * accuracy)  # exactly linear: r = -1
            consistency = np.nan if (domain, step) == ("math", NAN_STEP) else accuracy**3 + 0.01 * step / 500
            add(step, domain, "consistency_norm_mean_cos", consistency)
            add(step, domain, "routing_entropy", 1.0)  # constant: no r
            add(step, domain, "edit_distance_char", 99.0, layer="0")  # per layer rows are not read
        add(100, "all", "edit_distance_char", 7.0)
    return pd.DataFrame(rows)[MONITOR_TABLE_COLUMNS]


def samples_table() -> pd.DataFrame:
    t_star = [100, 100, 200, 200, 200, 300, None, None]
    rows = [{"domain": d, "sample_id": f"{d}-{i}", "t_star": t, "memorized": t is not None, "eps": 0.5,
             "delta": 0.05, "final_loss": 0.1} for d in TEST for i, t in enumerate(t_star)]  # fmt: skip
    table = pd.DataFrame(rows)
    table["t_star"] = table["t_star"].astype("Int64")
    return table


def test_dense_correlations_after_the_fit():
    table = dense_correlations(monitor_table(), probe_table())
    assert list(table.columns) == DENSE_CORRELATION_COLUMNS
    assert sorted(zip(table["domain"], table["metric"])) == sorted(
        (d, m) for d in ("code", "math") for m in ("consistency_norm_mean_cos", "edit_distance_char", "routing_entropy")
    )
    rows = table.set_index(["domain", "metric"])

    distance = rows.loc[("math", "edit_distance_char")]
    assert distance["t_fit"] == 150 and (distance["first_step"], distance["last_step"]) == (150, 500)
    assert distance["n"] == 8  # 150 ... 500; 525 has no probe rows
    assert distance["pearson_r"] == pytest.approx(-1.0) and distance["spearman_r"] == pytest.approx(-1.0)

    consistency = rows.loc[("math", "consistency_norm_mean_cos")]
    kept = [s for s in STEPS if s >= 150 and s != NAN_STEP]
    x = [TEST["math"][s] ** 3 + 0.01 * s / 500 for s in kept]
    y = [TEST["math"][s] for s in kept]
    assert consistency["n"] == len(kept) == 7
    assert consistency["pearson_r"] == pytest.approx(scipy_stats.pearsonr(x, y).statistic)
    assert consistency["spearman_r"] == pytest.approx(scipy_stats.spearmanr(x, y).statistic)
    assert consistency["pearson_r"] < consistency["spearman_r"] == pytest.approx(1.0)

    assert rows.loc[("math", "routing_entropy")]["n"] == 8
    assert pd.isna(rows.loc[("math", "routing_entropy"), "pearson_r"])  # constant metric

    never = table[table["domain"] == "code"]
    assert never["t_fit"].isna().all() and (never["n"] == 0).all()
    assert never["pearson_r"].isna().all() and never["first_step"].isna().all()

    # a lower fit level moves t_fit and the window
    assert dense_correlations(monitor_table(), probe_table(), fit_accuracy=0.5).set_index(
        ["domain", "metric"]).loc[("code", "edit_distance_char"), "t_fit"] == 250  # fmt: skip


def test_monitor_figure_renders_from_the_tables(tmp_path, monkeypatch):
    paths = {}
    for name, table in (("probe", probe_table()), ("monitor", monitor_table()), ("samples", samples_table())):
        paths[name] = tmp_path / f"{name}.parquet"
        table.to_parquet(paths[name])
    args = {**paths, "png": tmp_path / "fig_monitor.png", "pdf": tmp_path / "fig_monitor.pdf"}
    render("monitor", args)
    assert args["png"].read_bytes()[:4] == b"\x89PNG" and args["png"].stat().st_size > 1000
    assert args["pdf"].read_bytes()[:4] == b"%PDF" and args["pdf"].stat().st_size > 1000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    kept = {}
    monkeypatch.setattr(monitor_figure, "save_figure", lambda fig, png, pdf: kept.setdefault("fig", fig))
    monitor_figure.fig_monitor(probe_table(), monitor_table(), samples_table(), "x.png", "x.pdf")
    fig = kept["fig"]
    panels = [ax for ax in fig.axes if ax.get_ylabel() == "accuracy, consistency"]
    assert [ax.get_title().split("\n")[0] for ax in panels] == ["code", "math"]
    assert "Spearman r" in panels[1].get_title() and "ED -1.00" in panels[1].get_title()
    math = panels[1]
    texts = [t.get_text() for t in math.texts]
    assert "t_fit 150" in texts and "t_mem50 200" in texts  # 6 memorized: the 3rd t* is 200
    assert not any(t.get_text().startswith("t_fit") for t in panels[0].texts)  # code never fits
    labels = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
    assert {"train accuracy (probe)", "test accuracy (probe)", "consistency (norm. mean cos)",
            "edit distance (char)", "memorized at t* (count)"} <= labels  # fmt: skip


def test_monitor_figure_notes_a_domain_without_monitor_rows(tmp_path):
    probe = pd.concat([probe_table(), probe_table().query("domain == 'code'").assign(domain="web")])
    monitor_figure.fig_monitor(probe, monitor_table(), samples_table().iloc[:0], tmp_path / "a.png",
                               tmp_path / "a.pdf")  # fmt: skip
    assert (tmp_path / "a.png").stat().st_size > 1000 and (tmp_path / "a.pdf").stat().st_size > 1000
