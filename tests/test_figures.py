"""Every figure renders from small fixed tables and writes a non-empty PNG and PDF."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis_tables as T
from grokpath.analysis import stats, trends
from grokpath.analysis.ablation import memorized_fractions
from grokpath.analysis.verdict import checkpoint_test_accuracy
from grokpath.errors import GrokpathError
from grokpath.figures import ablations, correlation, grokking, lab_grokking, pathways, theory
from grokpath.figures.render import render

PNG_MAGIC = b"\x89PNG"
PDF_MAGIC = b"%PDF"


@pytest.fixture(autouse=True)
def low_resolution():
    """Rendering at 40 dpi tests the same drawing code in a fraction of the time."""
    import matplotlib.pyplot as plt

    with plt.rc_context({"savefig.dpi": 40}):
        yield


@pytest.fixture(scope="module")
def tables():
    items, contamination = T.items_table(), T.contamination_table()
    accuracy = stats.accuracy_with_window(stats.domain_accuracy(items, contamination), 0.1, 0.05, 4)
    metrics = {
        "edit_distance": T.edit_distance_table(), "consistency": T.consistency_table(),
        "routing": T.routing_table(), "loss_baselines": T.loss_baselines_table(),
    }  # fmt: skip
    points = stats.predictor_points(metrics, accuracy, "memorized")
    generalization = T.generalization_table(items)
    return {
        **metrics, "items": items, "contamination": contamination, "points": points,
        "generalization": generalization, "groups": T.groups_table(), "matches": T.matches_table(),
        "correlations": stats.correlation_table(points, "memorized", 200, 0.95, 0),
        "fits": stats.pooled_fit_bands(points, 0.95),
        "group_accuracy": stats.accuracy_by_test_group(items, generalization, contamination),
        "fractions": memorized_fractions(T.memorization_samples()), "toy": T.toy_table(),
        "probe": T.probe_table(), "aggregate": T.aggregate_table(), "grokking": T.grokking_table(),
    }  # fmt: skip


def draw_fig1(t, png, pdf):
    grokking.fig1_memorization_generalization(t["groups"], t["generalization"], t["contamination"],
                                              T.STEPS, png, pdf)  # fmt: skip


def draw_fig2(t, png, pdf):
    grokking.fig2_matched_pairs(t["loss_baselines"], t["matches"], t["group_accuracy"], "math", 4,
                                png, pdf)  # fmt: skip


def draw_fig4(t, png, pdf):
    pathways.fig4_edit_distance(t["edit_distance"], t["loss_baselines"], [200, 300], png, pdf)


def draw_fig5(t, png, pdf):
    pathways.fig5_layer_edit_distance(t["edit_distance"], 300, png, pdf)


def draw_fig6(t, png, pdf):
    pathways.fig6_consistency(t["consistency"], t["loss_baselines"], [300, 500], png, pdf)


def draw_table1(t, png, pdf):
    correlation.table1_correlations(t["correlations"], png.with_suffix(".csv"), png, pdf)


def draw_fig7(t, png, pdf):
    correlation.fig7_metric_vs_accuracy(t["points"], t["fits"], t["correlations"], png, pdf)


def draw_fig8(t, png, pdf):
    theory.fig8_theory_toy(t["toy"], png, pdf)


def draw_fig9(t, png, pdf):
    ablations.fig9_threshold_ablation(
        {"0.6": t["edit_distance"], "0.7": t["edit_distance"]}, png, pdf
    )


def draw_fig10(t, png, pdf):
    ablations.fig10_eps_ablation({"0.75": t["edit_distance"]}, {"0.75": t["fractions"]}, png, pdf)


def draw_fig11(t, png, pdf):
    ablations.fig11_delta_ablation({"0.03": t["edit_distance"]}, {"0.03": t["fractions"]}, png, pdf)


def draw_fig12(t, png, pdf):
    pathways.fig12_cross_domain(t["edit_distance"], "math", "code", png, pdf)


def draw_fig13(t, png, pdf):
    pathways.fig13_entropy_vs_distance(t["edit_distance"], t["routing"], png, pdf)


def draw_lab_grokking(t, png, pdf):
    lab_grokking.fig_lab_grokking(t["probe"], checkpoint_test_accuracy(t["aggregate"]),
                                  t["grokking"], png, pdf)  # fmt: skip


DRAWERS = [draw_fig1, draw_fig2, draw_fig4, draw_fig5, draw_fig6, draw_table1, draw_fig7,
           draw_fig8, draw_fig9, draw_fig10, draw_fig11, draw_fig12, draw_fig13,
           draw_lab_grokking]  # fmt: skip


def assert_written(png, pdf):
    assert png.read_bytes()[:4] == PNG_MAGIC and png.stat().st_size > 1000
    assert pdf.read_bytes()[:4] == PDF_MAGIC and pdf.stat().st_size > 1000


@pytest.mark.parametrize("draw", DRAWERS, ids=lambda d: d.__name__.removeprefix("draw_"))
def test_figure_writes_png_and_pdf(draw, tables, tmp_path):
    png, pdf = tmp_path / "figure.png", tmp_path / "figure.pdf"
    draw(tables, png, pdf)
    assert_written(png, pdf)
    assert (
        sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    )  # no temp files


def test_table1_csv_holds_every_row(tables, tmp_path):
    png = tmp_path / "table1.png"
    draw_table1(tables, png, tmp_path / "table1.pdf")
    csv = pd.read_csv(png.with_suffix(".csv"))
    assert len(csv) == len(tables["correlations"])
    assert list(csv.columns) == list(tables["correlations"].columns)


def drawn_figure(monkeypatch, draw, *args):
    """Run a drawer and return the matplotlib figure it would have saved."""
    kept = {}
    monkeypatch.setattr(
        correlation, "save_figure", lambda fig, png, pdf: kept.setdefault("fig", fig)
    )
    draw(*args, "unused.png", "unused.pdf")
    return kept["fig"]


def test_fig7_plots_within_domain_z_scores_one_colour_per_domain(tables, monkeypatch):
    points = tables["points"]
    fig = drawn_figure(monkeypatch, correlation.fig7_metric_vs_accuracy, points, tables["fits"],
                       tables["correlations"])  # fmt: skip
    assert "within-domain z-scores" in fig._suptitle.get_text()
    assert "last 5 checkpoints" in fig._suptitle.get_text()
    ax = fig.axes[0]  # edit distance
    by_domain = {c.get_label(): c for c in ax.collections if c.get_label() in T.DOMAINS}
    assert set(by_domain) == set(T.DOMAINS)
    colours = {tuple(c.get_facecolor()[0]) for c in by_domain.values()}
    assert len(colours) == len(T.DOMAINS)
    math = points[(points["domain"] == "math") & points["in_window"]
                  & (points["predictor"] == "edit_distance")]  # fmt: skip
    z = lambda v: (v - v.mean()) / v.std(ddof=0)  # noqa: E731
    offsets = np.asarray(by_domain["math"].get_offsets())
    assert offsets[:, 0] == pytest.approx(z(math["x"].to_numpy()))
    assert offsets[:, 1] == pytest.approx(z(math["accuracy"].to_numpy()))
    pooled = stats.primary_rows(tables["correlations"])
    r2 = pooled[(pooled["domain"] == stats.POOLED)
                & (pooled["predictor"] == "edit_distance")]["r2"].iloc[0]  # fmt: skip
    assert ax.get_title().startswith(f"R² = {r2:.2f}")


def test_fig7_leaves_out_a_constant_domain_and_says_so(tables, monkeypatch):
    points = tables["points"].copy()
    points.loc[points["domain"] == "code", "accuracy"] = 0.5
    fig = drawn_figure(monkeypatch, correlation.fig7_metric_vs_accuracy, points, tables["fits"],
                       tables["correlations"])  # fmt: skip
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("code: accuracy constant over its window" in t for t in texts)
    labels = {c.get_label() for c in fig.axes[0].collections}
    assert "code" not in labels and "math" in labels


def test_table1_renders_the_configured_window(tables, monkeypatch, tmp_path):
    # the other window's rows first: the rendered cells must still be the configured window's
    reordered = tables["correlations"].sort_values("primary", kind="stable")
    fig = drawn_figure(monkeypatch, lambda c, png, pdf: correlation.table1_correlations(
        c, tmp_path / "t.csv", png, pdf), reordered)  # fmt: skip
    title = fig.axes[0].get_title()
    assert "last 5 checkpoints" in title and "within-domain z" in title
    primary = stats.primary_rows(reordered)
    # routing entropy (the last row) differs in sign between the fixture's two windows
    code = primary[(primary["domain"] == "code") & (primary["predictor"] == "routing_entropy")]
    cell = fig.axes[0].tables[0].get_celld()[(len(stats.PREDICTORS), 0)].get_text().get_text()
    assert cell.startswith(f"{code['pearson_r'].iloc[0]:+.2f}")


def test_degenerate_inputs_render_a_note_instead_of_failing(tables, tmp_path):
    no_cross = tables["edit_distance"][~tables["edit_distance"]["metric"].str.endswith("_cross")]
    pathways.fig12_cross_domain(no_cross, "math", "code", tmp_path / "a.png", tmp_path / "a.pdf")
    only_all = tables["edit_distance"][tables["edit_distance"]["group"] == "all"]
    pathways.fig13_entropy_vs_distance(
        only_all, tables["routing"], tmp_path / "b.png", tmp_path / "b.pdf"
    )
    grokking.fig2_matched_pairs(tables["loss_baselines"], tables["matches"].iloc[:0],
                                tables["group_accuracy"], "math", 4, tmp_path / "c.png",
                                tmp_path / "c.pdf")  # fmt: skip
    # a domain that does not grok, with no probe rows and no marked steps
    failing = tables["grokking"].assign(groks=False, reason="never fits", t_fit=pd.NA,
                                        t_gen50=pd.NA, t_gen50_spread=float("nan"))  # fmt: skip
    evaluated = checkpoint_test_accuracy(tables["aggregate"])
    lab_grokking.fig_lab_grokking(tables["probe"].iloc[:0], evaluated, failing, tmp_path / "d.png",
                                  tmp_path / "d.pdf")  # fmt: skip
    for name in "abcd":
        assert_written(tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")


@pytest.mark.parametrize(
    "setting, count, expected",
    [("auto", 2, [300, 500]), ("auto", 1, [500]), ([500, 200], 2, [200, 500]), (300, 1, [300])],
)
def test_resolve_groups(setting, count, expected):
    # fixture sizes per domain: t* 200 -> 12, 300 -> 13, 500 -> 15
    assert trends.resolve_groups(setting, T.groups_table(), count) == expected


def test_render_reads_named_inputs(tables, tmp_path):
    paths = {}
    for name in ("edit_distance", "groups", "generalization", "contamination", "probe",
                 "aggregate", "grokking"):  # fmt: skip
        paths[name] = tmp_path / f"{name}.parquet"
        tables[name].to_parquet(paths[name])
    args = {"groups": paths["groups"], "generalization": paths["generalization"],
            "contamination": paths["contamination"], "steps": T.STEPS,
            "png": tmp_path / "fig1.png", "pdf": tmp_path / "fig1.pdf"}  # fmt: skip
    render("fig1", args)
    assert_written(args["png"], args["pdf"])
    args = {"edit_distances": [paths["edit_distance"], paths["edit_distance"]],
            "thresholds": [0.6, 0.7], "png": tmp_path / "fig9.png", "pdf": tmp_path / "fig9.pdf"}  # fmt: skip
    render("fig9", args)
    assert_written(args["png"], args["pdf"])
    args = {name: paths[name] for name in ("probe", "aggregate", "grokking")}
    args.update(png=tmp_path / "lab.png", pdf=tmp_path / "lab.pdf")
    render("lab_grokking", args)
    assert_written(args["png"], args["pdf"])


def test_render_errors_name_the_problem(tmp_path):
    with pytest.raises(GrokpathError, match="figure 'fig3'"):
        render("fig3", {})
    with pytest.raises(GrokpathError, match="2 files for 1 thresholds"):
        render("fig9", {"edit_distances": ["a", "b"], "thresholds": [0.7], "png": "x", "pdf": "y"})
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"step": [1]}).to_parquet(bad)
    with pytest.raises(GrokpathError, match="missing column"):
        render("fig12", {"edit_distance": bad, "domain_a": "math", "domain_b": "code",
                         "png": tmp_path / "x.png", "pdf": tmp_path / "x.pdf"})  # fmt: skip
