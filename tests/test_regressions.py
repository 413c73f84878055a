"""Value tests for the code that joins the formulas into the paper's numbers (issue 12).

A mutation check found the formulas guarded but the joins not: each test here names the
deliberate bug ("mutant") it is there to catch. Every expected value is worked out by hand in
the comments or computed by an independent method (an explicit refit loop, numpy's lstsq),
never copied from the code's own output.
"""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from grokpath.analysis import stats
from grokpath.analysis import summary as S
from grokpath.analysis.trends import cumulative_generalized_fraction

THRESHOLDS = S.Thresholds(strong_r=0.8, weak_r=0.5, alpha=0.05)
METRIC_COLUMNS = ["step", "domain", "group", "layer", "metric", "value", "se", "n"]


def points_of(domains: dict[str, tuple], predictor: str = "edit_distance") -> pd.DataFrame:
    """POINT_COLUMNS of one predictor: {domain: (x, accuracy, rise_found)}, every point in both
    windows."""
    rows = []
    for domain, (x, accuracy, rise) in domains.items():
        for i, (xi, yi) in enumerate(zip(x, accuracy)):
            rows.append({"domain": domain, "step": 100 * (i + 1), "predictor": predictor,
                         "x": float(xi), "accuracy": float(yi), "rise_found": rise})  # fmt: skip
    frame = pd.DataFrame(rows).assign(window="paper", in_window=True, in_paper_window=True,
                                      in_rise_window=True, late_rise=False)  # fmt: skip
    return frame[stats.POINT_COLUMNS]


def loo_r2_by_refits(x, y) -> float:
    """1 - sum (y_i - prediction of a line fitted without i)^2 / sum (y_i - mean y)^2."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    press = 0.0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        press += (y[i] - (intercept + slope * x[i])) ** 2
    return 1 - press / np.sum((y - y.mean()) ** 2)


# ---------------------------------------------------------------- Table 1 rows

# Monotone but not linear: Spearman 1, Pearson below 1. In units of 0.1 accuracy, y = 1..4, 10:
# dx = -2..2, dy = -3, -2, -1, 0, 6; Sxy = 20, Sxx = 10, Syy = 50 -> r = 20 / sqrt(500) = 2/sqrt(5),
# R^2 = 0.8, slope 2 (0.2 in accuracy), intercept -2 (-0.2), residuals 1, 0, -1, -2, 2
# (MSE 10/5 = 2, i.e. 0.02 in accuracy^2). Leverages 1/5 + dx^2/10 = .6, .3, .2, .3, .6, so the
# PRESS residuals are 1/.4, 0, -1/.8, -2/.7, 2/.4 and LOO R^2 = 1 - PRESS / 50.
X5 = [1.0, 2.0, 3.0, 4.0, 5.0]
ACC5 = [0.1, 0.2, 0.3, 0.4, 1.0]
R5 = 2 / math.sqrt(5)
LOO5 = 1 - (2.5**2 + 0 + 1.25**2 + (2 / 0.7) ** 2 + 5**2) / 50


def table1_row(points: pd.DataFrame, domain: str, predictor: str = "edit_distance") -> pd.Series:
    table = stats.correlation_table(points, "memorized", 199, 0.95, seed=0)
    rows = table[(table["domain"] == domain) & (table["predictor"] == predictor)
                 & table["primary"]]  # fmt: skip
    assert len(rows) == 1
    return rows.iloc[0]


def test_table1_row_holds_pearson_spearman_r2_and_loo_r2_in_their_columns():
    """Mutants: R^2 swapped with LOO R^2; Spearman replaced by Pearson (row or bootstrap)."""
    row = table1_row(points_of({"a": (X5, ACC5, True)}), "a")
    assert loo_r2_by_refits(X5, ACC5) == pytest.approx(LOO5)  # the hand value, checked
    assert row["pearson_r"] == pytest.approx(R5)
    # t = r sqrt(n - 2) / sqrt(1 - r^2) = (2/sqrt5) sqrt3 / (1/sqrt5) = sqrt(12), 3 df
    assert row["pearson_p"] == pytest.approx(2 * scipy_stats.t.sf(math.sqrt(12), 3))
    assert row["spearman_rho"] == pytest.approx(1.0)
    assert row["spearman_p"] < 1e-6
    assert row["r2"] == pytest.approx(0.8)
    assert row["loo_r2"] == pytest.approx(LOO5)  # 0.18
    assert row["slope"] == pytest.approx(0.2) and row["intercept"] == pytest.approx(-0.2)
    assert row["mse"] == pytest.approx(0.02)
    assert row["n_checkpoints"] == 5 and row["steps"] == "100,200,300,400,500"
    # a resample of monotone data has Spearman 1 whenever it is defined (ties tie on both
    # sides); Pearson varies from resample to resample
    assert row["spearman_ci_low"] == pytest.approx(1.0)
    assert row["spearman_ci_high"] == pytest.approx(1.0)
    assert row["pearson_ci_low"] < 0.9


def test_pooled_row_is_within_domain_and_leaves_out_domains_without_a_rise():
    """Mutant: the pooled fit includes domains with no rise. Domain b is domain a rescaled, so
    the within-domain z-scores of both are those of a: r = 2/sqrt(5), R^2 = 0.8 over 10 points.
    Domain c runs the other way and has no rise: pooling it would pull r towards 0."""
    b = ([10 + 3 * v for v in X5], [0.5 + 0.25 * v for v in ACC5], True)
    c = (X5, ACC5[::-1], False)
    points = points_of({"a": (X5, ACC5, True), "b": b, "c": c})
    row = table1_row(points, stats.POOLED)
    z = lambda v: (np.asarray(v) - np.mean(v)) / np.std(v)  # noqa: E731
    zx, zy = np.concatenate([z(X5), z(X5)]), np.concatenate([z(ACC5), z(ACC5)])
    assert row["pearson_r"] == pytest.approx(R5)
    assert row["r2"] == pytest.approx(0.8)
    assert row["loo_r2"] == pytest.approx(loo_r2_by_refits(zx, zy))
    assert row["slope"] == pytest.approx(R5)  # z on z: the slope is r
    assert row["n_checkpoints"] == 10 and row["domains"] == "a,b"
    assert row["left_out"] == "c: no accuracy rise"
    # Fig 7's line is the same pooled fit
    bands = stats.pooled_fit_bands(points, 0.95)
    assert bands["x"].min() == pytest.approx(zx.min())
    assert bands["x"].max() == pytest.approx(zx.max())
    assert bands["fit"].to_numpy() == pytest.approx(R5 * bands["x"].to_numpy(), abs=1e-9)


def test_predictor_rows_read_their_own_metric():
    """Mutant: two metric columns swapped (e.g. consistency read from the paper formula's
    1 - x, or from the unnormalised mean cosine)."""
    steps = [100, 200, 300, 400, 500]
    accuracy = pd.DataFrame({"domain": "a", "step": steps, "accuracy": ACC5, "n_items": 10})
    accuracy = stats.accuracy_with_window(accuracy, 0.1, 0.05, 4)
    values = {  # every metric its own series; consistency follows X5, the others do not
        "consistency_norm_mean_cos": X5,
        "inconsistency_paper_formula": [1 - v for v in X5],
        "consistency_mean_cos": [5.0, 1.0, 4.0, 2.0, 3.0],
        "edit_distance_char": [3.0, 1.0, 2.0, 5.0, 4.0],
        "routing_entropy": [2.0, 2.5, 1.0, 1.5, 3.0],
        "training_loss": [4.0, 3.0, 2.0, 1.5, 1.2],
        "training_loss_ma": [4.0, 3.5, 3.0, 2.0, 1.5],
        "validation_loss": [1.0, 1.2, 1.1, 0.9, 0.8],
    }
    tables = {}
    for source, metrics in {
        "consistency": ["consistency_norm_mean_cos", "inconsistency_paper_formula",
                        "consistency_mean_cos"],
        "edit_distance": ["edit_distance_char"], "routing": ["routing_entropy"],
        "loss_baselines": ["training_loss", "training_loss_ma", "validation_loss"],
    }.items():  # fmt: skip
        rows = []
        for metric in metrics:
            group = "all" if metric == "validation_loss" else "memorized"
            rows += [(s, "a", group, "all", metric, v, 0.0, 3)
                     for s, v in zip(steps, values[metric])]  # fmt: skip
        tables[source] = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    points = stats.predictor_points(tables, accuracy, "memorized")
    table = stats.correlation_table(points, "memorized", 99, 0.95, seed=0)
    rows = table[(table["domain"] == "a") & table["primary"]].set_index("predictor")
    for predictor in stats.PREDICTORS:
        expected = scipy_stats.pearsonr(values[predictor.metric], ACC5)[0]
        assert rows.loc[predictor.name, "pearson_r"] == pytest.approx(expected), predictor.name
    assert rows.loc["consistency", "pearson_r"] == pytest.approx(R5)


def test_nested_f_test_restricts_to_the_loss():
    """Mutant: loss and metric swapped in the nested F-test. r2_loss must be the R^2 of
    accuracy on the loss alone (= r(accuracy, loss)^2 for one regressor)."""
    accuracy = np.array([0.1, 0.15, 0.3, 0.35, 0.6, 0.7])
    loss = np.array([3.0, 2.0, 2.2, 1.5, 1.4, 1.0])
    metric = np.array([5.0, 4.5, 3.0, 3.2, 1.0, 0.5])
    frames = [
        points_of({"a": (loss, accuracy, True)}, "training_loss"),
        points_of({"a": (metric, accuracy, True)}, "edit_distance"),
    ]
    nested = stats.nested_f_tests(pd.concat(frames, ignore_index=True), "training_loss")
    row = nested[(nested["domain"] == "a") & (nested["metric"] == "edit_distance")].iloc[0]
    r2_loss = np.corrcoef(accuracy, loss)[0, 1] ** 2
    design = np.column_stack([np.ones(6), loss, metric])
    residual = accuracy - design @ np.linalg.lstsq(design, accuracy, rcond=None)[0]
    r2_full = 1 - residual @ residual / np.sum((accuracy - accuracy.mean()) ** 2)
    f = (r2_full - r2_loss) / ((1 - r2_full) / (6 - 3))
    assert row["r2_loss"] == pytest.approx(r2_loss)
    assert row["r2_loss_metric"] == pytest.approx(r2_full)
    assert row["f"] == pytest.approx(f)
    assert row["p"] == pytest.approx(scipy_stats.f.sf(f, 1, 3))
    assert (row["df_num"], row["df_denom"], row["n_checkpoints"]) == (1, 3, 6)
    assert np.corrcoef(accuracy, metric)[0, 1] ** 2 != pytest.approx(r2_loss, abs=0.01)


# ---------------------------------------------------------------- Fig 1


def test_cumulative_generalized_fraction_counts_the_step_itself():
    """Mutant: `<=` -> `<`. Items generalized at 100, 200, 200 and never: by step 100 one of
    four, by 200 three of four; an item generalized at step s counts at s."""
    table = pd.DataFrame({"domain": "a", "doc_id": [0, 1, 2, 3],
                          "gen_step": pd.array([100, 200, 200, None], dtype="Int64")})  # fmt: skip
    curve = cumulative_generalized_fraction(table, [50, 100, 200, 300])
    assert curve["fraction"].tolist() == [0.0, 0.25, 0.75, 0.75]
    assert curve["step"].tolist() == [50, 100, 200, 300]


# ---------------------------------------------------------------- Min-K%++

# Bigram model over 3 tokens: after token t the next-token distribution puts 0.5 on t and 0.25 on
# each other token. log p is then log .5 or log .25 with probability 1/2 each: mu is their mean,
# sigma half their gap, so repeating the token scores +1 and changing it scores -1.
BIGRAM = np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.25, 0.25, 0.5]])


class BigramModel:
    def parameters(self):
        import torch

        return iter([torch.zeros(1)])

    def __call__(self, input_ids, attention_mask):
        import torch

        logits = torch.log(torch.tensor(BIGRAM, dtype=torch.float32))[input_ids]
        return SimpleNamespace(logits=logits)


class ListTokenizer:
    """Texts are space-separated token ids; padding uses id 2."""

    pad_token_id = 2

    def __call__(self, text, truncation=False, max_length=None):
        return {"input_ids": [int(t) for t in text.split()]}


def test_min_k_plus_plus_never_scores_padding():
    """Mutant: padding tokens scored. Batched with a longer text, "1 0" is right-padded to
    1 0 2 2 2; its one scored token (1 -> 0) scores -1, so Min-K%++ at k = 1 is -1. Scoring the
    padding would add 0 -> 2 (-1), 2 -> 2 (+1), 2 -> 2 (+1): mean 0."""
    from grokpath.evaluation import contamination as cm

    texts = ["0 0 1 1 2", "1 0"]  # 0->0 +1, 0->1 -1, 1->1 +1, 1->2 -1
    together = cm.score_texts(BigramModel(), ListTokenizer(), texts, k=1.0, batch_size=2)
    assert together == [(pytest.approx(0.0, abs=1e-6), 4), (pytest.approx(-1.0), 1)]
    lowest_half = cm.score_texts(BigramModel(), ListTokenizer(), texts, k=0.5, batch_size=2)
    assert lowest_half[0] == (pytest.approx(-1.0), 4)  # the two -1 of four scores


# ---------------------------------------------------------------- summary verdicts


def inputs(**tables) -> S.SummaryInputs:
    """SummaryInputs with empty tables except those given."""
    empty = pd.DataFrame()
    optional = ("threshold_ablation", "eps_ablation", "delta_ablation", "grokking")
    fields = {f.name: empty for f in dataclasses.fields(S.SummaryInputs) if f.name not in optional}
    fields.update(run="test", fig4_groups=[], fig5_group=None, fig6_groups=[], fig2_domain="math",
                  cross_domains=("math", "code"), delta=0.05)  # fmt: skip
    fields.update(tables)
    return S.SummaryInputs(**fields)


def metric_table(metric: str, series: dict[tuple[str, str, str], list[float]],
                 steps=(100, 200, 300, 400, 500)) -> pd.DataFrame:  # fmt: skip
    """Tidy rows: {(domain, group, layer): values over steps}."""
    rows = [(s, d, g, l, metric, v, 0.0, 3) for (d, g, l), values in series.items()
            for s, v in zip(steps, values)]  # fmt: skip
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


# Fig 1: steps 100-400; items generalized at 300, 400, 400 and never: the fraction reaches 3/4,
# half of that (3/8) first at 400.
def leap_inputs(t_stars: dict[int, int]) -> S.SummaryInputs:
    generalization = pd.DataFrame({"task": "t", "domain": "math", "doc_id": [0, 1, 2, 3],
                                   "gen_step": pd.array([300, 400, 400, None], dtype="Int64"),
                                   "generalized": [True, True, True, False]})  # fmt: skip
    contamination = pd.DataFrame({"domain": "math", "doc_id": [0, 1, 2, 3],
                                  "contaminated": False})  # fmt: skip
    groups = pd.DataFrame({"domain": "math", "t_star": list(t_stars),
                           "n_samples": list(t_stars.values())})  # fmt: skip
    accuracy = pd.DataFrame({"domain": "math", "step": [100, 200, 300, 400]})
    return inputs(generalization=generalization, contamination=contamination, groups=groups,
                  accuracy=accuracy)  # fmt: skip


def test_leap_after_memorization_verdict():
    # 5 samples at t* 100, 1 at 200: half (3) memorized by 100 < 400 -> holds
    assert S.leap_after_memorization(leap_inputs({100: 5, 200: 1})).verdict == S.HOLDS
    # half memorized by 400, the step half of the items have generalized by: not after -> fails
    assert S.leap_after_memorization(leap_inputs({100: 1, 400: 5})).verdict == S.FAILS
    no_groups = dataclasses.replace(leap_inputs({100: 1}), groups=pd.DataFrame(
        {"domain": [], "t_star": [], "n_samples": []}))  # fmt: skip
    assert S.leap_after_memorization(no_groups).verdict == S.UNMEASURABLE


def matches(domain_delays: dict[str, list[tuple[int, int]]]) -> pd.DataFrame:
    rows = [{"domain": d, "train_group": t, "test_group": t + delay, "similarity": 0.5,
             "delay": delay, "n_train": 3, "n_test": 3}
            for d, pairs in domain_delays.items() for t, delay in pairs]  # fmt: skip
    return pd.DataFrame(rows, columns=["domain", "train_group", "test_group", "similarity", "delay",
                                       "n_train", "n_test"])  # fmt: skip


def test_positive_delays_verdict():
    def verdict(delays):
        return S.positive_delays(inputs(matches=matches({"math": delays}))).verdict

    assert verdict([(100, 100), (200, -50), (300, 200)]) == S.HOLDS  # median +100
    assert verdict([(100, -100), (200, 50), (300, -200)]) == S.FAILS  # median -100
    assert verdict([(100, -10), (200, 0), (300, 10)]) == S.FAILS  # median 0 is not positive
    assert S.positive_delays(inputs(matches=matches({}))).verdict == S.UNMEASURABLE


def test_delay_grows_verdict():
    """Mutant: the verdict flipped. Delays 50, 100, 400 for t* 100, 200, 300: Spearman +1
    (Pearson would be 0.92); the code domain's shrinking delays are not the Fig 2 domain's."""
    growing = [(100, 50), (200, 100), (300, 400)]
    shrinking = [(100, 400), (200, 100), (300, 50)]
    claim = S.delay_grows(inputs(matches=matches({"math": growing, "code": shrinking})))
    assert claim.verdict == S.HOLDS
    assert "Spearman(t*, delay) +1.00" in claim.ours
    assert "100->150, 200->300, 300->700" in claim.ours
    claim = S.delay_grows(inputs(matches=matches({"math": shrinking, "code": growing})))
    assert claim.verdict == S.FAILS and "-1.00" in claim.ours
    two = inputs(matches=matches({"math": growing[:2], "code": growing}))
    assert S.delay_grows(two).verdict == S.UNMEASURABLE


def test_rise_then_fall_verdict():
    def verdict(groups: dict[int, list[float]]):
        series = {("all", str(g), "all"): v for g, v in groups.items()}
        table = metric_table(S.EDIT_DISTANCE, series)
        return S.rise_then_fall(inputs(edit_distance=table, fig4_groups=list(groups))).verdict

    concave, convex = [1.0, 3.0, 4.0, 3.0, 1.0], [4.0, 2.0, 1.0, 2.0, 4.0]
    assert verdict({200: concave}) == S.HOLDS
    assert verdict({200: convex}) == S.FAILS
    assert verdict({200: concave, 300: convex}) == S.FAILS  # one of two is not a majority
    assert verdict({200: concave, 300: concave, 400: convex}) == S.HOLDS
    assert S.rise_then_fall(inputs(edit_distance=metric_table(S.EDIT_DISTANCE, {}),
                                   fig4_groups=[200])).verdict == S.UNMEASURABLE  # fmt: skip


FALLING = [9.0, 10.0, 8.0, 6.0, 4.0]  # from t* = 200 on: 10, 8, 6, 4
RISING = [1.0, 1.0, 2.0, 3.0, 4.0]


def trend_verdict(table_metric, series, falling: bool) -> str:
    table = metric_table(table_metric, series)
    return S.trend_after_memorization(table, table_metric, [200], falling, "Fig", "c", "p").verdict


def test_trend_after_memorization_verdicts():
    # Fig 4: distance falls after t* in each domain panel (not domain "all" or "a|b")
    assert trend_verdict(S.EDIT_DISTANCE, {("math", "200", "all"): FALLING}, True) == S.HOLDS
    assert trend_verdict(S.EDIT_DISTANCE, {("math", "200", "all"): RISING}, True) == S.FAILS
    # Fig 6: consistency rises after t*
    assert trend_verdict(S.CONSISTENCY, {("math", "200", "all"): RISING}, False) == S.HOLDS
    assert trend_verdict(S.CONSISTENCY, {("math", "200", "all"): FALLING}, False) == S.FAILS
    # one of two domains is not a majority; pooled domains do not count
    split = {("math", "200", "all"): FALLING, ("code", "200", "all"): RISING,
             ("all", "200", "all"): FALLING, ("code|math", "200", "all"): FALLING}  # fmt: skip
    assert trend_verdict(S.EDIT_DISTANCE, split, True) == S.FAILS
    # fewer than three checkpoints from t* on: not measurable
    table = metric_table(S.EDIT_DISTANCE, {("math", "400", "all"): FALLING})
    claim = S.trend_after_memorization(table, S.EDIT_DISTANCE, [400], True, "Fig", "c", "p")
    assert claim.verdict == S.UNMEASURABLE


def test_build_claims_reads_fig4_and_fig6_the_right_way_round():
    distance = metric_table(S.EDIT_DISTANCE, {("math", "200", "all"): FALLING})
    consistency = metric_table(S.CONSISTENCY, {("math", "200", "all"): RISING})
    found = {(c.figure, c.claim): c.verdict for c in S.build_claims(full_inputs(
        edit_distance=distance, consistency=consistency, fig4_groups=[200], fig6_groups=[200]),
        THRESHOLDS)}  # fmt: skip
    assert found[("Fig 4", "edit distance falls after memorization (per domain)")] == S.HOLDS
    assert found[("Fig 6", "consistency rises after memorization (per domain)")] == S.HOLDS


def loss_flat_verdict(after: list[float]) -> str:
    """Training loss of group 200 (domain and layer "all"): 2.0 at 100, then `after` from 200."""
    table = metric_table(S.TRAINING_LOSS, {("all", "200", "all"): [2.0, *after]})
    return S.loss_flat_after_memorization(inputs(loss_baselines=table, fig4_groups=[200])).verdict


def test_loss_flat_after_memorization_verdict():
    """Mutant: the verdict flipped. The change from t* to the last step must stay within
    delta = 0.05 either way; the drop before t* does not count."""
    assert loss_flat_verdict([0.50, 0.52, 0.51, 0.53]) == S.HOLDS  # +0.03
    assert loss_flat_verdict([0.50, 0.49, 0.48, 0.47]) == S.HOLDS  # -0.03
    assert loss_flat_verdict([0.50, 0.60, 0.65, 0.70]) == S.FAILS  # +0.20
    assert loss_flat_verdict([0.50, 0.40, 0.35, 0.30]) == S.FAILS  # -0.20
    table = metric_table(S.TRAINING_LOSS, {("all", "300", "all"): [2.0, 0.5, 0.5, 0.5, 0.5]})
    claim = S.loss_flat_after_memorization(inputs(loss_baselines=table, fig4_groups=[200]))
    assert claim.verdict == S.UNMEASURABLE  # no rows for the shown group


def layer_verdict(changes: list[float], group: int | None = 300) -> str:
    """Per-layer distance of group 300 (domain "all"): 5 up to t* = 300, then 5 + change."""
    series = {("all", "300", str(layer)): [5.0, 5.0, 5.0, 5.0 + c / 2, 5.0 + c]
              for layer, c in enumerate(changes)}  # fmt: skip
    table = metric_table(S.EDIT_DISTANCE, series)
    return S.early_layers_drop(inputs(edit_distance=table, fig5_group=group)).verdict


def test_early_layers_drop_verdict():
    assert layer_verdict([-3.0, -1.0, -0.5, 1.0]) == S.HOLDS
    assert layer_verdict([-0.5, -1.0, -3.0, 1.0]) == S.FAILS  # largest drop in a late layer
    assert layer_verdict([-3.0, -1.0, -0.5, -0.2]) == S.FAILS  # the last layer falls too
    assert layer_verdict([-3.0, -1.0, -0.5, 1.0], group=None) == S.UNMEASURABLE


def correlation_rows(rows: list[tuple]) -> pd.DataFrame:
    """(domain, predictor, pearson_r, r2, rise_found, primary) -> Table 1 rows."""
    frame = pd.DataFrame(rows, columns=["domain", "predictor", "pearson_r", "r2", "rise_found",
                                        "primary"])  # fmt: skip
    return frame.assign(pearson_ci_low=frame["pearson_r"] - 0.1,
                        pearson_ci_high=frame["pearson_r"] + 0.1)  # fmt: skip


def table1_verdict(r_a: float, r_b: float, predictor="edit_distance", sign=-1) -> str:
    rows = correlation_rows([
        ("a", predictor, r_a, r_a**2, True, True), ("b", predictor, r_b, r_b**2, True, True),
        # none of these may count: no rise, the other window, the pooled row
        ("c", predictor, -sign * 0.1, 0.01, False, True),
        ("a", predictor, -sign * 0.1, 0.01, True, False),
        (stats.POOLED, predictor, -sign * 0.1, 0.01, True, True),
    ])  # fmt: skip
    return S.table1_sign(inputs(correlations=rows), predictor, sign, THRESHOLDS).verdict


def test_table1_sign_verdicts():
    assert table1_verdict(-0.9, -0.95) == S.HOLDS
    assert table1_verdict(-0.9, -0.5) == S.FAILS  # |r| below strong_r
    assert table1_verdict(-0.9, 0.95) == S.FAILS  # wrong sign
    assert table1_verdict(0.9, 0.85, "consistency", +1) == S.HOLDS
    assert table1_verdict(0.9, -0.85, "consistency", +1) == S.FAILS


def pathway_and_loss_rows(pathway_r: float, loss_r: float) -> pd.DataFrame:
    rows = [(d, p, pathway_r, pathway_r**2, True, True)
            for d in ("a", "b") for p in ("edit_distance", "consistency")]  # fmt: skip
    rows += [(d, p, loss_r, loss_r**2, True, True) for d in ("a", "b") for p in S.LOSS_PREDICTORS]
    rows += [("c", "training_loss", -0.99, 0.98, False, True)]  # no rise: not counted
    return correlation_rows(rows)


def test_loss_is_weaker_verdict():
    def verdict(pathway_r, loss_r):
        rows = pathway_and_loss_rows(pathway_r, loss_r)
        return S.loss_is_weaker(inputs(correlations=rows)).verdict

    assert verdict(-0.9, 0.5) == S.HOLDS
    assert verdict(-0.5, 0.9) == S.FAILS


def test_small_moe_correlations_verdict():
    strong = pathway_and_loss_rows(-0.9, 0.1)  # loss rows do not count here
    assert S.small_moe_correlations(inputs(correlations=strong), THRESHOLDS).verdict == S.HOLDS
    weak = strong.copy()
    weak.loc[(weak["domain"] == "b") & (weak["predictor"] == "consistency"), "pearson_r"] = 0.7
    assert S.small_moe_correlations(inputs(correlations=weak), THRESHOLDS).verdict == S.FAILS


def fig7_verdict(r2: dict[str, float]) -> str:
    rows = [(stats.POOLED, p, -math.sqrt(v) if np.isfinite(v) else v, v, True, True)
            for p, v in r2.items()]  # fmt: skip
    rows += [(stats.POOLED, p, 0.0, 0.99, True, False) for p in r2]  # the other window
    return S.fig7_r2(inputs(correlations=correlation_rows(rows))).verdict


def test_fig7_r2_verdict():
    losses = {"training_loss": 0.5, "training_loss_ma": 0.7, "validation_loss": 0.3}
    assert fig7_verdict({"edit_distance": 0.9, "consistency": 0.8, **losses}) == S.HOLDS
    # both pathway metrics must beat the best loss row (0.7)
    assert fig7_verdict({"edit_distance": 0.9, "consistency": 0.65, **losses}) == S.FAILS
    assert fig7_verdict({"edit_distance": 0.6, "consistency": 0.8, **losses}) == S.FAILS
    assert fig7_verdict({"edit_distance": np.nan, "consistency": 0.8, **losses}) == S.UNMEASURABLE


def test_metric_adds_to_loss_verdict():
    def verdict(p_distance: float) -> str:
        nested = pd.DataFrame({
            "domain": [stats.POOLED, stats.POOLED, "a"],
            "metric": ["edit_distance", "consistency", "edit_distance"],
            "r2_loss": 0.5, "r2_loss_metric": 0.6, "f": 3.0, "p": [p_distance, 0.001, 0.001],
        })  # fmt: skip
        return S.metric_adds_to_loss(inputs(nested=nested), THRESHOLDS).verdict

    assert verdict(0.01) == S.HOLDS
    assert verdict(0.2) == S.FAILS  # the pooled distance row decides, not consistency or domain a
    assert verdict(np.nan) == S.UNMEASURABLE


def distance_groups(slopes: dict[int, float]) -> pd.DataFrame:
    """Global per-group distance, 5 until t* and then changing by `slope` per checkpoint."""
    steps = [100, 200, 300, 400, 500]
    series = {("all", str(t), "all"): [5.0 + (slope * (s - t) / 100 if s >= t else 0.0)
                                       for s in steps] for t, slope in slopes.items()}  # fmt: skip
    return metric_table(S.EDIT_DISTANCE, series, steps)


def test_ablation_claim_verdict():
    def verdict(tables):
        return S.ablation_claim(tables, "Fig 9", "threshold", "same").verdict

    assert verdict({"0.5": distance_groups({100: -1, 200: -1}),
                    "0.7": distance_groups({100: -1, 200: -1, 300: 1})}) == S.HOLDS  # fmt: skip
    # one setting with 1 of 2 groups falling is not a majority
    assert verdict({"0.5": distance_groups({100: -1, 200: -1}),
                    "0.7": distance_groups({100: -1, 200: 1})}) == S.FAILS  # fmt: skip
    assert verdict({}) == S.UNMEASURABLE
    assert verdict({"0.5": distance_groups({400: -1})}) == S.UNMEASURABLE  # 2 points after t*


def cross_verdict(values: list[float]) -> str:
    steps = list(range(100, 100 * (len(values) + 1), 100))
    table = metric_table(f"{S.EDIT_DISTANCE}_cross", {("code|math", "all", "all"): values}, steps)
    return S.cross_domain_no_trend(inputs(edit_distance=table), THRESHOLDS).verdict


def test_cross_domain_no_trend_verdict():
    # Spearman with step: 1 (p ~ 0) for a steady rise; -1/42 (p ~ 0.96) for this zigzag
    assert cross_verdict([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]) == S.FAILS
    assert cross_verdict([5.0, 3.0, 6.0, 2.0, 7.0, 4.0, 8.0, 1.0]) == S.HOLDS
    assert cross_verdict([]) == S.UNMEASURABLE


def entropy_verdict(entropy: list[float]) -> str:
    """Per-layer sets of math group 200 at five steps: distance 1..5 against `entropy`."""
    distance = metric_table(S.EDIT_DISTANCE, {("math", "200", "0"): [1.0, 2.0, 3.0, 4.0, 5.0]})
    routing = metric_table("routing_entropy", {("math", "200", "0"): entropy})
    return S.entropy_is_not_distance(inputs(edit_distance=distance, routing=routing),
                                     THRESHOLDS).verdict  # fmt: skip


def test_entropy_is_not_distance_verdict():
    assert entropy_verdict([2.0, 1.0, 3.0, 3.0, 1.0]) == S.HOLDS  # r = 0
    assert entropy_verdict([1.0, 2.1, 2.9, 4.2, 5.0]) == S.FAILS  # r ~ 1
    assert entropy_verdict([5.0, 4.1, 2.9, 2.2, 1.0]) == S.FAILS  # r ~ -1: |r| counts


def test_theory_toy_claim_verdict():
    distance = np.arange(10.0)
    wiggle = np.array([0.3, -0.2, 0.1, -0.3, 0.2, -0.1, 0.3, -0.2, 0.1, -0.2])

    def verdict(effective_dim):
        toy = pd.DataFrame({"edit_distance": distance, "effective_dim": effective_dim})
        return S.theory_toy_claim(inputs(toy=toy), THRESHOLDS).verdict

    assert verdict(40 + 2 * distance + wiggle) == S.HOLDS
    assert verdict(40 - 2 * distance + wiggle) == S.FAILS  # significant, wrong sign
    assert verdict(40 + 0.01 * distance + wiggle) == S.FAILS  # right sign, not significant


def test_lora_claim_is_not_measurable():
    assert S.lora_rank_claim().verdict == S.UNMEASURABLE


def full_inputs(**tables) -> S.SummaryInputs:
    """Inputs every claim can read (each finds no data and says so), plus `tables`."""
    metric = metric_table("none", {})
    base = dict(
        correlations=correlation_rows([]),
        nested=pd.DataFrame(columns=stats.NESTED_COLUMNS),
        accuracy=pd.DataFrame({"domain": ["math"], "step": [100]}),
        groups=pd.DataFrame({"domain": [], "t_star": [], "n_samples": []}),
        generalization=pd.DataFrame({"task": [], "domain": [], "doc_id": [], "gen_step": [],
                                     "generalized": []}),  # fmt: skip
        contamination=pd.DataFrame({"domain": [], "doc_id": [], "contaminated": []}),
        matches=matches({}), edit_distance=metric, consistency=metric, routing=metric,
        loss_baselines=metric, toy=pd.DataFrame({"edit_distance": [], "effective_dim": []}),
    )  # fmt: skip
    return inputs(**{**base, **tables})


def test_build_claims_lists_every_claim_once():
    claims = S.build_claims(full_inputs(), THRESHOLDS)
    assert len(claims) == 21
    assert len({(c.figure, c.claim) for c in claims}) == 21
    assert {c.verdict for c in claims} == {S.UNMEASURABLE}


# ---------------------------------------------------------------- loss baselines: the table itself


def test_loss_baselines_layout_single_sample_se_and_unknown_samples():
    """Training samples a (t* 100), b (never) and x (absent from the memorization table, e.g.
    not extracted), one validation sample v; window 2. x counts in "all" only; a one-sample group
    has se 0; the moving average has no se; every row is layer "all"; a fresh 0..n-1 index."""
    from grokpath.loss.baselines import COLUMNS, loss_baselines

    rows = [("math", s, split, step, loss, 4) for s, split, values in (
        ("a", "train", [1.0, 2.0]), ("b", "train", [3.0, 5.0]), ("x", "train", [7.0, 9.0]),
        ("v", "valid", [4.0, 6.0])) for step, loss in zip([100, 200], values)]  # fmt: skip
    columns = ["domain", "sample_id", "split", "step", "loss", "n_tokens"]
    losses = pd.DataFrame(rows, columns=columns)
    memorization = pd.DataFrame({"domain": "math", "sample_id": ["a", "b"],
                                 "t_star": pd.array([100, None], dtype="Int64"),
                                 "memorized": [True, False]})  # fmt: skip
    table = loss_baselines(losses, memorization, window=2)
    assert list(table.columns) == COLUMNS and table.index.tolist() == list(range(len(table)))
    assert (table["layer"] == "all").all() and table["n"].dtype == "int64"
    math = table[table["domain"] == "math"].set_index(["metric", "group", "step"])
    assert math.loc[("training_loss", "all", 100), "value"] == pytest.approx(11 / 3)  # 1, 3, 7
    assert math.loc[("training_loss", "all", 100), "n"] == 3
    assert math.loc[("training_loss", "memorized", 200), ["value", "n", "se"]].tolist() == [2, 1, 0]
    assert math.loc[("training_loss", "100", 200), "value"] == 2.0
    # moving average over 2 checkpoints: (11/3 + 16/3) / 2, with 16/3 = (2 + 5 + 9) / 3
    assert math.loc[("training_loss_ma", "all", 200), "value"] == pytest.approx(27 / 6)
    assert table.loc[table["metric"] == "training_loss_ma", "se"].isna().all()
    assert math.loc[("validation_loss", "all", 200), ["value", "n"]].tolist() == [6, 1]
    assert set(table["group"]) == {"all", "memorized", "100"}
