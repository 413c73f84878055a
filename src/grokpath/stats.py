"""Do pathway metrics predict test accuracy? Correlations, fits and their uncertainty (paper Table 1, Fig 7).

Test accuracy of a domain at a checkpoint is the mean of `correct` over its non-contaminated test
items. Each predictor is one tidy-metric series per domain and checkpoint (see `PREDICTORS`).

Checkpoint window (the paper used "the checkpoints after the sustained rise in accuracy", about
5 of 10). `sustained_rise_window` makes that explicit:
- gain = max(accuracy) - accuracy at the first checkpoint; below `min_gain` the domain has no
  rise: every checkpoint is used and the rows are flagged `rise_found = False`;
- level = first accuracy + `rise_fraction` x gain; the window starts at the earliest checkpoint
  from which accuracy stays >= level at every later checkpoint, and runs to the last one;
- a window shorter than `min_checkpoints` is extended backwards to that many checkpoints.
The window starts where the rise does, so it holds the variation in accuracy a correlation needs.

Per (domain, predictor) over the window: Pearson and Spearman with p-values (scipy), a seeded
percentile bootstrap CI over checkpoints for each, OLS of accuracy on the predictor (statsmodels:
R^2, MSE = mean squared residual, slope with CI), and leave-one-checkpoint-out predictive R^2.
"pooled" rows use every domain's window together (paper Fig 7's one R^2 per metric); domains
without a rise stay out of the pool. `nested_f_tests` asks whether a pathway metric adds to the
training loss: OLS "accuracy ~ loss + metric" against "accuracy ~ loss".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from grokpath.errors import GrokpathError
from grokpath.generalization import drop_contaminated

POOLED = "pooled"


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

CORRELATION_COLUMNS = [
    "domain", "predictor", "metric", "group", "n_checkpoints", "steps", "rise_found",
    "pearson_r", "pearson_p", "pearson_ci_low", "pearson_ci_high",
    "spearman_rho", "spearman_p", "spearman_ci_low", "spearman_ci_high", "n_boot_valid",
    "r2", "mse", "slope", "slope_ci_low", "slope_ci_high", "intercept", "loo_r2",
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


def sustained_rise_window(
    accuracy: np.ndarray, rise_fraction: float, min_gain: float, min_checkpoints: int
) -> Window:
    """The checkpoints from the start of the sustained accuracy rise to the last (module doc)."""
    accuracy = np.asarray(accuracy, dtype=float)
    n = len(accuracy)
    if n == 0:
        raise GrokpathError("accuracy window: no checkpoints")
    gain = accuracy.max() - accuracy[0]
    if gain < min_gain:
        return Window(0, False)
    level = accuracy[0] + rise_fraction * gain
    # stays_above[i]: accuracy >= level at checkpoint i and at every later one
    stays_above = np.logical_and.accumulate((accuracy >= level)[::-1])[::-1]
    start = int(np.argmax(stays_above)) if stays_above.any() else n - 1
    return Window(max(0, min(start, n - min_checkpoints)), True)


def accuracy_with_window(
    accuracy: pd.DataFrame, rise_fraction: float, min_gain: float, min_checkpoints: int
) -> pd.DataFrame:
    """The accuracy table plus in_window and rise_found per row."""
    frames = []
    for _, part in accuracy.groupby("domain", sort=True):
        part = part.sort_values("step").reset_index(drop=True)
        window = sustained_rise_window(
            part["accuracy"].to_numpy(), rise_fraction, min_gain, min_checkpoints
        )
        frames.append(
            part.assign(in_window=part.index >= window.start, rise_found=window.rise_found)
        )
    return pd.concat(frames, ignore_index=True)


def window_rule_text(rise_fraction: float, min_gain: float, min_checkpoints: int) -> str:
    return (
        "Per domain, from the first checkpoint after which test accuracy stays at or above "
        f"first + {rise_fraction} x (max - first) to the last checkpoint, at least "
        f"{min_checkpoints} checkpoints; a domain whose accuracy gains less than {min_gain} has "
        "no rise: all its checkpoints are used, it is flagged, and it stays out of the pooled fit."
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
    """Long table: domain, step, predictor, x, accuracy, in_window, rise_found.

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
    columns = ["domain", "step", "predictor", "x", "accuracy", "in_window", "rise_found"]
    return points[columns].sort_values(["predictor", "domain", "step"], ignore_index=True)


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


def row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of two (resamples, n) arrays; NaN where a row is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / denominator
    return np.where(denominator > 0, r, np.nan)


def row_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho per row: Pearson of the average ranks (scipy's definition)."""
    return row_pearson(_scipy_stats().rankdata(x, axis=1), _scipy_stats().rankdata(y, axis=1))


ROW_STATISTICS = {"pearson": row_pearson, "spearman": row_spearman}


def bootstrap_ci(
    x, y, statistic: str, n_resamples: int, confidence: float, rng: np.random.Generator
) -> tuple[float, float, int]:
    """Percentile CI of a correlation over checkpoints resampled in pairs with replacement.

    `statistic` is "pearson" or "spearman". Resamples where it is undefined (a constant side:
    few distinct checkpoints drawn) are dropped; the count kept is returned so that a CI
    resting on few resamples is visible.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if _degenerate(x, y):
        return float("nan"), float("nan"), 0
    index = rng.integers(0, len(x), size=(n_resamples, len(x)))
    values = ROW_STATISTICS[statistic](x[index], y[index])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), 0
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high), int(len(values))


@dataclass(frozen=True)
class LinearFit:
    slope: float
    intercept: float
    slope_ci: tuple[float, float]
    r2: float
    mse: float  # mean squared residual (the paper's MSE), not the unbiased sigma^2
    result: object  # the statsmodels results, for prediction bands


def ols_fit(x, y, confidence: float = 0.95) -> LinearFit | None:
    """OLS of y on x with an intercept; None when the fit is undefined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0:
        return None
    result = _ols(y, _add_constant(x))
    ci = result.conf_int(alpha=1 - confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = float(result.rsquared)  # undefined (NaN) when accuracy does not vary
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

    Can be negative (worse than predicting the mean); NaN below 4 points, where a fit on the
    other n - 1 < 3 points has no residual freedom to speak of.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 4 or np.ptp(y) == 0:
        return float("nan")
    total = np.sum((y - y.mean()) ** 2)
    press = 0.0
    for left_out in range(n):
        keep = np.arange(n) != left_out
        if np.ptp(x[keep]) == 0:
            return float("nan")
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        press += (y[left_out] - (slope * x[left_out] + intercept)) ** 2
    return float(1 - press / total)


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
    design_full = _add_constant(np.column_stack([base, extra]))
    if len(y) < 4 or np.linalg.matrix_rank(design_full) < 3:
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


# ---------------------------------------------------------------- tables over domains


def _window_points(points: pd.DataFrame, domain: str) -> pd.DataFrame:
    if domain == POOLED:
        return points[points["in_window"] & points["rise_found"]]
    return points[(points["domain"] == domain) & points["in_window"]]


def correlation_row(
    domain: str, predictor: str, group: str, part: pd.DataFrame, n_resamples: int,
    confidence: float, rng: np.random.Generator,
) -> dict:  # fmt: skip
    x, y = part["x"].to_numpy(float), part["accuracy"].to_numpy(float)
    r, r_p = pearson(x, y)
    rho, rho_p = spearman(x, y)
    r_low, r_high, n_boot = bootstrap_ci(x, y, "pearson", n_resamples, confidence, rng)
    rho_low, rho_high, _ = bootstrap_ci(x, y, "spearman", n_resamples, confidence, rng)
    fit = ols_fit(x, y, confidence)
    spec = PREDICTOR_BY_NAME[predictor]
    return {
        "domain": domain, "predictor": predictor, "metric": spec.metric,
        "group": spec.fixed_group or group, "n_checkpoints": len(part),
        "steps": ",".join(str(s) for s in sorted(part["step"].unique())),
        "rise_found": bool(part["rise_found"].all()) if len(part) else False,
        "pearson_r": r, "pearson_p": r_p, "pearson_ci_low": r_low, "pearson_ci_high": r_high,
        "spearman_rho": rho, "spearman_p": rho_p,
        "spearman_ci_low": rho_low, "spearman_ci_high": rho_high, "n_boot_valid": n_boot,
        "r2": fit.r2 if fit else np.nan, "mse": fit.mse if fit else np.nan,
        "slope": fit.slope if fit else np.nan,
        "slope_ci_low": fit.slope_ci[0] if fit else np.nan,
        "slope_ci_high": fit.slope_ci[1] if fit else np.nan,
        "intercept": fit.intercept if fit else np.nan, "loo_r2": loo_predictive_r2(x, y),
    }  # fmt: skip


def correlation_table(
    points: pd.DataFrame, group: str, n_resamples: int, confidence: float, seed: int
) -> pd.DataFrame:
    """One row per (domain or "pooled", predictor) over the window checkpoints (Table 1)."""
    rng = np.random.default_rng(seed)
    domains = sorted(points["domain"].unique()) + [POOLED]
    rows = []
    for domain in domains:
        for predictor in (p.name for p in PREDICTORS):
            part = _window_points(points[points["predictor"] == predictor], domain)
            rows.append(
                correlation_row(domain, predictor, group, part, n_resamples, confidence, rng)
            )
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def nested_f_tests(points: pd.DataFrame, loss: str) -> pd.DataFrame:
    """Per domain and pathway metric: does the metric add to `loss` in predicting accuracy?"""
    wide = points.pivot_table(
        index=["domain", "step", "accuracy", "in_window", "rise_found"],
        columns="predictor",
        values="x",
    ).reset_index()
    rows = []
    for domain in sorted(wide["domain"].unique()) + [POOLED]:
        part = _window_points(wide, domain)
        for metric in PATHWAY_PREDICTORS:
            if not {loss, metric} <= set(part.columns):
                rows.append(_nested_row(domain, metric, loss, 0, None))
                continue
            usable = part.dropna(subset=[loss, metric])
            test = nested_f_test(usable["accuracy"], usable[loss], usable[metric])
            rows.append(_nested_row(domain, metric, loss, len(usable), test))
    return pd.DataFrame(rows, columns=NESTED_COLUMNS)


def _nested_row(domain, metric, loss, n, test: NestedTest | None) -> dict:
    values = (
        (test.r2_restricted, test.r2_full, test.f, test.p, test.df_num, test.df_denom)
        if test
        else (np.nan, np.nan, np.nan, np.nan, 0, 0)
    )
    return dict(zip(NESTED_COLUMNS, (domain, metric, loss, n, *values)))


def pooled_fit_bands(points: pd.DataFrame, confidence: float, n_grid: int = 50) -> pd.DataFrame:
    """Fitted line and CI band of accuracy on each predictor over the pooled window (Fig 7)."""
    frames = []
    for predictor in (p.name for p in PREDICTORS):
        part = _window_points(points[points["predictor"] == predictor], POOLED)
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
