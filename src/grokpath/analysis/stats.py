"""Do pathway metrics predict test accuracy? Correlations, fits and their uncertainty (paper Table 1, Fig 7).

Test accuracy of a domain at a checkpoint is the mean of `correct` over its non-contaminated test
items. Each predictor is one tidy-metric series per domain and checkpoint (see `PREDICTORS`).

Checkpoint windows. Config `analysis.correlation.window` picks the one the figures, the F-tests
and the verdicts use (`in_window`); the correlation table holds both (`window`, `primary`).
- paper: the run's last `PAPER_WINDOW` = 5 checkpoints (the paper's n = 5: its Spearman values
  move in steps of 0.1); every checkpoint when there are fewer. `late_rise` flags a domain whose
  sustained rise (below, before the `min_checkpoints` extension) starts after the first of them:
  its paper window then holds pre-rise checkpoints.
- rise (`sustained_rise_window`): gain = max(accuracy) - accuracy at the first checkpoint; below
  `min_gain` the domain has no rise: every checkpoint is used and the rows are flagged
  `rise_found = False`; otherwise level = first accuracy + `rise_fraction` x gain, the window
  starts at the earliest checkpoint from which accuracy stays >= level at every later checkpoint
  and runs to the last one, extended backwards to at least `min_checkpoints` checkpoints.

Per (window, domain, predictor): Pearson and Spearman with p-values (scipy); a bootstrap CI of
each (`scipy.stats.bootstrap`, checkpoints resampled in pairs, seeded from config): BCa, or, where
BCa is undefined, the percentile interval over the resamples on which the statistic is defined
(`*_ci_method` says which: at n = 5 some resample nearly always draws a constant side, and
|r| = 1 leaves BCa's acceleration 0 / 0); OLS of accuracy on the predictor (statsmodels: R^2,
MSE = mean squared residual, slope with CI); leave-one-checkpoint-out predictive R^2 from the
PRESS residuals (statsmodels' OLSInfluence).

Pooled rows (`POOLED`) pool within domains: in each domain with a rise, predictor and accuracy
are z-scored over that domain's window, and the z-scores are pooled (paper Fig 7's one R^2 per
metric; the pooled F-test z-scores accuracy, loss and metric alike). Pooling raw values would
mostly measure the domains' different accuracy and metric levels. Domains without a rise, and
domains where a pooled variable is constant over the window (no z-score), are left out and named
in `left_out`. `nested_f_tests` asks whether a pathway metric adds to the training loss: OLS
"accuracy ~ loss + metric" against "accuracy ~ loss".

Tables (Parquet):
- analysis/accuracy.parquet, `ACCURACY_COLUMNS`: domain, step, accuracy, n_items; window (the
  configured window's name); in_window (in the configured window), in_paper_window,
  in_rise_window; rise_found (accuracy gains >= min_gain); late_rise (above).
- analysis/correlation_points.parquet, `POINT_COLUMNS`: domain, step, predictor, x (the
  predictor's value), accuracy and the window columns of the accuracy table.
- analysis/table1_correlations.parquet, `CORRELATION_COLUMNS`: one row per window, domain or
  POOLED, and predictor. primary: the configured window; domains: the domains whose checkpoints
  the row uses; left_out: the domains a pooled row leaves out, with why; n_checkpoints: points
  used (domains x checkpoints when pooled); steps; rise_found, late_rise; pearson_r, pearson_p,
  pearson_ci_low, pearson_ci_high, pearson_ci_method (BCa | percentile | none), likewise for
  spearman; n_boot_valid: Pearson resamples on which r is defined; r2, mse, slope, slope_ci_low,
  slope_ci_high, intercept, loo_r2. Pooled rows are on the within-domain z scale.
- analysis/nested_f_tests.parquet, `NESTED_COLUMNS`: configured window, per domain and POOLED.
- analysis/fig7_fits.parquet, `FIT_COLUMNS`: predictor, x (z of the predictor), fit, ci_low,
  ci_high (z of accuracy): the pooled OLS line and the CI of its mean.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from grokpath.errors import GrokpathError
from grokpath.evaluation.generalization import drop_contaminated

# the pooled rows' domain label: the name says the pool is of within-domain z-scores
POOLED = "pooled (within-domain z)"
PAPER_WINDOW = 5  # checkpoints per correlation in the paper
WINDOWS = ("paper", "rise")


# scipy.stats and statsmodels are imported on first use: they take seconds to import, and most
# figure jobs (which import this module for its column names and trends) never call them.
def _scipy_stats():
    from scipy import stats

    return stats


def _ols(y, design):
    from statsmodels.regression.linear_model import OLS  # statsmodels.api would load far more

    return OLS(y, design).fit()


def _add_constant(x, **kwargs):
    from statsmodels.tools.tools import add_constant

    return add_constant(x, **kwargs)


@dataclass(frozen=True)
class Predictor:
    name: str  # the row label of Table 1
    source: str  # which metric table: edit_distance | consistency | routing | loss_baselines
    metric: str  # the `metric` value in that table
    fixed_group: str | None = None  # a group the metric exists for only (validation loss: "all")


PREDICTORS = [
    Predictor("edit_distance", "edit_distance", "edit_distance_char"),
    # higher = more consistent; the paper's own formula (1 - this) points the other way
    Predictor("consistency", "consistency", "consistency_norm_mean_cos"),
    Predictor("training_loss", "loss_baselines", "training_loss"),
    Predictor("training_loss_ma", "loss_baselines", "training_loss_ma"),
    Predictor("validation_loss", "loss_baselines", "validation_loss", fixed_group="all"),
    Predictor("routing_entropy", "routing", "routing_entropy"),
]
PREDICTOR_BY_NAME = {p.name: p for p in PREDICTORS}
PATHWAY_PREDICTORS = ["edit_distance", "consistency", "routing_entropy"]

# What the paper reports (v4), to print beside ours: Fig 7's R^2 per predictor and Table 1's
# Pearson range over the four domains.
PAPER_FIG7_R2 = {
    "edit_distance": 0.91,
    "consistency": 0.89,
    "training_loss": 0.41,
    "training_loss_ma": 0.63,
    "validation_loss": 0.33,
}
PAPER_TABLE1_PEARSON = {"edit_distance": (-0.98, -0.93), "consistency": (0.92, 0.99)}
FIG7_PREDICTORS = list(PAPER_FIG7_R2)

WINDOW_COLUMNS = ["window", "in_window", "in_paper_window", "in_rise_window", "rise_found",
                  "late_rise"]  # fmt: skip
ACCURACY_COLUMNS = ["domain", "step", "accuracy", "n_items", *WINDOW_COLUMNS]
POINT_COLUMNS = ["domain", "step", "predictor", "x", "accuracy", *WINDOW_COLUMNS]
CORRELATION_COLUMNS = [
    "domain", "predictor", "metric", "group", "window", "primary", "domains", "left_out",
    "n_checkpoints", "steps", "rise_found", "late_rise",
    "pearson_r", "pearson_p", "pearson_ci_low", "pearson_ci_high", "pearson_ci_method",
    "spearman_rho", "spearman_p", "spearman_ci_low", "spearman_ci_high", "spearman_ci_method",
    "n_boot_valid", "r2", "mse", "slope", "slope_ci_low", "slope_ci_high", "intercept", "loo_r2",
]  # fmt: skip
NESTED_COLUMNS = [
    "domain", "metric", "loss", "n_checkpoints", "r2_loss", "r2_loss_metric", "f", "p",
    "df_num", "df_denom",
]  # fmt: skip
FIT_COLUMNS = ["predictor", "x", "fit", "ci_low", "ci_high"]


# ---------------------------------------------------------------- accuracy and its window


def domain_accuracy(items: pd.DataFrame, contamination: pd.DataFrame) -> pd.DataFrame:
    """domain, step, accuracy, n_items: mean correctness of the non-contaminated test items."""
    clean = drop_contaminated(items, contamination)
    if clean.empty:
        raise GrokpathError("eval/items.parquet: no test items left after the contamination filter")
    grouped = clean.assign(correct=clean["correct"].astype(float)).groupby(["domain", "step"])
    table = grouped["correct"].agg(accuracy="mean", n_items="size").reset_index()
    return table.astype({"step": "int64", "n_items": "int64"}).sort_values(["domain", "step"])


def accuracy_by_test_group(
    items: pd.DataFrame, generalization: pd.DataFrame, contamination: pd.DataFrame
) -> pd.DataFrame:
    """domain, test_group, step, accuracy: accuracy of the items generalized at each step (Fig 2)."""
    clean = drop_contaminated(items, contamination)
    keys = ["task", "domain", "doc_id"]
    generalized = generalization[generalization["generalized"].astype(bool)]
    joined = clean.merge(generalized[keys + ["gen_step"]], on=keys, how="inner")
    joined = joined.assign(correct=joined["correct"].astype(float), test_group=joined["gen_step"])
    table = (
        joined.groupby(["domain", "test_group", "step"])["correct"]
        .agg(accuracy="mean", n_items="size")
        .reset_index()
    )
    return table.astype({"test_group": "int64", "step": "int64", "n_items": "int64"})


@dataclass(frozen=True)
class Window:
    start: int  # index of the first checkpoint in the window
    rise_found: bool


def sustained_rise_start(accuracy: np.ndarray, rise_fraction: float, min_gain: float) -> int | None:
    """Index of the checkpoint the sustained accuracy rise starts at; None without a rise."""
    accuracy = np.asarray(accuracy, dtype=float)
    if len(accuracy) == 0:
        raise GrokpathError("accuracy window: no checkpoints")
    gain = accuracy.max() - accuracy[0]
    if gain < min_gain:
        return None
    level = accuracy[0] + rise_fraction * gain
    # stays_above[i]: accuracy >= level at checkpoint i and at every later one
    stays_above = np.logical_and.accumulate((accuracy >= level)[::-1])[::-1]
    return int(np.argmax(stays_above)) if stays_above.any() else len(accuracy) - 1


def sustained_rise_window(
    accuracy: np.ndarray, rise_fraction: float, min_gain: float, min_checkpoints: int
) -> Window:
    """The checkpoints from the start of the sustained accuracy rise to the last (module doc)."""
    start = sustained_rise_start(accuracy, rise_fraction, min_gain)
    if start is None:
        return Window(0, False)
    return Window(max(0, min(start, len(accuracy) - min_checkpoints)), True)


def paper_window_start(n_checkpoints: int) -> int:
    """Index of the first of the last PAPER_WINDOW checkpoints (0 when there are fewer)."""
    return max(0, n_checkpoints - PAPER_WINDOW)


def _window_flags(
    part: pd.DataFrame, rise_fraction: float, min_gain: float, min_checkpoints: int
) -> pd.DataFrame:
    """One domain's rows (sorted by step, index 0..n-1) with both windows and the rise flags."""
    accuracy = part["accuracy"].to_numpy()
    rise = sustained_rise_window(accuracy, rise_fraction, min_gain, min_checkpoints)
    rise_start = sustained_rise_start(accuracy, rise_fraction, min_gain)
    paper_start = paper_window_start(len(part))
    return part.assign(
        in_paper_window=part.index >= paper_start,
        in_rise_window=part.index >= rise.start,
        rise_found=rise.rise_found,
        late_rise=rise_start is not None and rise_start > paper_start,
    )


def accuracy_with_window(
    accuracy: pd.DataFrame,
    rise_fraction: float,
    min_gain: float,
    min_checkpoints: int,
    window: str = "paper",
) -> pd.DataFrame:
    """The accuracy table plus the window columns (ACCURACY_COLUMNS); `window` is the configured
    one, which `in_window` follows."""
    if window not in WINDOWS:
        raise GrokpathError(f"analysis.correlation.window: {window!r} is not one of {WINDOWS}")
    frames = [
        _window_flags(part.sort_values("step").reset_index(drop=True), rise_fraction, min_gain,
                      min_checkpoints)
        for _, part in accuracy.groupby("domain", sort=True)
    ]  # fmt: skip
    table = pd.concat(frames, ignore_index=True)
    return table.assign(window=window, in_window=table[f"in_{window}_window"])[ACCURACY_COLUMNS]


def window_rule_text(rise_fraction: float, min_gain: float, min_checkpoints: int) -> str:
    return (
        f"paper: the run's last {PAPER_WINDOW} checkpoints (the paper's n = {PAPER_WINDOW}; all "
        "of them when there are fewer); `late rise` marks a domain whose rise (below) starts after "
        "the first of them. rise: per domain, from the first checkpoint after which test accuracy "
        f"stays at or above first + {rise_fraction} x (max - first) to the last checkpoint, at "
        f"least {min_checkpoints} checkpoints. In both, a domain whose accuracy gains less than "
        f"{min_gain} has no rise: it is flagged and stays out of the pooled rows (rise: all its "
        "checkpoints are used). Pooled rows pool z-scores taken within each domain over its "
        "window; a domain with a constant metric or accuracy there is left out and named."
    )


# ---------------------------------------------------------------- predictor series


def metric_series(table: pd.DataFrame, metric: str, group: str, layer: str = "all") -> pd.DataFrame:
    """domain, step, value of one metric for one group and layer."""
    rows = table[
        (table["metric"] == metric) & (table["group"] == group) & (table["layer"] == layer)
    ]
    return rows[["domain", "step", "value"]].astype({"step": "int64"})


def predictor_points(
    tables: dict[str, pd.DataFrame], accuracy: pd.DataFrame, group: str
) -> pd.DataFrame:
    """Long table (POINT_COLUMNS): each predictor's value beside accuracy, per domain and step.

    `tables` maps a Predictor.source to its tidy table; `group` is the metric group the
    predictors are read from (validation loss exists for group "all" only).
    """
    frames = []
    for predictor in PREDICTORS:
        if predictor.source not in tables:
            raise GrokpathError(f"predictor {predictor.name}: no {predictor.source} table given")
        series = metric_series(
            tables[predictor.source], predictor.metric, predictor.fixed_group or group
        )
        joined = accuracy.merge(series, on=["domain", "step"], how="inner")
        frames.append(joined.rename(columns={"value": "x"}).assign(predictor=predictor.name))
    points = pd.concat(frames, ignore_index=True)
    return points[POINT_COLUMNS].sort_values(["predictor", "domain", "step"], ignore_index=True)


# ---------------------------------------------------------------- statistics on one series


def _degenerate(x: np.ndarray, y: np.ndarray) -> bool:
    return len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0


def pearson(x, y) -> tuple[float, float]:
    """(r, two-sided p); NaN when fewer than 3 points or either side is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if _degenerate(x, y):
        return float("nan"), float("nan")
    result = _scipy_stats().pearsonr(x, y)
    return float(result.statistic), float(result.pvalue)


def spearman(x, y) -> tuple[float, float]:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if _degenerate(x, y):
        return float("nan"), float("nan")
    result = _scipy_stats().spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def row_pearson(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson r along `axis` of two arrays (scipy.stats.bootstrap's vectorized call); NaN
    where a side is constant."""
    xc = x - x.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    denominator = np.sqrt((xc**2).sum(axis=axis) * (yc**2).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=axis) / denominator
    return np.where(denominator > 0, r, np.nan)


def row_spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman rho along `axis`: Pearson of the average ranks (scipy's definition)."""
    rank = _scipy_stats().rankdata
    return row_pearson(rank(x, axis=axis), rank(y, axis=axis), axis=axis)


ROW_STATISTICS = {"pearson": row_pearson, "spearman": row_spearman}


@dataclass(frozen=True)
class BootstrapCI:
    low: float
    high: float
    method: str  # BCa | percentile | none (the statistic itself is undefined)
    n_valid: int  # resamples on which the statistic is defined


def bootstrap_ci(
    x, y, statistic: str, n_resamples: int, confidence: float, rng: np.random.Generator
) -> BootstrapCI:
    """CI of a correlation over checkpoints resampled in pairs (scipy.stats.bootstrap).

    `statistic` is "pearson" or "spearman". BCa where scipy can compute it; where it cannot (NaN:
    a resample with a constant side, where the statistic is undefined, or a degenerate jackknife
    such as |r| = 1), the percentile interval - the quantiles scipy's method="percentile" takes -
    of the resamples on which the statistic is defined.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if _degenerate(x, y):
        return BootstrapCI(float("nan"), float("nan"), "none", 0)
    stats = _scipy_stats()
    with warnings.catch_warnings():
        # scipy warns when BCa is NaN, and the jackknife divides by zero at |r| = 1: both are
        # handled below by the percentile fallback
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.bootstrap(
            (x, y), ROW_STATISTICS[statistic], paired=True, vectorized=True,
            n_resamples=n_resamples, confidence_level=confidence, method="BCa", rng=rng,
        )  # fmt: skip
    values = result.bootstrap_distribution[np.isfinite(result.bootstrap_distribution)]
    low, high = (float(v) for v in result.confidence_interval)
    if np.isfinite(low) and np.isfinite(high):
        return BootstrapCI(low, high, "BCa", len(values))
    if len(values) == 0:
        return BootstrapCI(float("nan"), float("nan"), "none", 0)
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return BootstrapCI(float(low), float(high), "percentile", len(values))


@dataclass(frozen=True)
class LinearFit:
    slope: float
    intercept: float
    slope_ci: tuple[float, float]
    r2: float
    mse: float  # mean squared residual (the paper's MSE), not the unbiased sigma^2
    result: object  # the statsmodels results, for prediction bands and leverages


def ols_fit(x, y, confidence: float = 0.95) -> LinearFit | None:
    """OLS of y on x with an intercept; None when the fit is undefined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0:
        return None
    result = _ols(y, _add_constant(x))
    ci = result.conf_int(alpha=1 - confidence)
    # Undefined when accuracy does not vary: statsmodels divides a rounding-error residual by a
    # zero total sum of squares and returns -inf or NaN, depending on the residual's last bits.
    r2 = float(result.rsquared) if np.ptp(y) > 0 else float("nan")
    return LinearFit(
        slope=float(result.params[1]),
        intercept=float(result.params[0]),
        slope_ci=(float(ci[1, 0]), float(ci[1, 1])),
        r2=r2,
        mse=float(np.mean(result.resid**2)),
        result=result,
    )


def fit_band(fit: LinearFit, x_grid: np.ndarray, confidence: float) -> pd.DataFrame:
    """The fitted line and the confidence band of its mean over x_grid."""
    frame = fit.result.get_prediction(_add_constant(x_grid, has_constant="add")).summary_frame(
        alpha=1 - confidence
    )
    return pd.DataFrame(
        {
            "x": x_grid,
            "fit": frame["mean"].to_numpy(),
            "ci_low": frame["mean_ci_lower"].to_numpy(),
            "ci_high": frame["mean_ci_upper"].to_numpy(),
        }
    )


def loo_predictive_r2(x, y) -> float:
    """1 - PRESS / total sum of squares: each checkpoint predicted by a fit without it.

    PRESS residuals come from statsmodels (resid / (1 - leverage)), which equal those refits.
    Can be negative (worse than predicting the mean); NaN below 4 points, where a fit on the
    other n - 1 < 3 points has no residual freedom to speak of, and when leaving one checkpoint
    out leaves x constant (leverage 1: that fit has no slope).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 4 or np.ptp(y) == 0:
        return float("nan")
    fit = ols_fit(x, y)
    if fit is None:
        return float("nan")
    influence = fit.result.get_influence()
    if np.any(influence.hat_matrix_diag > 1 - 1e-9):
        return float("nan")
    press = np.sum(influence.resid_press**2)
    return float(1 - press / np.sum((y - y.mean()) ** 2))


@dataclass(frozen=True)
class NestedTest:
    r2_restricted: float
    r2_full: float
    f: float
    p: float
    df_num: int
    df_denom: int


def nested_f_test(y, base, extra) -> NestedTest | None:
    """F-test of y ~ base + extra against y ~ base (does `extra` explain more?)."""
    y, base, extra = (np.asarray(v, float) for v in (y, base, extra))
    if len(y) < 4:  # also an empty pool (no domain rises), which statsmodels cannot take
        return None
    design_full = _add_constant(np.column_stack([base, extra]))
    if np.linalg.matrix_rank(design_full) < 3:
        return None
    restricted = _ols(y, _add_constant(base))
    full = _ols(y, design_full)
    with warnings.catch_warnings():
        # a perfect full fit gives F = inf, p = 0: correct, but numpy warns about the division
        warnings.simplefilter("ignore", RuntimeWarning)
        f, p, df_num = full.compare_f_test(restricted)
    return NestedTest(
        float(restricted.rsquared), float(full.rsquared), float(f), float(p),
        int(df_num), int(full.df_resid),
    )  # fmt: skip


# ---------------------------------------------------------------- within-domain pooling


def z_scores(values: np.ndarray) -> np.ndarray:
    """(v - mean) / sd with the population sd: one domain's values on the pooled scale."""
    return (values - values.mean()) / values.std()


def _window_column(window: str | None) -> str:
    return "in_window" if window is None else f"in_{window}_window"


def domain_window(points: pd.DataFrame, domain: str, window: str | None = None) -> pd.DataFrame:
    """One domain's points in a window (None: the configured one)."""
    return points[(points["domain"] == domain) & points[_window_column(window)].astype(bool)]


def pooled_z_points(
    points: pd.DataFrame, columns: tuple[str, ...] = ("x", "accuracy"), window: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """The window points of the domains with a rise, `columns` z-scored within each domain; and
    the domains left out, each as "domain: why". Pass one predictor's points (or a wide table)."""
    inside = points[points[_window_column(window)].astype(bool)]
    no_rise = sorted(inside.loc[~inside["rise_found"].astype(bool), "domain"].unique())
    left_out = [f"{domain}: no accuracy rise" for domain in no_rise]
    kept = []
    for domain, rows in inside[inside["rise_found"].astype(bool)].groupby("domain", sort=True):
        rows = rows.dropna(subset=list(columns))
        constant = [c for c in columns if len(rows) < 2 or np.ptp(rows[c].to_numpy(float)) == 0]
        if constant:  # no spread, no z-score
            names = ", ".join("metric" if c == "x" else c for c in constant)
            left_out.append(f"{domain}: {names} constant over its window")
            continue
        kept.append(rows.assign(**{c: z_scores(rows[c].to_numpy(float)) for c in columns}))
    return (pd.concat(kept, ignore_index=True) if kept else inside.iloc[:0]), left_out


# ---------------------------------------------------------------- tables over domains


def correlation_stats(
    part: pd.DataFrame, n_resamples: int, confidence: float, rng: np.random.Generator
) -> dict:
    """The statistic columns of one Table 1 row: predictor `x` against `accuracy` in `part`."""
    x, y = part["x"].to_numpy(float), part["accuracy"].to_numpy(float)
    r, r_p = pearson(x, y)
    rho, rho_p = spearman(x, y)
    r_ci = bootstrap_ci(x, y, "pearson", n_resamples, confidence, rng)
    rho_ci = bootstrap_ci(x, y, "spearman", n_resamples, confidence, rng)
    fit = ols_fit(x, y, confidence)
    return {
        "pearson_r": r, "pearson_p": r_p, "pearson_ci_low": r_ci.low,
        "pearson_ci_high": r_ci.high, "pearson_ci_method": r_ci.method,
        "spearman_rho": rho, "spearman_p": rho_p, "spearman_ci_low": rho_ci.low,
        "spearman_ci_high": rho_ci.high, "spearman_ci_method": rho_ci.method,
        "n_boot_valid": r_ci.n_valid,
        "r2": fit.r2 if fit else np.nan, "mse": fit.mse if fit else np.nan,
        "slope": fit.slope if fit else np.nan,
        "slope_ci_low": fit.slope_ci[0] if fit else np.nan,
        "slope_ci_high": fit.slope_ci[1] if fit else np.nan,
        "intercept": fit.intercept if fit else np.nan, "loo_r2": loo_predictive_r2(x, y),
    }  # fmt: skip


def _row_labels(domain: str, predictor: str, group: str, part: pd.DataFrame) -> dict:
    spec = PREDICTOR_BY_NAME[predictor]
    return {
        "domain": domain, "predictor": predictor, "metric": spec.metric,
        "group": spec.fixed_group or group, "n_checkpoints": len(part),
        "domains": ",".join(sorted(part["domain"].unique())),
        "steps": ",".join(str(s) for s in sorted(part["step"].unique())),
        "rise_found": bool(part["rise_found"].all()) if len(part) else False,
        "late_rise": bool(part["late_rise"].any()),
    }  # fmt: skip


def window_correlations(
    points: pd.DataFrame, window: str, group: str, n_resamples: int, confidence: float,
    seed: int,
) -> pd.DataFrame:  # fmt: skip
    """Table 1 rows of one window: per domain, then POOLED, and per predictor."""
    rng = np.random.default_rng(seed)
    rows = []
    for domain in sorted(points["domain"].unique()) + [POOLED]:
        for predictor in (p.name for p in PREDICTORS):
            series = points[points["predictor"] == predictor]
            if domain == POOLED:
                part, left_out = pooled_z_points(series, window=window)
            else:
                part, left_out = domain_window(series, domain, window), []
            rows.append({
                **_row_labels(domain, predictor, group, part), "window": window,
                "left_out": "; ".join(left_out),
                **correlation_stats(part, n_resamples, confidence, rng),
            })  # fmt: skip
    return pd.DataFrame(rows)


def correlation_table(
    points: pd.DataFrame, group: str, n_resamples: int, confidence: float, seed: int
) -> pd.DataFrame:
    """Table 1 over both windows, the configured one (points' `window`) first and `primary`.

    Each window's bootstrap draws from its own generator seeded with `seed`, so that one
    window's CIs do not depend on whether the other is computed.
    """
    configured = str(points["window"].iloc[0])
    order = [configured] + [w for w in WINDOWS if w != configured]
    tables = [
        window_correlations(points, w, group, n_resamples, confidence, seed).assign(
            primary=w == configured
        )
        for w in order
    ]
    return pd.concat(tables, ignore_index=True)[CORRELATION_COLUMNS]


def primary_rows(correlations: pd.DataFrame) -> pd.DataFrame:
    """The rows of the configured window (what figures and verdicts read)."""
    return correlations[correlations["primary"].astype(bool)]


def nested_f_tests(points: pd.DataFrame, loss: str) -> pd.DataFrame:
    """Per domain and pathway metric, over the configured window: does the metric add to `loss`
    in predicting accuracy? The pooled row pools within-domain z-scores of all three."""
    wide = points.pivot_table(
        index=["domain", "step", "accuracy", "in_window", "rise_found"],
        columns="predictor",
        values="x",
    ).reset_index()
    rows = []
    for domain in sorted(wide["domain"].unique()) + [POOLED]:
        for metric in PATHWAY_PREDICTORS:
            if not {loss, metric} <= set(wide.columns):
                rows.append(_nested_row(domain, metric, loss, 0, None))
                continue
            columns = ("accuracy", loss, metric)
            if domain == POOLED:
                part, _ = pooled_z_points(wide, columns)
            else:
                part = domain_window(wide, domain).dropna(subset=list(columns))
            test = nested_f_test(part["accuracy"], part[loss], part[metric])
            rows.append(_nested_row(domain, metric, loss, len(part), test))
    return pd.DataFrame(rows, columns=NESTED_COLUMNS)


def _nested_row(domain, metric, loss, n, test: NestedTest | None) -> dict:
    values = (
        (test.r2_restricted, test.r2_full, test.f, test.p, test.df_num, test.df_denom)
        if test
        else (np.nan, np.nan, np.nan, np.nan, 0, 0)
    )
    return dict(zip(NESTED_COLUMNS, (domain, metric, loss, n, *values)))


def pooled_fit_bands(points: pd.DataFrame, confidence: float, n_grid: int = 50) -> pd.DataFrame:
    """Fig 7's lines: OLS of accuracy z on predictor z (within-domain, configured window), with
    the CI band of the mean."""
    frames = []
    for predictor in (p.name for p in PREDICTORS):
        part, _ = pooled_z_points(points[points["predictor"] == predictor])
        fit = ols_fit(part["x"], part["accuracy"], confidence)
        if fit is None:
            continue
        grid = np.linspace(part["x"].min(), part["x"].max(), n_grid)
        frames.append(fit_band(fit, grid, confidence).assign(predictor=predictor))
    if not frames:
        return pd.DataFrame(columns=FIT_COLUMNS)
    return pd.concat(frames, ignore_index=True)[FIT_COLUMNS]


# ---------------------------------------------------------------- trends over steps (Figs 4, 6)


@dataclass(frozen=True)
class Trend:
    steps: np.ndarray
    fitted: np.ndarray
    slope: float  # per 1000 steps for a linear trend; NaN for the quadratic
    p: float  # two-sided p of the linear slope; NaN for the quadratic
    coefficients: np.ndarray  # highest power first, in step units


def quadratic_trend(steps, values) -> Trend | None:
    """Least-squares parabola over every checkpoint (Fig 4's global panel)."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    if len(steps) < 3:
        return None
    scale = steps.max()
    # fit on steps / max so the normal equations stay well conditioned at 1e6 steps
    coefficients = np.polyfit(steps / scale, values, 2)
    fitted = np.polyval(coefficients, steps / scale)
    in_steps = coefficients / np.array([scale**2, scale, 1.0])
    return Trend(steps, fitted, float("nan"), float("nan"), in_steps)


def post_memorization_trend(steps, values, t_star: int) -> Trend | None:
    """Straight line through the checkpoints from t* on (Fig 4's domain panels)."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    after = steps >= t_star
    if after.sum() < 3:
        return None
    result = _scipy_stats().linregress(steps[after], values[after])
    fitted = result.intercept + result.slope * steps[after]
    return Trend(
        steps[after], fitted, float(result.slope * 1000), float(result.pvalue),
        np.array([result.slope, result.intercept]),
    )  # fmt: skip
