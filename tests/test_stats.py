"""grokpath.analysis.stats against values computed by hand or by scipy/numpy directly on fixed data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

import analysis_tables as T
from grokpath.analysis import stats
from grokpath.errors import GrokpathError
from test_regressions import loo_r2_by_refits

X = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
Y = np.array([0.10, 0.25, 0.20, 0.45, 0.60, 0.58])


# ---------------------------------------------------------------- accuracy and its window


def test_domain_accuracy_drops_contaminated_items():
    items = pd.DataFrame({
        "task": "t", "domain": ["a"] * 6 + ["b"] * 2, "doc_id": [0, 1, 2, 0, 1, 2, 0, 0],
        "step": [10, 10, 10, 20, 20, 20, 10, 20],
        "correct": [True, False, True, True, True, False, False, True],
        "score": 0.0, "prediction": "",
    })  # fmt: skip
    contamination = pd.DataFrame({
        "domain": ["a", "a", "a", "b"], "doc_id": [0, 1, 2, 0], "task": "t",
        "min_k_pp": 0.0, "n_tokens": 1, "contaminated": [False, False, True, False],
    })  # fmt: skip
    table = stats.domain_accuracy(items, contamination).set_index(["domain", "step"])
    # domain a keeps doc 0 and 1: step 10 -> (1 + 0) / 2, step 20 -> (1 + 1) / 2
    assert table.loc[("a", 10), "accuracy"] == 0.5
    assert table.loc[("a", 20), "accuracy"] == 1.0
    assert table.loc[("a", 10), "n_items"] == 2
    assert table.loc[("b", 20), "accuracy"] == 1.0


def test_domain_accuracy_fails_when_everything_is_contaminated():
    items = pd.DataFrame({"task": "t", "domain": "a", "doc_id": [0], "step": [1], "correct": [True],
                          "score": 0.0, "prediction": ""})  # fmt: skip
    contamination = pd.DataFrame({"domain": ["a"], "doc_id": [0], "task": "t", "min_k_pp": 0.0,
                                  "n_tokens": 1, "contaminated": [True]})  # fmt: skip
    with pytest.raises(GrokpathError, match="no test items left"):
        stats.domain_accuracy(items, contamination)


@pytest.mark.parametrize(
    "accuracy, rise_fraction, min_gain, min_checkpoints, start, rise_found",
    [
        # level = 0 + 0.1 * 0.9 = 0.09: from index 2 on every value is above it
        ([0.0, 0.0, 0.1, 0.5, 0.8, 0.9], 0.1, 0.05, 2, 2, True),
        # the same, but at least 5 checkpoints: extended back to index 1
        ([0.0, 0.0, 0.1, 0.5, 0.8, 0.9], 0.1, 0.05, 5, 1, True),
        # an early spike that falls back does not start the window: the rise is sustained from 3
        ([0.0, 0.5, 0.05, 0.6, 0.7], 0.1, 0.05, 2, 3, True),
        # level = 0.2 + 0.5 * 0.6 = 0.5: index 3 (0.6) is the first that stays above
        ([0.2, 0.3, 0.45, 0.6, 0.7, 0.8], 0.5, 0.05, 2, 3, True),
        # a gain of 0.03 is below min_gain: no rise, every checkpoint
        ([0.50, 0.52, 0.51, 0.53], 0.1, 0.05, 2, 0, False),
        # level 0.45: the rise starts at index 2, but 4 checkpoints are wanted: all of them
        ([0.0, 0.1, 0.5, 0.9], 0.5, 0.05, 4, 0, True),
        # more checkpoints wanted than there are: still from the first, not before it
        ([0.0, 0.1, 0.5, 0.9], 0.5, 0.05, 6, 0, True),
    ],
)
def test_sustained_rise_window(
    accuracy, rise_fraction, min_gain, min_checkpoints, start, rise_found
):
    window = stats.sustained_rise_window(
        np.array(accuracy), rise_fraction, min_gain, min_checkpoints
    )
    assert window == stats.Window(start, rise_found)


def test_accuracy_with_window_flags_rows_per_domain():
    accuracy = pd.DataFrame({
        "domain": ["a"] * 4 + ["b"] * 4, "step": [1, 2, 3, 4] * 2,
        "accuracy": [0.0, 0.0, 0.5, 0.9, 0.4, 0.4, 0.41, 0.4], "n_items": 10,
    })  # fmt: skip
    table = stats.accuracy_with_window(accuracy, 0.1, 0.05, 2, window="rise")
    assert list(table.columns) == stats.ACCURACY_COLUMNS
    a, b = table[table["domain"] == "a"], table[table["domain"] == "b"]
    assert a["in_window"].tolist() == a["in_rise_window"].tolist() == [False, False, True, True]
    assert a["rise_found"].all() and not b["rise_found"].any()
    assert b["in_window"].all()
    assert (table["window"] == "rise").all()
    # fewer than 5 checkpoints: the paper window holds all of them
    assert table["in_paper_window"].all()


def one_domain(accuracy: list[float], **window) -> pd.DataFrame:
    steps = [100 * (i + 1) for i in range(len(accuracy))]
    frame = pd.DataFrame({"domain": "a", "step": steps, "accuracy": accuracy, "n_items": 10})
    return stats.accuracy_with_window(frame, **{"rise_fraction": 0.1, "min_gain": 0.05,
                                                "min_checkpoints": 4, **window})  # fmt: skip


@pytest.mark.parametrize(
    "accuracy, late_rise, rise_found",
    [
        # level 0 + 0.1 x 0.9 = 0.09: the rise starts at step 600, after the paper window's
        # first step (400)
        ([0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.5, 0.9], True, True),
        # the rise starts at step 200, before the paper window
        ([0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9], False, True),
        # the rise starts at step 400, the paper window's first step: not after it
        ([0.0, 0.0, 0.0, 0.2, 0.3, 0.5, 0.6, 0.9], False, True),
        # no rise (gain 0.02 < min_gain): nothing to start late
        ([0.5, 0.51, 0.5, 0.52, 0.5, 0.51, 0.5, 0.5], False, False),
    ],
)
def test_paper_window_is_the_last_five_steps_and_flags_a_late_rise(
    accuracy, late_rise, rise_found
):
    table = one_domain(accuracy)
    assert table.loc[table["in_window"], "step"].tolist() == [400, 500, 600, 700, 800]
    assert table.loc[table["in_paper_window"], "step"].tolist() == [400, 500, 600, 700, 800]
    assert (table["window"] == "paper").all()
    assert (table["late_rise"] == late_rise).all() and (table["rise_found"] == rise_found).all()


def test_late_rise_uses_the_rise_before_the_min_checkpoints_extension():
    # the rise starts at 700; min_checkpoints 6 extends the rise window back to 300, but the
    # paper window (400..800) still holds two pre-rise checkpoints
    table = one_domain([0.0] * 6 + [0.5, 0.9], min_checkpoints=6)
    assert table.loc[table["in_rise_window"], "step"].tolist() == [300, 400, 500, 600, 700, 800]
    assert table["late_rise"].all()


def test_paper_window_with_fewer_than_five_checkpoints_is_all_of_them():
    table = one_domain([0.0, 0.2, 0.6])
    assert table["in_window"].all()
    # the first checkpoint lies below the rise's level by construction: a rise starts after it
    assert table["late_rise"].all()


def test_unknown_window_is_refused():
    with pytest.raises(GrokpathError, match="window"):
        one_domain([0.0, 0.5, 0.9], window="last3")


@pytest.mark.parametrize(
    "accuracy, rise_fraction, min_gain, start",
    [
        # gain 0.25 equals min_gain: "below min_gain" is no rise, so this is one
        ([0.0, 0.25], 0.5, 0.25, 1),
        # level 0 + 0.5 x 1 = 0.5 exactly: "stays >= level" includes the checkpoint at 0.5
        ([0.0, 0.5, 1.0], 0.5, 0.1, 1),
        # the rise collapses at the last checkpoint (0.0 < level 0.09): nothing stays above the
        # level, so the window shrinks to the last checkpoint
        ([0.0, 0.9, 0.0], 0.1, 0.05, 2),
        # a single checkpoint has no gain: no rise
        ([0.4], 0.1, 0.05, None),
    ],
)
def test_sustained_rise_start_edge_cases(accuracy, rise_fraction, min_gain, start):
    assert stats.sustained_rise_start(np.array(accuracy), rise_fraction, min_gain) == start


def test_sustained_rise_start_refuses_an_empty_series():
    with pytest.raises(GrokpathError, match="accuracy window: no checkpoints"):
        stats.sustained_rise_start(np.array([]), 0.1, 0.05)


def test_accuracy_with_window_sorts_rows_by_domain_and_step():
    # the rows arrive domain b first and steps descending; the table must not depend on that
    accuracy = pd.DataFrame({
        "domain": ["b", "b", "b", "a", "a"], "step": [3, 2, 1, 2, 1],
        "accuracy": [0.9, 0.5, 0.0, 0.8, 0.1], "n_items": 10,
    })  # fmt: skip
    table = stats.accuracy_with_window(accuracy, 0.1, 0.05, 2)
    assert table["domain"].tolist() == ["a", "a", "b", "b", "b"]
    assert table["step"].tolist() == [1, 2, 1, 2, 3]
    assert table["accuracy"].tolist() == [0.1, 0.8, 0.0, 0.5, 0.9]


# ---------------------------------------------------------------- correlations


def test_pearson_and_spearman_match_scipy():
    r, p = stats.pearson(X, Y)
    reference = scipy_stats.pearsonr(X, Y)
    assert (r, p) == pytest.approx((reference.statistic, reference.pvalue))
    rho, p = stats.spearman(X, Y)
    reference = scipy_stats.spearmanr(X, Y)
    assert (rho, p) == pytest.approx((reference.statistic, reference.pvalue))


def test_pearson_by_hand():
    # x = 1, 2, 3; y = 1, 3, 2: r = cov / (sx sy) = 0.5 / (1 * 1) = 0.5
    r, _ = stats.pearson([1, 2, 3], [1, 3, 2])
    assert r == pytest.approx(0.5)


@pytest.mark.parametrize("x, y", [([1, 1, 1], [1, 2, 3]), ([1, 2, 3], [4, 4, 4]), ([1, 2], [1, 2])])
def test_correlations_undefined_give_nan(x, y):
    assert all(np.isnan(v) for v in stats.pearson(x, y) + stats.spearman(x, y))


def test_row_statistics_match_scipy_row_by_row():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    x[2, 3] = x[2, 4]  # a tie, which Spearman resolves with average ranks
    for row in range(5):
        assert stats.row_pearson(x, y)[row] == pytest.approx(
            scipy_stats.pearsonr(x[row], y[row])[0]
        )
        assert stats.row_spearman(x, y)[row] == pytest.approx(
            scipy_stats.spearmanr(x[row], y[row])[0]
        )
    constant = np.ones((1, 4))
    assert np.isnan(stats.row_pearson(constant, np.arange(4.0)[None]))[0]


def scipy_pearson(x, y):
    return scipy_stats.pearsonr(x, y).statistic


def test_bootstrap_ci_is_scipys_bca_where_it_is_defined():
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = x + rng.normal(size=12)
    ci = stats.bootstrap_ci(x, y, "pearson", 1000, 0.9, np.random.default_rng(3))
    # the same call, made directly, with scipy's own (unvectorized) Pearson
    direct = scipy_stats.bootstrap((x, y), scipy_pearson, paired=True, vectorized=False,
                                   n_resamples=1000, confidence_level=0.9, method="BCa",
                                   rng=np.random.default_rng(3))  # fmt: skip
    assert ci.method == "BCa" and ci.n_valid == 1000
    assert (ci.low, ci.high) == pytest.approx(tuple(direct.confidence_interval))
    assert ci.low <= stats.pearson(x, y)[0] <= ci.high


def test_bootstrap_ci_falls_back_to_the_percentile_interval_at_n5():
    x, y = X[:5], Y[:5]
    ci = stats.bootstrap_ci(x, y, "pearson", 2000, 0.9, np.random.default_rng(4))
    with pytest.warns(scipy_stats.DegenerateDataWarning):
        # some of 2000 resamples of 5 checkpoints draw one x five times: r undefined, BCa NaN
        direct = scipy_stats.bootstrap((x, y), stats.row_pearson, paired=True, vectorized=True,
                                       n_resamples=2000, confidence_level=0.9, method="BCa",
                                       rng=np.random.default_rng(4))  # fmt: skip
    assert np.isnan(direct.confidence_interval.low)
    defined = direct.bootstrap_distribution[np.isfinite(direct.bootstrap_distribution)]
    assert ci.method == "percentile" and ci.n_valid == len(defined) < 2000
    assert (ci.low, ci.high) == pytest.approx(tuple(np.percentile(defined, [5, 95])))


@pytest.mark.parametrize("statistic", ["pearson", "spearman"])
def test_bootstrap_ci_of_a_straight_line_is_one(statistic):
    # every resample on which the statistic is defined lies on the line: r = rho = 1
    x = np.arange(5.0)
    ci = stats.bootstrap_ci(x, 2 * x + 1, statistic, 500, 0.95, np.random.default_rng(0))
    assert ci.method == "percentile"  # BCa's acceleration is 0 / 0 here
    assert (ci.low, ci.high) == pytest.approx((1.0, 1.0))


def test_bootstrap_ci_is_seeded_and_undefined_for_constant_data():
    first = stats.bootstrap_ci(X, Y, "spearman", 200, 0.95, np.random.default_rng(11))
    second = stats.bootstrap_ci(X, Y, "spearman", 200, 0.95, np.random.default_rng(11))
    assert first == second
    flat = stats.bootstrap_ci(X, np.ones_like(X), "pearson", 200, 0.95, np.random.default_rng(0))
    assert flat.method == "none" and np.isnan(flat.low) and flat.n_valid == 0


def test_correlations_are_defined_when_a_side_spans_exactly_one():
    # accuracy 0 -> 1 and x 0 -> 1: ranges of exactly 1 are ordinary spread.
    # x = 0, .5, 1; y = 0, 1, 1: cov sum 0.5, sxx 0.5, syy 2/3 -> r = 0.5 / sqrt(1/3) = sqrt(3)/2;
    # ranks y = 1, 2.5, 2.5 give rho = 1.5 / sqrt(2 * 1.5) = sqrt(3)/2 as well
    r, _ = stats.pearson([0.0, 0.5, 1.0], [0.0, 1.0, 1.0])
    rho, _ = stats.spearman([0.0, 0.5, 1.0], [0.0, 1.0, 1.0])
    assert (r, rho) == pytest.approx((np.sqrt(3) / 2, np.sqrt(3) / 2))


@pytest.mark.filterwarnings("error")
def test_correlations_of_a_constant_side_are_nan_without_scipy_warnings():
    # the NaN is ours: scipy is not asked (it would warn once per row of Table 1)
    for x, y in (([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])):
        assert all(np.isnan(v) for v in stats.pearson(x, y) + stats.spearman(x, y))


def test_row_pearson_of_a_small_spread_by_hand():
    # accuracy-scale data, so the denominator is far below 1:
    # x = 0, .1, .2; y = 0, .1, .3: cov sum 0.03, sxx 0.02, syy 0.42 / 9
    r = stats.row_pearson(np.array([[0.0, 0.1, 0.2]]), np.array([[0.0, 0.1, 0.3]]))
    assert r[0] == pytest.approx(0.03 / np.sqrt(0.02 * 0.42 / 9))


@pytest.mark.filterwarnings("error")
def test_row_pearson_of_a_constant_row_is_nan_silently():
    # scipy.stats.bootstrap hits constant resamples all the time: no RuntimeWarning per row
    x = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    r = stats.row_pearson(x, np.array([[1.0, 2.0, 3.0]] * 2))
    assert np.isnan(r[0]) and np.isfinite(r[1])


def test_row_statistics_along_axis_0_match_scipy_column_by_column():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    for column in range(3):
        assert stats.row_pearson(x, y, axis=0)[column] == pytest.approx(
            scipy_stats.pearsonr(x[:, column], y[:, column])[0]
        )
        assert stats.row_spearman(x, y, axis=0)[column] == pytest.approx(
            scipy_stats.spearmanr(x[:, column], y[:, column])[0]
        )


def test_bootstrap_ci_is_none_when_no_resample_defines_r():
    # r is defined only on resamples holding checkpoints 0 and 2; seed 0's three resamples of
    # three checkpoints hold no such pair (checked on scipy's own draw below)
    x, y = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    ci = stats.bootstrap_ci(x, y, "pearson", 3, 0.9, np.random.default_rng(0))
    with pytest.warns(scipy_stats.DegenerateDataWarning):
        direct = scipy_stats.bootstrap((x, y), stats.row_pearson, paired=True, vectorized=True,
                                       n_resamples=3, confidence_level=0.9, method="BCa",
                                       rng=np.random.default_rng(0))  # fmt: skip
    assert not np.isfinite(direct.bootstrap_distribution).any()
    assert ci.method == "none" and ci.n_valid == 0
    assert np.isnan(ci.low) and np.isnan(ci.high)


def test_bootstrap_ci_of_a_constant_side_has_both_bounds_nan():
    flat = stats.bootstrap_ci(X, np.full_like(X, 0.7), "spearman", 50, 0.95,
                              np.random.default_rng(0))  # fmt: skip
    assert flat.method == "none" and flat.n_valid == 0
    assert np.isnan(flat.low) and np.isnan(flat.high)


# ---------------------------------------------------------------- fits


def test_ols_fit_matches_linregress():
    fit = stats.ols_fit(X, Y, 0.95)
    reference = scipy_stats.linregress(X, Y)
    assert fit.slope == pytest.approx(reference.slope)
    assert fit.intercept == pytest.approx(reference.intercept)
    assert fit.r2 == pytest.approx(reference.rvalue**2)
    residuals = Y - (reference.intercept + reference.slope * X)
    assert fit.mse == pytest.approx(np.mean(residuals**2))
    half_width = scipy_stats.t.ppf(0.975, len(X) - 2) * reference.stderr
    assert fit.slope_ci == pytest.approx(
        (reference.slope - half_width, reference.slope + half_width)
    )


def test_ols_fit_undefined_for_constant_x():
    assert stats.ols_fit([2, 2, 2], [1, 2, 3]) is None


def test_fit_band_passes_through_the_line_and_brackets_it():
    fit = stats.ols_fit(X, Y, 0.95)
    band = stats.fit_band(fit, np.array([1.0, 3.5, 6.0]), 0.95)
    assert band["fit"].to_numpy() == pytest.approx(fit.intercept + fit.slope * band["x"].to_numpy())
    assert (band["ci_low"] < band["fit"]).all() and (band["fit"] < band["ci_high"]).all()


def test_loo_predictive_r2_matches_the_hat_matrix_press():
    design = np.column_stack([np.ones_like(X), X])
    hat = design @ np.linalg.inv(design.T @ design) @ design.T
    residuals = Y - hat @ Y
    press = np.sum((residuals / (1 - np.diag(hat))) ** 2)
    expected = 1 - press / np.sum((Y - Y.mean()) ** 2)
    assert stats.loo_predictive_r2(X, Y) == pytest.approx(expected)
    assert np.isnan(stats.loo_predictive_r2(X[:3], Y[:3]))


def test_loo_predictive_r2_matches_an_explicit_refit_loop():
    press = 0.0
    for left_out in range(len(X)):
        keep = np.arange(len(X)) != left_out
        slope, intercept = np.polyfit(X[keep], Y[keep], 1)
        press += (Y[left_out] - (intercept + slope * X[left_out])) ** 2
    expected = 1 - press / np.sum((Y - Y.mean()) ** 2)
    assert stats.loo_predictive_r2(X, Y) == pytest.approx(expected)


def test_loo_predictive_r2_undefined_when_a_refit_has_constant_x():
    # without the last checkpoint x is constant: that refit has no slope
    assert np.isnan(stats.loo_predictive_r2([1, 1, 1, 1, 2], [0.1, 0.2, 0.15, 0.1, 0.6]))


def test_nested_f_test_by_formula():
    base = np.array([3.0, 2.5, 2.7, 1.9, 1.5, 1.6])
    extra = np.array([0.2, 0.1, 0.5, 0.4, 0.9, 0.7])

    def ssr(*columns):
        design = np.column_stack([np.ones(len(Y)), *columns])
        coefficients = np.linalg.lstsq(design, Y, rcond=None)[0]
        return np.sum((Y - design @ coefficients) ** 2)

    restricted, full = ssr(base), ssr(base, extra)
    f = (restricted - full) / (full / (len(Y) - 3))
    test = stats.nested_f_test(Y, base, extra)
    assert test.f == pytest.approx(f)
    assert test.p == pytest.approx(scipy_stats.f.sf(f, 1, len(Y) - 3))
    assert (test.df_num, test.df_denom) == (1, 3)
    assert test.r2_full >= test.r2_restricted


def test_nested_f_test_needs_four_points_and_independent_columns():
    assert stats.nested_f_test(Y[:3], X[:3], X[:3] ** 2) is None
    assert stats.nested_f_test(Y, X, 2 * X) is None
    assert stats.nested_f_test([], [], []) is None  # an empty pool: no domain rises


def test_ols_fit_on_three_points_by_hand_with_the_default_95_percent_ci():
    # x = 0, 1, 2; y = 0, 1, 3: sxy 3, sxx 2 -> slope 1.5, intercept 4/3 - 1.5 = -1/6;
    # residuals 1/6, -1/3, 1/6 -> SSR 1/6, s^2 = SSR / 1, se(slope) = sqrt(1/6 / 2); SST 14/3
    fit = stats.ols_fit([0.0, 1.0, 2.0], [0.0, 1.0, 3.0])
    assert fit is not None
    assert (fit.slope, fit.intercept) == pytest.approx((1.5, -1 / 6))
    assert fit.r2 == pytest.approx(1 - (1 / 6) / (14 / 3))
    assert fit.mse == pytest.approx((1 / 6) / 3)
    half_width = scipy_stats.t.ppf(0.975, 1) * np.sqrt(1 / 12)
    assert fit.slope_ci == pytest.approx((1.5 - half_width, 1.5 + half_width))


def test_fit_band_at_a_single_x():
    # one x (or a constant grid) must still get the intercept column: it is not a constant
    # regressor to skip
    fit = stats.ols_fit(X, Y, 0.95)
    band = stats.fit_band(fit, np.array([2.5]), 0.95)
    assert band["fit"].iloc[0] == pytest.approx(fit.intercept + 2.5 * fit.slope)
    assert band["ci_low"].iloc[0] < band["fit"].iloc[0] < band["ci_high"].iloc[0]


@pytest.mark.parametrize(
    "x, y",
    [
        # four checkpoints: the smallest series with a LOO R^2
        ([1.0, 2.0, 3.0, 4.0], [0.1, 0.3, 0.2, 0.6]),
        # accuracy from 0 to 1: a range of exactly 1
        ([5.0, 4.0, 3.5, 2.0, 1.0], [0.0, 0.2, 0.6, 0.7, 1.0]),
    ],
)
def test_loo_predictive_r2_matches_refits_at_the_edges(x, y):
    assert stats.loo_predictive_r2(x, y) == pytest.approx(loo_r2_by_refits(x, y))


def test_loo_predictive_r2_undefined_for_constant_x():
    assert np.isnan(stats.loo_predictive_r2([2.0] * 5, [0.1, 0.2, 0.15, 0.1, 0.6]))


def test_loo_predictive_r2_undefined_when_one_checkpoint_has_leverage_one():
    # the other four share x = 0: the refit without the last has no slope. Its leverage comes
    # out as 1 - 1e-16, so PRESS would be a finite number made of rounding error
    assert np.isnan(stats.loo_predictive_r2([0.0, 0.0, 0.0, 0.0, 1.0],
                                            [0.1, 0.2, 0.15, 0.1, 0.6]))  # fmt: skip


def f_by_hand(y, base, extra) -> float:
    y = np.asarray(y, float)

    def ssr(*columns):
        design = np.column_stack([np.ones(len(y)), *columns])
        coefficients = np.linalg.lstsq(design, y, rcond=None)[0]
        return np.sum((y - design @ coefficients) ** 2)

    restricted, full = ssr(base), ssr(base, extra)
    return (restricted - full) / (full / (len(y) - 3))


def test_nested_f_test_on_four_points():
    y, base, extra = [0.1, 0.4, 0.35, 0.9], [3.0, 2.5, 2.7, 1.9], [0.2, 0.1, 0.5, 0.4]
    test = stats.nested_f_test(y, base, extra)
    assert test is not None and (test.df_num, test.df_denom) == (1, 1)
    assert test.f == pytest.approx(f_by_hand(y, base, extra))


# ---------------------------------------------------------------- tables on the fixture


@pytest.fixture(scope="module")
def points():
    accuracy = stats.accuracy_with_window(
        stats.domain_accuracy(T.items_table(), T.contamination_table()), 0.1, 0.05, 4
    )
    tables = {
        "edit_distance": T.edit_distance_table(), "consistency": T.consistency_table(),
        "routing": T.routing_table(), "loss_baselines": T.loss_baselines_table(),
    }  # fmt: skip
    return stats.predictor_points(tables, accuracy, "memorized")


def test_predictor_points_read_the_right_group(points):
    validation = points[points["predictor"] == "validation_loss"]
    assert len(validation) == len(T.DOMAINS) * len(T.STEPS)  # group "all", not "memorized"
    distance = T.edit_distance_table()
    expected = distance[(distance["domain"] == "math") & (distance["group"] == "memorized")
                        & (distance["layer"] == "all") & (distance["step"] == 700)]  # fmt: skip
    got = points[(points["predictor"] == "edit_distance") & (points["domain"] == "math")
                 & (points["step"] == 700)]  # fmt: skip
    assert got["x"].iloc[0] == expected["value"].iloc[0]


def test_correlation_table_uses_window_points_only(points):
    table = stats.correlation_table(points, "memorized", 200, 0.95, seed=5)
    assert list(table.columns) == stats.CORRELATION_COLUMNS
    assert len(table) == 2 * (len(T.DOMAINS) + 1) * len(stats.PREDICTORS)
    assert table.loc[table["primary"], "window"].eq("paper").all()
    assert table.loc[~table["primary"], "window"].eq("rise").all()
    distance = points[(points["domain"] == "math") & (points["predictor"] == "edit_distance")]
    for window, n in (("paper", 5), ("rise", 6)):
        math = distance[distance[f"in_{window}_window"]]
        row = table[(table["domain"] == "math") & (table["predictor"] == "edit_distance")
                    & (table["window"] == window)].iloc[0]  # fmt: skip
        assert row["pearson_r"] == pytest.approx(
            scipy_stats.pearsonr(math["x"], math["accuracy"])[0]
        )
        assert row["n_checkpoints"] == len(math) == n
        pooled = table[(table["domain"] == stats.POOLED) & (table["window"] == window)
                       & (table["predictor"] == "edit_distance")].iloc[0]  # fmt: skip
        assert pooled["n_checkpoints"] == 2 * n and pooled["domains"] == "code,math"
        # the fixture's distance falls while accuracy rises
        assert row["pearson_r"] < -0.9 and row["pearson_ci_high"] < 0
        assert row["pearson_ci_method"] in ("BCa", "percentile")


def test_correlation_table_windows_do_not_share_random_draws(points):
    both = stats.correlation_table(points, "memorized", 200, 0.95, seed=5)
    rise_points = points.assign(window="rise", in_window=points["in_rise_window"])
    rise_first = stats.correlation_table(rise_points, "memorized", 200, 0.95, seed=5)
    columns = ["pearson_ci_low", "pearson_ci_high", "spearman_ci_low", "spearman_ci_high"]
    for window in ("paper", "rise"):
        a = both[both["window"] == window][columns].reset_index(drop=True)
        b = rise_first[rise_first["window"] == window][columns].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    assert rise_first.loc[rise_first["primary"], "window"].eq("rise").all()


def test_nested_pooled_row_uses_within_domain_z_scores(points):
    nested = stats.nested_f_tests(points, "training_loss")
    pooled = nested[(nested["domain"] == stats.POOLED) & (nested["metric"] == "consistency")]
    wide = points[points["in_window"]].pivot_table(
        index=["domain", "step", "accuracy"], columns="predictor", values="x"
    ).reset_index()
    by_hand = wide.groupby("domain")[["accuracy", "training_loss", "consistency"]].transform(
        lambda v: (v - v.mean()) / v.std(ddof=0)
    )
    test = stats.nested_f_test(by_hand["accuracy"], by_hand["training_loss"],
                               by_hand["consistency"])  # fmt: skip
    assert pooled["f"].iloc[0] == pytest.approx(test.f)
    assert pooled["n_checkpoints"].iloc[0] == 10


def test_nested_f_tests_and_fit_bands_cover_every_domain(points):
    nested = stats.nested_f_tests(points, "training_loss")
    assert set(nested["domain"]) == {*T.DOMAINS, stats.POOLED}
    assert set(nested["metric"]) == set(stats.PATHWAY_PREDICTORS)
    assert (nested["df_denom"] == nested["n_checkpoints"] - 3).all()
    bands = stats.pooled_fit_bands(points, 0.95)
    assert set(bands["predictor"]) == {p.name for p in stats.PREDICTORS}


# ---------------------------------------------------------------- pooling within domains


def pooled_case(
    offsets: dict[str, tuple[float, float]], slope: float = -0.02, predictor: str = "edit_distance"
) -> pd.DataFrame:
    """Points of one predictor: per domain (x offset, accuracy offset), r = -1 within domain."""
    rows = []
    for domain, (x0, y0) in offsets.items():
        for i in range(5):
            rows.append({"domain": domain, "step": 100 * (i + 1), "predictor": predictor,
                         "x": x0 + i, "accuracy": y0 + slope * i})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame = frame.assign(window="paper", in_window=True, in_paper_window=True,
                         in_rise_window=True, rise_found=True, late_rise=False)  # fmt: skip
    return frame[stats.POINT_COLUMNS]


THREE_DOMAINS = {"a": (1.0, 0.10), "b": (11.0, 0.50), "c": (21.0, 0.90)}


def test_pooled_rows_pool_within_domain_z_scores():
    points = pooled_case(THREE_DOMAINS)
    table = stats.correlation_table(points, "memorized", 200, 0.95, seed=0)
    pooled = table[(table["domain"] == stats.POOLED) & table["primary"]
                   & (table["predictor"] == "edit_distance")].iloc[0]  # fmt: skip
    # raw pooling would report the offsets: higher-x domains have higher accuracy
    assert scipy_stats.pearsonr(points["x"], points["accuracy"])[0] > 0.9
    assert pooled["pearson_r"] == pytest.approx(-1.0)
    # Spearman: the domains' equal z-scores tie only up to rounding, so ranks interleave slightly
    assert pooled["spearman_rho"] < -0.95
    assert pooled["r2"] == pytest.approx(1.0) and pooled["loo_r2"] == pytest.approx(1.0)
    assert pooled["slope"] == pytest.approx(-1.0)  # z on z: the slope is r
    assert pooled["n_checkpoints"] == 15 and pooled["left_out"] == ""


def test_the_issues_three_domain_case_is_minus_one_within_and_weak_raw():
    # the issue's construction: r = -1 in each domain, raw pooled r about -0.12 (R^2 0.015)
    points = pooled_case({"a": (0.0, 0.2), "b": (2.0, 0.265), "c": (4.0, 0.315)}, slope=-0.05)
    raw_r = scipy_stats.pearsonr(points["x"], points["accuracy"])[0]
    assert raw_r == pytest.approx(-0.127, abs=0.001)
    z, left_out = stats.pooled_z_points(points)
    assert stats.pearson(z["x"], z["accuracy"])[0] == pytest.approx(-1.0) and left_out == []
    assert z.groupby("domain")["x"].std(ddof=0).to_numpy() == pytest.approx(1.0)


def test_a_domain_without_spread_or_rise_is_left_out_and_named():
    points = pooled_case({**THREE_DOMAINS, "flat": (5.0, 0.3)})
    flat = points["domain"] == "flat"
    points.loc[flat, "accuracy"] = 0.3  # constant accuracy over its window: no z-score
    points = pd.concat([points, pooled_case({"norise": (3.0, 0.2)}).assign(rise_found=False)])
    table = stats.correlation_table(points, "memorized", 200, 0.95, seed=0)
    pooled = table[(table["domain"] == stats.POOLED) & table["primary"]
                   & (table["predictor"] == "edit_distance")].iloc[0]  # fmt: skip
    assert pooled["pearson_r"] == pytest.approx(-1.0)
    assert pooled["domains"] == "a,b,c" and pooled["n_checkpoints"] == 15
    assert pooled["left_out"] == "norise: no accuracy rise; flat: accuracy constant over its window"
    flat_row = table[(table["domain"] == "flat") & (table["predictor"] == "edit_distance")]
    assert flat_row["pearson_r"].isna().all()


def test_fit_bands_are_the_pooled_z_fit():
    points = pooled_case(THREE_DOMAINS)
    points["accuracy"] += np.tile([0.0, 0.01, -0.01, 0.005, 0.0], 3)  # not a perfect line
    z, _ = stats.pooled_z_points(points)
    bands = stats.pooled_fit_bands(points, 0.95)
    fit = scipy_stats.linregress(z["x"], z["accuracy"])
    assert bands["x"].min() == pytest.approx(z["x"].min())
    assert bands["fit"].to_numpy() == pytest.approx(fit.intercept + fit.slope * bands["x"])


def test_pooled_left_out_names_what_is_constant_in_domain_order():
    # rows arrive d, c, b, a; a has a constant metric, b a constant metric and accuracy
    points = pooled_case({"d": (1.0, 0.1), "c": (11.0, 0.5), "b": (5.0, 0.3), "a": (7.0, 0.2)})
    points.loc[points["domain"] == "a", "x"] = 7.0
    points.loc[points["domain"] == "b", ["x", "accuracy"]] = [5.0, 0.3]
    z, left_out = stats.pooled_z_points(points)
    assert left_out == ["a: metric constant over its window",
                        "b: metric, accuracy constant over its window"]  # fmt: skip
    assert z["domain"].tolist() == ["c"] * 5 + ["d"] * 5


def test_a_domain_with_two_window_checkpoints_is_pooled():
    points = pooled_case({"a": (1.0, 0.1), "b": (11.0, 0.5)})
    points.loc[(points["domain"] == "b") & (points["step"] <= 300), "in_window"] = False
    z, left_out = stats.pooled_z_points(points)
    b = z[z["domain"] == "b"]
    # two values are one population sd either side of their mean; accuracy falls as x rises
    assert left_out == [] and b["x"].tolist() == pytest.approx([-1.0, 1.0])
    assert b["accuracy"].tolist() == pytest.approx([1.0, -1.0])


def test_no_domain_with_a_rise_leaves_the_pooled_rows_empty():
    points = pooled_case(THREE_DOMAINS).assign(rise_found=False)
    z, left_out = stats.pooled_z_points(points)
    assert len(z) == 0 and left_out == [f"{d}: no accuracy rise" for d in "abc"]
    table = stats.correlation_table(points, "memorized", 20, 0.95, seed=0)
    pooled = table[(table["domain"] == stats.POOLED) & (table["predictor"] == "edit_distance")]
    assert (pooled["n_checkpoints"] == 0).all() and not pooled["rise_found"].any()
    assert pooled["pearson_r"].isna().all() and (pooled["pearson_ci_method"] == "none").all()
    bands = stats.pooled_fit_bands(points, 0.95)
    assert bands.empty and list(bands.columns) == stats.FIT_COLUMNS


def noisy_case(predictor: str = "edit_distance") -> pd.DataFrame:
    points = pooled_case(THREE_DOMAINS, predictor=predictor)
    points["accuracy"] += np.tile([0.0, 0.01, -0.01, 0.005, 0.0], 3)  # not a perfect line
    return points


def test_correlation_table_labels_and_slope_ci_at_the_configured_confidence():
    points = noisy_case()
    points.loc[points["domain"] == "b", "late_rise"] = True
    table = stats.correlation_table(points, "memorized", 20, 0.5, seed=0)
    # validation loss exists for group "all" only; every other predictor is read from ours
    validation = table["predictor"] == "validation_loss"
    assert (table.loc[validation, "group"] == "all").all()
    assert (table.loc[~validation, "group"] == "memorized").all()
    rows = table[table["primary"] & (table["predictor"] == "edit_distance")].set_index("domain")
    assert rows["late_rise"].to_dict() == {"a": False, "b": True, "c": False, stats.POOLED: True}
    a = points[points["domain"] == "a"]
    reference = scipy_stats.linregress(a["x"], a["accuracy"])
    half_width = scipy_stats.t.ppf(0.75, len(a) - 2) * reference.stderr
    assert (rows.loc["a", "slope_ci_low"], rows.loc["a", "slope_ci_high"]) == pytest.approx(
        (reference.slope - half_width, reference.slope + half_width)
    )


def test_fit_bands_cover_only_predictors_with_points_at_the_configured_confidence():
    # only consistency has points: the first predictor (edit distance) has no fit, and must
    # neither stop the loop nor borrow another predictor's points
    points = noisy_case("consistency")
    bands = stats.pooled_fit_bands(points, 0.5, n_grid=7)
    assert set(bands["predictor"]) == {"consistency"} and len(bands) == 7
    z = points.groupby("domain")[["x", "accuracy"]].transform(
        lambda v: (v - v.mean()) / v.std(ddof=0)
    )
    x, y, n = z["x"].to_numpy(), z["accuracy"].to_numpy(), len(z)
    slope, intercept = np.polyfit(x, y, 1)
    s2 = np.sum((y - intercept - slope * x) ** 2) / (n - 2)
    grid = np.linspace(x.min(), x.max(), 7)
    se_mean = np.sqrt(s2 * (1 / n + (grid - x.mean()) ** 2 / np.sum((x - x.mean()) ** 2)))
    half_width = scipy_stats.t.ppf(0.75, n - 2) * se_mean
    assert bands["x"].to_numpy() == pytest.approx(grid)
    assert bands["ci_low"].to_numpy() == pytest.approx(intercept + slope * grid - half_width)
    assert bands["ci_high"].to_numpy() == pytest.approx(intercept + slope * grid + half_width)


def test_returned_tables_have_a_fresh_row_index(points):
    # labels repeated per domain, window or predictor (or left permuted by a sort) would make a
    # later .loc or an index-aligned assignment pick the wrong rows without an error
    def fresh(table):
        return table.index.equals(pd.RangeIndex(len(table)))

    two_domains = pd.DataFrame({"domain": ["a", "a", "b", "b"], "step": [1, 2, 1, 2],
                                "accuracy": [0.0, 0.9, 0.1, 0.8], "n_items": 10})  # fmt: skip
    assert fresh(stats.accuracy_with_window(two_domains, 0.1, 0.05, 2))
    assert fresh(points)
    case = noisy_case()
    assert fresh(stats.pooled_z_points(case[case["domain"] != "a"])[0])
    assert fresh(stats.correlation_table(case, "memorized", 20, 0.95, seed=0))
    assert fresh(stats.pooled_fit_bands(pd.concat([case, noisy_case("consistency")]), 0.95))


def one_domain_points(accuracy: list[float], **predictors: list[float]) -> pd.DataFrame:
    """Long points of domain "a", every checkpoint in the window and rising; a NaN predictor
    value is a checkpoint that predictor has no row for."""
    rows = [
        {"domain": "a", "step": 100 * (i + 1), "predictor": name, "x": x, "accuracy": acc}
        for name, values in predictors.items()
        for i, (x, acc) in enumerate(zip(values, accuracy))
        if not np.isnan(x)
    ]
    frame = pd.DataFrame(rows).assign(
        window="paper", in_window=True, in_paper_window=True, in_rise_window=True,
        rise_found=True, late_rise=False,
    )  # fmt: skip
    return frame[stats.POINT_COLUMNS]


def test_nested_f_tests_handle_a_missing_metric_and_a_missing_value():
    accuracy = [0.1, 0.2, 0.35, 0.5, 0.7, 0.75]
    loss = [2.0, 1.8, 1.7, 1.2, 1.1, 0.9]
    consistency = [0.3, 0.35, 0.5, 0.55, 0.8, 0.82]
    # no edit distance at all; routing entropy lacks step 200
    points = one_domain_points(accuracy, training_loss=loss, consistency=consistency,
                               routing_entropy=[1.0, np.nan, 0.8, 0.7, 0.75, 0.5])  # fmt: skip
    nested = stats.nested_f_tests(points, "training_loss")
    assert list(nested.columns) == stats.NESTED_COLUMNS
    assert (nested["loss"] == "training_loss").all()
    rows = nested.set_index(["domain", "metric"])
    for domain in ("a", stats.POOLED):
        missing = rows.loc[(domain, "edit_distance")]
        assert (missing["n_checkpoints"], missing["df_num"], missing["df_denom"]) == (0, 0, 0)
        assert np.isnan(missing["f"]) and np.isnan(missing["p"])
        # routing entropy's gap costs its own test a checkpoint, not consistency's
        assert rows.loc[(domain, "consistency"), "n_checkpoints"] == 6
        assert rows.loc[(domain, "routing_entropy"), "n_checkpoints"] == 5
        # z-scoring within one domain is affine per variable: the F statistic is unchanged
        assert rows.loc[(domain, "consistency"), "f"] == pytest.approx(
            f_by_hand(accuracy, loss, consistency)
        )


def test_predictor_points_name_a_missing_table():
    accuracy = pd.DataFrame({"domain": ["a"], "step": [1], "accuracy": [0.5], "n_items": [1],
                             "in_window": [True], "rise_found": [True]})  # fmt: skip
    with pytest.raises(GrokpathError, match="no consistency table"):
        stats.predictor_points({"edit_distance": T.edit_distance_table()}, accuracy, "all")


def test_accuracy_by_test_group_by_hand():
    items = pd.DataFrame({
        "task": "t", "domain": "a", "doc_id": [0, 1, 2, 0, 1, 2], "step": [1, 1, 1, 2, 2, 2],
        "correct": [False, True, False, True, True, False], "score": 0.0, "prediction": "",
    })  # fmt: skip
    generalization = pd.DataFrame({
        "task": "t", "domain": "a", "doc_id": [0, 1, 2],
        "gen_step": pd.array([2, 1, None], dtype="Int64"), "generalized": [True, True, False],
    })  # fmt: skip
    contamination = pd.DataFrame({"domain": "a", "doc_id": [0, 1, 2], "task": "t", "min_k_pp": 0.0,
                                  "n_tokens": 1, "contaminated": False})  # fmt: skip
    table = stats.accuracy_by_test_group(items, generalization, contamination)
    group2 = table[table["test_group"] == 2].set_index("step")["accuracy"]
    assert group2.to_dict() == {1: 0.0, 2: 1.0}
    assert set(table["test_group"]) == {1, 2}


# ---------------------------------------------------------------- trends


def test_quadratic_trend_recovers_a_parabola():
    steps = np.array([125_000, 245_000, 370_000, 490_000, 615_000])
    values = -2e-9 * (steps - 300_000) ** 2 + 600
    trend = stats.quadratic_trend(steps, values)
    assert trend.fitted == pytest.approx(values)
    assert trend.coefficients[0] == pytest.approx(-2e-9)


def test_post_memorization_trend_uses_steps_from_t_star():
    steps = np.array([100, 200, 300, 400, 500])
    values = np.array([1.0, 9.0, 8.0, 7.0, 6.0])  # falls by 1 per 100 steps from t* = 200
    trend = stats.post_memorization_trend(steps, values, 200)
    assert trend.slope == pytest.approx(-10.0)  # per 1000 steps
    assert trend.steps.tolist() == [200, 300, 400, 500]
    assert stats.post_memorization_trend(steps, values, 400) is None


def test_ols_fit_r2_is_undefined_when_accuracy_does_not_vary():
    # A domain at accuracy 1.00 over the whole window: statsmodels returns -inf here (a
    # rounding-error residual over a zero total sum of squares); the table must say n/a.
    fit = stats.ols_fit([0.31, 0.27, 0.29, 0.35, 0.22], [1.0] * 5, 0.95)
    assert fit is not None
    assert np.isnan(fit.r2)


def test_quadratic_trend_through_three_int32_steps():
    # a parabola is fixed by three checkpoints; int32 steps (as a parquet column may hold them)
    # must not overflow when the coefficients are scaled back to step units (300000^2 > 2^31)
    steps = np.array([100_000, 200_000, 300_000], dtype=np.int32)
    coefficients = np.array([-2e-11, 9e-6, 1.5])
    values = np.polyval(coefficients, steps.astype(float))
    trend = stats.quadratic_trend(steps, values)
    assert trend.coefficients == pytest.approx(coefficients)
    assert trend.fitted == pytest.approx(values)
    assert trend.steps.tolist() == [100_000, 200_000, 300_000]
    assert np.isnan(trend.slope) and np.isnan(trend.p)
    assert stats.quadratic_trend(steps[:2], values[:2]) is None


def test_post_memorization_trend_on_three_checkpoints_by_hand():
    # from t* = 300: steps 300, 400, 500, values 1, 2, 2.5: sxy 150, sxx 20000 -> slope
    # 0.0075 per step, intercept 11/6 - 3; residuals -1/12, 1/6, -1/12 -> SSR 1/24 on 1 df,
    # t = 0.0075 / sqrt(1/24 / 20000) = 3 sqrt(3)
    steps = np.array([100, 200, 300, 400, 500])
    values = np.array([9.0, 9.0, 1.0, 2.0, 2.5])
    trend = stats.post_memorization_trend(steps, values, 300)
    intercept = 11 / 6 - 3
    assert trend.slope == pytest.approx(7.5)  # per 1000 steps
    assert trend.coefficients == pytest.approx([0.0075, intercept])
    assert trend.fitted == pytest.approx(intercept + 0.0075 * np.array([300, 400, 500]))
    assert trend.p == pytest.approx(2 * scipy_stats.t.sf(3 * np.sqrt(3), 1))


def test_window_rule_text_names_the_configured_rule():
    from grokpath.analysis.stats import window_rule_text

    assert window_rule_text(0.5, 0.1, 4) == (
        "paper: the run's last 5 checkpoints (the paper's n = 5; all of them when there are fewer); "
        "`late rise` marks a domain whose rise (below) starts after the first of them. rise: per "
        "domain, from the first checkpoint after which test accuracy stays at or above first + 0.5 "
        "x (max - first) to the last checkpoint, at least 4 checkpoints. In both, a domain whose "
        "accuracy gains less than 0.1 has no rise: it is flagged and stays out of the pooled rows "
        "(rise: all its checkpoints are used). Pooled rows pool z-scores taken within each domain "
        "over its window; a domain with a constant metric or accuracy there is left out and named."
    )
