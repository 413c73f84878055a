"""results/{run}/summary.md: each paper claim beside our measurement, computed from the tables.

Every claim gets a verdict - holds, does not hold, or not measurable (the data to test it is
absent at this scale) - and the numbers behind it. The verdict rules are written next to each
claim; the thresholds they use (`strong_r`, `weak_r`, `alpha`) come from config `analysis.summary`.
Above the claims, the lab verdict (analysis/grokking.parquet, grokpath.analysis.verdict): does this run
memorize before it generalizes, per domain?
Correlation claims read the configured checkpoint window (the `primary` rows of the correlation
table; pooled rows pool within-domain z-scores, grokpath.analysis.stats); the markdown also shows Table 1
over the other window, compactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from grokpath.analysis.stats import (
    FIG7_PREDICTORS,
    PAPER_FIG7_R2,
    PAPER_TABLE1_PEARSON,
    POOLED,
    PREDICTORS,
    pearson,
    post_memorization_trend,
    primary_rows,
    quadratic_trend,
    spearman,
)
from grokpath.analysis.trends import (
    CONSISTENCY,
    EDIT_DISTANCE,
    TRAINING_LOSS,
    cross_domain_label,
    cumulative_generalized_fraction,
    entropy_distance_points,
    falling_after_memorization,
    layer_change_after,
    layer_order,
    select_rows,
)
from grokpath.evaluation.generalization import drop_contaminated
from grokpath.tableio import atomic_path

HOLDS, FAILS, UNMEASURABLE = "holds", "does not hold", "not measurable"
LOSS_PREDICTORS = ["training_loss", "training_loss_ma", "validation_loss"]


@dataclass(frozen=True)
class Claim:
    figure: str
    claim: str
    paper: str
    ours: str
    verdict: str
    claim_id: str = ""  # stable across runs and seeds (build_claims sets it): joins seeds' claims


# analysis/claims.parquet: one row per claim (`measured` is the summary's "ours")
CLAIM_COLUMNS = ["claim_id", "figure", "claim", "paper", "measured", "verdict"]


@dataclass(frozen=True)
class Thresholds:
    strong_r: float  # |r| at least this counts as a strong correlation
    weak_r: float  # |r| below this counts as weak
    alpha: float  # significance level


@dataclass
class SummaryInputs:
    """Every table the summary reads; the ablation dicts map a setting (as text) to its table."""

    run: str
    correlations: pd.DataFrame
    nested: pd.DataFrame
    accuracy: pd.DataFrame
    groups: pd.DataFrame
    generalization: pd.DataFrame
    contamination: pd.DataFrame
    matches: pd.DataFrame
    edit_distance: pd.DataFrame
    consistency: pd.DataFrame
    routing: pd.DataFrame
    loss_baselines: pd.DataFrame
    toy: pd.DataFrame
    fig4_groups: list[int]
    fig5_group: int | None
    fig6_groups: list[int]
    fig2_domain: str
    cross_domains: tuple[str, str]
    delta: float  # the memorization rule's delta: "flat" loss moves by no more than this
    threshold_ablation: dict[str, pd.DataFrame] = field(default_factory=dict)
    eps_ablation: dict[str, pd.DataFrame] = field(default_factory=dict)
    delta_ablation: dict[str, pd.DataFrame] = field(default_factory=dict)
    grokking: pd.DataFrame | None = None  # verdict.TABLE_COLUMNS; None without a probe
    dense: pd.DataFrame | None = None  # dense_correlations columns; None without the lab monitor


def fmt_number(value: float | None, digits: int = 2, sign: bool = True) -> str:
    """A number for summary.md: signed by default, "n/a" when missing or not finite."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


# ---------------------------------------------------------------- Fig 1-2: grokking


def leap_after_memorization(inputs: SummaryInputs) -> Claim:
    """Holds when, in every domain with generalized items, the step by which half of the finally
    generalized items have generalized lies after the median memorization step."""
    steps = sorted(inputs.accuracy["step"].unique())
    clean = drop_contaminated(inputs.generalization, inputs.contamination)
    cumulative = cumulative_generalized_fraction(clean, steps)
    parts, verdicts = [], []
    for domain, curve in cumulative.groupby("domain"):
        final = curve["fraction"].iloc[-1]
        sizes = inputs.groups[inputs.groups["domain"] == domain]
        if final == 0 or sizes.empty:
            parts.append(f"{domain}: no generalized items or no memorized group")
            continue
        half_step = int(curve.loc[curve["fraction"] >= final / 2, "step"].iloc[0])
        order = sizes.sort_values("t_star")
        cumulative_n = order["n_samples"].cumsum()
        median_t = int(order.loc[cumulative_n >= cumulative_n.iloc[-1] / 2, "t_star"].iloc[0])
        verdicts.append(half_step > median_t)
        parts.append(f"{domain}: median t* {median_t}, half generalized by {half_step}")
    verdict = UNMEASURABLE if not verdicts else HOLDS if all(verdicts) else FAILS
    return Claim(
        "Fig 1",
        "test generalization leaps after the training data is memorized",
        "leap after memorization in every domain",
        "; ".join(parts),
        verdict,
    )


def positive_delays(inputs: SummaryInputs) -> Claim:
    """Holds when the median delay (test group step - matched train group step) is positive."""
    claim = "matched test groups generalize after their training groups memorize"
    paper = "math delays 120k-485k steps"
    if inputs.matches.empty:
        return Claim("Fig 2", claim, paper, "no matched pairs", UNMEASURABLE)
    delays = inputs.matches["delay"].astype(float)
    ours = (
        f"{len(delays)} matched pairs, median delay {np.median(delays):.0f} steps, "
        f"{int((delays > 0).sum())} positive"
    )
    return Claim("Fig 2", claim, paper, ours, HOLDS if np.median(delays) > 0 else FAILS)


def delay_grows(inputs: SummaryInputs) -> Claim:
    """Holds when delay rises with the training group's t* (Spearman > 0) in the Fig 2 domain."""
    pairs = inputs.matches[inputs.matches["domain"] == inputs.fig2_domain]
    claim = f"the delay grows for groups memorized later ({inputs.fig2_domain})"
    paper = "5k->125k, 125k->490k, 245k->615k, 370k->855k"
    if len(pairs) < 3:
        return Claim("Fig 2", claim, paper, f"{len(pairs)} matched pairs", UNMEASURABLE)
    rho, p = spearman(pairs["train_group"], pairs["delay"])
    listed = ", ".join(f"{int(r.train_group)}->{int(r.test_group)}" for r in pairs.itertuples())
    ours = f"Spearman(t*, delay) {fmt_number(rho)} (p={p:.2g}); pairs {listed}"
    verdict = UNMEASURABLE if not np.isfinite(rho) else HOLDS if rho > 0 else FAILS
    return Claim("Fig 2", claim, paper, ours, verdict)


# ---------------------------------------------------------------- Figs 4-6: pathway trends


def _group_trends(
    table: pd.DataFrame, metric: str, groups: list[int]
) -> list[tuple[str, int, float]]:
    """(domain, t*, post-t* slope per 1k steps) for every domain panel and shown group."""
    domains = sorted(d for d in table["domain"].unique() if d != "all" and "|" not in d)
    found = []
    for domain in domains:
        for t_star in groups:
            series = select_rows(table, metric, domain, str(t_star))
            trend = post_memorization_trend(series["step"], series["value"], t_star)
            if trend is not None:
                found.append((domain, t_star, trend.slope))
    return found


def trend_after_memorization(
    table: pd.DataFrame,
    metric: str,
    groups: list[int],
    falling: bool,
    figure: str,
    claim: str,
    paper: str,
) -> Claim:
    """Holds when more than half of the (domain, group) trends after t* have the paper's sign."""
    trends = _group_trends(table, metric, groups)
    if not trends:
        return Claim(
            figure,
            claim,
            paper,
            f"groups {groups}: fewer than 3 checkpoints after t*",
            UNMEASURABLE,
        )
    right = [(d, t, s) for d, t, s in trends if (s < 0 if falling else s > 0)]
    listed = "; ".join(f"{d} t*={t}: {s:+.3g}/1k" for d, t, s in trends)
    ours = f"{len(right)}/{len(trends)} trends {'fall' if falling else 'rise'} after t* ({listed})"
    return Claim(figure, claim, paper, ours, HOLDS if 2 * len(right) > len(trends) else FAILS)


def rise_then_fall(inputs: SummaryInputs) -> Claim:
    """Holds when the global quadratic fit opens downwards (rise, then fall) for most groups."""
    shapes = []
    for t_star in inputs.fig4_groups:
        series = select_rows(inputs.edit_distance, EDIT_DISTANCE, "all", str(t_star))
        trend = quadratic_trend(series["step"], series["value"])
        if trend is not None:
            shapes.append((t_star, trend.coefficients[0]))
    claim = "edit distance rises during memorization, then falls (global quadratic)"
    if not shapes:
        return Claim("Fig 4", claim, "concave over steps", "no global series", UNMEASURABLE)
    concave = sum(c < 0 for _, c in shapes)
    ours = (
        f"{concave}/{len(shapes)} groups concave ("
        + ", ".join(f"t*={t}: {'concave' if c < 0 else 'convex'}" for t, c in shapes)
        + ")"
    )
    return Claim(
        "Fig 4", claim, "concave over steps", ours, HOLDS if 2 * concave > len(shapes) else FAILS
    )


def loss_flat_after_memorization(inputs: SummaryInputs) -> Claim:
    """Holds when the groups' training loss moves by at most delta from t* to the last step."""
    changes = []
    for t_star in inputs.fig4_groups:
        series = select_rows(inputs.loss_baselines, TRAINING_LOSS, "all", str(t_star))
        change = layer_change_after(series["step"], series["value"], t_star)
        if np.isfinite(change):
            changes.append((t_star, change))
    claim = "training loss of the memorized groups stays flat meanwhile"
    delta = inputs.delta
    if not changes:
        return Claim(
            "Fig 4", claim, "flat", "no shown group has global training-loss rows", UNMEASURABLE
        )
    ours = ", ".join(f"t*={t}: {c:+.3f}" for t, c in changes) + f" (delta {delta})"
    flat = all(abs(c) <= delta for _, c in changes)
    return Claim("Fig 4", claim, "flat", ours, HOLDS if flat else FAILS)


def early_layers_drop(inputs: SummaryInputs) -> Claim:
    """Holds when the largest drop after t* is in the first half of the layers and the last
    layer's distance rises."""
    claim = "early layers' distance drops most; the last layer's rises"
    t_star = inputs.fig5_group
    rows = inputs.edit_distance[
        (inputs.edit_distance["metric"] == EDIT_DISTANCE)
        & (inputs.edit_distance["domain"] == "all")
        & (inputs.edit_distance["group"] == str(t_star))
    ]
    layers = layer_order(rows)
    if t_star is None or len(layers) < 2:
        return Claim("Fig 5", claim, "16 layers, 245k group", "no per-layer rows", UNMEASURABLE)
    changes = {}
    for layer in layers:
        series = rows[rows["layer"] == layer].sort_values("step")
        changes[layer] = layer_change_after(series["step"], series["value"], t_star)
    if not all(np.isfinite(list(changes.values()))):
        return Claim(
            "Fig 5",
            claim,
            "16 layers, 245k group",
            f"t*={t_star} is not a checkpoint",
            UNMEASURABLE,
        )
    largest_drop = min(changes, key=changes.get)
    early = layers.index(largest_drop) < len(layers) / 2
    ours = f"t*={t_star}: " + ", ".join(f"L{l} {c:+.2f}" for l, c in changes.items())
    verdict = HOLDS if early and changes[layers[-1]] > 0 else FAILS
    return Claim("Fig 5", claim, "16 layers, 245k group", ours, verdict)


# ---------------------------------------------------------------- Table 1 and Fig 7


def _rise_domains(correlations: pd.DataFrame) -> pd.DataFrame:
    """Per-domain rows of the configured window, domains with an accuracy rise only."""
    rows = primary_rows(correlations)
    return rows[(rows["domain"] != POOLED) & rows["rise_found"].astype(bool)]


def table1_sign(inputs: SummaryInputs, predictor: str, sign: int, thresholds: Thresholds) -> Claim:
    """Holds when every domain with an accuracy rise has Pearson r of the paper's sign and
    |r| >= strong_r."""
    low, high = PAPER_TABLE1_PEARSON[predictor]
    rows = _rise_domains(inputs.correlations)
    rows = rows[rows["predictor"] == predictor]
    claim = f"{predictor.replace('_', ' ')} correlates {'positively' if sign > 0 else 'negatively'} with accuracy"
    paper = f"Pearson {low:+.2f} to {high:+.2f}"
    if rows.empty or rows["pearson_r"].isna().all():
        return Claim("Table 1", claim, paper, "no domain with an accuracy rise", UNMEASURABLE)
    parts = [
        f"{r.domain} {fmt_number(r.pearson_r)} "
        f"[{fmt_number(r.pearson_ci_low)}, {fmt_number(r.pearson_ci_high)}]"
        for r in rows.itertuples()
    ]
    r = rows["pearson_r"].to_numpy(float)
    ok = np.all(np.sign(r) == sign) and np.all(np.abs(r) >= thresholds.strong_r)
    return Claim("Table 1", claim, paper, "; ".join(parts), HOLDS if ok else FAILS)


def loss_is_weaker(inputs: SummaryInputs) -> Claim:
    """Holds when the loss predictors' mean |Pearson| is below the pathway metrics' mean |Pearson|
    over the domains with an accuracy rise."""
    rows = _rise_domains(inputs.correlations)
    claim = "the loss rows are weaker predictors than the pathway metrics"
    pathway = rows[rows["predictor"].isin(["edit_distance", "consistency"])]["pearson_r"].abs()
    loss = rows[rows["predictor"].isin(LOSS_PREDICTORS)]["pearson_r"].abs()
    if pathway.dropna().empty or loss.dropna().empty:
        return Claim(
            "Table 1", claim, "loss rows weak or wrong sign", "no domain with a rise", UNMEASURABLE
        )
    ours = f"mean |r|: pathway metrics {pathway.mean():.2f}, loss rows {loss.mean():.2f}"
    return Claim(
        "Table 1",
        claim,
        "loss rows weak or wrong sign",
        ours,
        HOLDS if pathway.mean() > loss.mean() else FAILS,
    )


def fig7_r2(inputs: SummaryInputs) -> Claim:
    """Holds when the pooled R^2 (within-domain z-scores, configured window) of distance and
    consistency both exceed every loss row's."""
    rows = primary_rows(inputs.correlations)
    pooled = rows[rows["domain"] == POOLED].set_index("predictor")
    r2 = {p: float(pooled["r2"].get(p, np.nan)) for p in FIG7_PREDICTORS}
    paper = ", ".join(f"{p} {v:.2f}" for p, v in PAPER_FIG7_R2.items())
    ours = "within-domain z: " + ", ".join(f"{p} {v:.2f}" for p, v in r2.items())
    claim = "pathway metrics fit accuracy better than loss (R^2)"
    if not np.isfinite(r2["edit_distance"]) or not np.isfinite(r2["consistency"]):
        return Claim("Fig 7", claim, paper, ours, UNMEASURABLE)
    best_loss = np.nanmax([r2[p] for p in LOSS_PREDICTORS])
    ok = min(r2["edit_distance"], r2["consistency"]) > best_loss
    return Claim("Fig 7", claim, paper, ours, HOLDS if ok else FAILS)


def metric_adds_to_loss(inputs: SummaryInputs, thresholds: Thresholds) -> Claim:
    """Beyond the paper. Holds when, pooled (within-domain z-scores), adding edit distance to
    training loss improves the fit significantly (nested F-test p < alpha)."""
    rows = inputs.nested[(inputs.nested["domain"] == POOLED)]
    claim = "(beyond the paper) a pathway metric adds to training loss in predicting accuracy"
    parts = [
        f"{r.metric}: R^2 {r.r2_loss:.2f} -> {r.r2_loss_metric:.2f}, F={r.f:.3g}, p={r.p:.2g}"
        for r in rows.itertuples()
        if np.isfinite(r.p)
    ]
    distance = rows[rows["metric"] == "edit_distance"]["p"]
    if distance.dropna().empty:
        return Claim(
            "F-test", claim, "not tested in the paper", "too few checkpoints", UNMEASURABLE
        )
    ok = float(distance.iloc[0]) < thresholds.alpha
    return Claim(
        "F-test",
        claim,
        "not tested in the paper",
        "pooled within-domain z: " + "; ".join(parts),
        HOLDS if ok else FAILS,
    )


def small_moe_correlations(inputs: SummaryInputs, thresholds: Thresholds) -> Claim:
    """The paper's nanoMoE replication (small MoE, zero-shot): holds when |r| >= strong_r for
    distance and consistency in every domain with a rise."""
    rows = _rise_domains(inputs.correlations)
    rows = rows[rows["predictor"].isin(["edit_distance", "consistency"])]
    claim = "a small MoE evaluated zero-shot shows the same strong correlations"
    if rows["pearson_r"].dropna().empty:
        return Claim("App. nanoMoE", claim, "|r| 0.8-1.0", "no domain with a rise", UNMEASURABLE)
    r = rows["pearson_r"].abs()
    ours = f"|r| from {r.min():.2f} to {r.max():.2f} over {len(rows)} (domain, metric) pairs"
    return Claim(
        "App. nanoMoE",
        claim,
        "|r| 0.8-1.0",
        ours,
        HOLDS if (r >= thresholds.strong_r).all() else FAILS,
    )


# ---------------------------------------------------------------- ablations, Figs 12-13, theory


def ablation_claim(tables: dict[str, pd.DataFrame], figure: str, what: str, paper: str) -> Claim:
    """Holds when, in every setting, more than half of the groups' global distance falls after t*."""
    claim = f"the distance trend survives the {what} ablation"
    if not tables:
        return Claim(figure, claim, paper, "no settings configured", UNMEASURABLE)
    counts = {value: falling_after_memorization(table) for value, table in tables.items()}
    measurable = {v: c for v, c in counts.items() if c.with_trend}
    if not measurable:
        return Claim(figure, claim, paper, "no group with 3 checkpoints after t*", UNMEASURABLE)
    ours = ", ".join(f"{v}: {c.falling}/{c.with_trend} fall" for v, c in counts.items())
    ok = all(2 * c.falling > c.with_trend for c in measurable.values())
    return Claim(figure, claim, paper, ours, HOLDS if ok else FAILS)


def cross_domain_no_trend(inputs: SummaryInputs, thresholds: Thresholds) -> Claim:
    """Holds when the cross-domain distance has no significant monotone trend over steps."""
    a, b = inputs.cross_domains
    series = select_rows(
        inputs.edit_distance, f"{EDIT_DISTANCE}_cross", cross_domain_label(a, b), "all"
    )
    claim = f"{a} x {b} pathway distance shows no trend"
    rho, p = spearman(series["step"], series["value"])
    if not np.isfinite(p):
        return Claim("Fig 12", claim, "no trend", "no cross-domain rows", UNMEASURABLE)
    ours = f"Spearman with step {fmt_number(rho)} (p={p:.2g}, {len(series)} checkpoints)"
    return Claim("Fig 12", claim, "no trend", ours, HOLDS if p >= thresholds.alpha else FAILS)


def entropy_is_not_distance(inputs: SummaryInputs, thresholds: Thresholds) -> Claim:
    """Holds when routing entropy and edit distance correlate only weakly (|r| < weak_r)."""
    points = entropy_distance_points(inputs.edit_distance, inputs.routing)
    r, p = pearson(points["routing_entropy"], points["edit_distance"])
    claim = "routing entropy is only weakly related to edit distance"
    if not np.isfinite(r):
        return Claim("Fig 13", claim, "r = 0.24", "no paired rows", UNMEASURABLE)
    ours = f"r = {fmt_number(r)} (p={p:.2g}, {len(points)} per-layer sets)"
    return Claim("Fig 13", claim, "r = 0.24", ours, HOLDS if abs(r) < thresholds.weak_r else FAILS)


def theory_toy_claim(inputs: SummaryInputs, thresholds: Thresholds) -> Claim:
    """Holds when the toy's effective dimension rises with edit distance (r > 0, p < alpha)."""
    r, p = pearson(inputs.toy["edit_distance"], inputs.toy["effective_dim"])
    claim = "in a one-layer MoE toy, edit distance tracks the effective dimension"
    if not np.isfinite(r):
        return Claim("Fig 8", claim, "tracks", "too few seeds", UNMEASURABLE)
    ours = f"r = {fmt_number(r)} (p={p:.2g}) over {len(inputs.toy)} seeds"
    return Claim("Fig 8", claim, "tracks", ours, HOLDS if r > 0 and p < thresholds.alpha else FAILS)


def lora_rank_claim() -> Claim:
    return Claim(
        "App. LoRA",
        "results hold with LoRA rank 64",
        "same trends",
        "rank-64 instruction tuning is not part of this workflow",
        UNMEASURABLE,
    )


# build_claims' order; an id names the claim, never its position, so add new ones anywhere
CLAIM_IDS = [
    "fig1_leap_after_memorization",
    "fig2_positive_delays",
    "fig2_delay_grows",
    "fig4_rise_then_fall",
    "fig4_distance_falls_after_memorization",
    "fig4_loss_flat_after_memorization",
    "fig5_early_layers_drop",
    "fig6_consistency_rises_after_memorization",
    "table1_edit_distance_negative",
    "table1_consistency_positive",
    "table1_loss_is_weaker",
    "fig7_r2",
    "fig7_metric_adds_to_loss",
    "nanomoe_correlations",
    "fig9_threshold_ablation",
    "fig10_eps_ablation",
    "fig11_delta_ablation",
    "fig12_cross_domain_no_trend",
    "fig13_entropy_is_not_distance",
    "fig8_theory_toy",
    "lora_rank",
]


def build_claims(inputs: SummaryInputs, thresholds: Thresholds) -> list[Claim]:
    claims = _claims(inputs, thresholds)
    if len(claims) != len(CLAIM_IDS):
        raise AssertionError(f"{len(claims)} claims for {len(CLAIM_IDS)} ids: update CLAIM_IDS")
    return [c if c.claim_id else replace(c, claim_id=i) for c, i in zip(claims, CLAIM_IDS)]


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    """CLAIM_COLUMNS, one row per claim in summary order (analysis/claims.parquet)."""
    rows = [[c.claim_id, c.figure, c.claim, c.paper, c.ours, c.verdict] for c in claims]
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS).astype(str)


def _claims(inputs: SummaryInputs, thresholds: Thresholds) -> list[Claim]:
    return [
        leap_after_memorization(inputs),
        positive_delays(inputs),
        delay_grows(inputs),
        rise_then_fall(inputs),
        trend_after_memorization(
            inputs.edit_distance,
            EDIT_DISTANCE,
            inputs.fig4_groups,
            True,
            "Fig 4",
            "edit distance falls after memorization (per domain)",
            "falls after t*",
        ),
        loss_flat_after_memorization(inputs),
        early_layers_drop(inputs),
        trend_after_memorization(
            inputs.consistency,
            CONSISTENCY,
            inputs.fig6_groups,
            False,
            "Fig 6",
            "consistency rises after memorization (per domain)",
            "rises after t*",
        ),
        table1_sign(inputs, "edit_distance", -1, thresholds),
        table1_sign(inputs, "consistency", +1, thresholds),
        loss_is_weaker(inputs),
        fig7_r2(inputs),
        metric_adds_to_loss(inputs, thresholds),
        small_moe_correlations(inputs, thresholds),
        ablation_claim(inputs.threshold_ablation, "Fig 9", "routing threshold", "same trend at 0.5-0.8"),
        ablation_claim(inputs.eps_ablation, "Fig 10", "eps", "same trend at eps 1.5-2.0"),
        ablation_claim(inputs.delta_ablation, "Fig 11", "delta", "same trend at delta 0.03-0.05"),
        cross_domain_no_trend(inputs, thresholds),
        entropy_is_not_distance(inputs, thresholds),
        theory_toy_claim(inputs, thresholds),
        lora_rank_claim(),
    ]


# ---------------------------------------------------------------- markdown


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def claims_markdown(claims: list[Claim]) -> str:
    lines = ["| paper | claim | paper's number | ours | verdict |", "|---|---|---|---|---|"]
    lines += [
        "| "
        + " | ".join(_md_cell(v) for v in (c.figure, c.claim, c.paper, c.ours, f"**{c.verdict}**"))
        + " |"
        for c in claims
    ]
    return "\n".join(lines)


def table1_markdown(correlations: pd.DataFrame) -> str:
    """The configured window's rows, per domain and pooled (within-domain z)."""
    lines = [
        "| domain | predictor | n | Pearson r [95% boot. CI] (p) | CI method | Spearman rho (p) "
        "| R^2 | LOO R^2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = {p.name: i for i, p in enumerate(PREDICTORS)}
    rows = primary_rows(correlations)
    rows = rows.assign(_order=rows["predictor"].map(order))
    for r in rows.sort_values(["domain", "_order"]).itertuples():
        lines.append(
            f"| {r.domain} | {r.predictor} | {r.n_checkpoints} | {fmt_number(r.pearson_r)} "
            f"[{fmt_number(r.pearson_ci_low)}, {fmt_number(r.pearson_ci_high)}] "
            f"(p={r.pearson_p:.2g}) | "
            f"{r.pearson_ci_method} | {fmt_number(r.spearman_rho)} (p={r.spearman_p:.2g}) | "
            f"{fmt_number(r.r2, sign=False)} | {fmt_number(r.loo_r2, sign=False)} |"
        )
    return "\n".join(lines + _left_out_lines(rows))


def _left_out_lines(rows: pd.DataFrame) -> list[str]:
    """Say which domains a pooled row leaves out, and why (no rise, or no spread to z-score)."""
    pooled = rows[(rows["domain"] == POOLED) & (rows["left_out"] != "")]
    notes = [f"- {r.predictor}: left out of the pool: {r.left_out}" for r in pooled.itertuples()]
    return ["", *notes] if notes else []


def other_window_markdown(correlations: pd.DataFrame) -> str:
    """Pearson r per domain and pooled over the window not configured, R^2 pooled: compact."""
    rows = correlations[~correlations["primary"].astype(bool)]
    if rows.empty:
        return "(no other window in the table)"
    domains = sorted(d for d in rows["domain"].unique() if d != POOLED)
    header = ["predictor", *(f"{d} r" for d in domains), "pooled r", "pooled R^2"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cell = rows.set_index(["domain", "predictor"])
    for predictor in (p.name for p in PREDICTORS):
        values = [fmt_number(cell.loc[(d, predictor), "pearson_r"]) for d in [*domains, POOLED]]
        r2 = float(cell.loc[(POOLED, predictor), "r2"])
        lines.append(f"| {predictor} | {' | '.join(values)} | {r2:.2f} |")
    n = ", ".join(f"{d} {cell.loc[(d, PREDICTORS[0].name), 'n_checkpoints']}" for d in domains)
    return f"Window `{rows['window'].iloc[0]}` (checkpoints: {n}).\n\n" + "\n".join(lines)


def _steps(part: pd.DataFrame, column: str) -> str:
    return ", ".join(str(s) for s in part.loc[part[column].astype(bool), "step"])


def window_markdown(accuracy: pd.DataFrame) -> str:
    """Per domain: both windows' steps, the accuracy over the configured one, and the flags."""
    lines = [
        "| domain | paper window steps | rise window steps | accuracy over the configured window "
        "| rise found | rise starts after the paper window's first step |",
        "|---|---|---|---|---|---|",
    ]
    for domain, part in accuracy.groupby("domain"):
        window = part[part["in_window"].astype(bool)]
        lines.append(
            f"| {domain} | {_steps(part, 'in_paper_window')} | {_steps(part, 'in_rise_window')} | "
            f"{', '.join(f'{a:.2f}' for a in window['accuracy'])} | "
            f"{bool(part['rise_found'].all())} | {bool(part['late_rise'].any())} |"
        )
    return "\n".join(lines)


GROKKING_RULE = (
    "Per domain, gain = (accuracy - chance) / (1 - chance) (chance 0 for exact match, 1/choices "
    "for multiple choice) at the saved checkpoints. t_fit: first checkpoint with probe training "
    "accuracy >= 0.9; t_gen50: first checkpoint whose lm-eval test gain reaches half the final "
    "gain; t_mem50: step by which half the memorized samples have their t*. A domain groks when "
    "it fits, its final gain is >= 0.5, its gain at t_fit is <= half the final gain and "
    "t_gen50 - t_mem50 > 0. Staggered: the grokking domains' (at least two) t_gen50 spread over "
    "at least a quarter of the run. Rules in `src/grokpath/analysis/verdict.py`."
)


def _step(value) -> str:
    return "-" if pd.isna(value) else str(int(value))


def _gain(value) -> str:
    return "-" if pd.isna(value) else f"{value:.2f}"


def grokking_markdown(grokking: pd.DataFrame | None) -> str:
    heading = "## Does this run show memorization before generalization?"
    if grokking is None or grokking.empty:
        # paper scale: hub checkpoints come without the pretraining probe the verdict reads
        return f"{heading}\n\nNot measurable here: no pretraining probe (lab checkpoints only)."
    lines = [
        "| domain | t_fit | gain at fit | final gain | t_mem50 | t_gen50 | gap | groks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in grokking.sort_values("domain").itertuples():
        groks = "yes" if r.groks else f"no ({r.reason})"
        lines.append(
            f"| {r.domain} | {_step(r.t_fit)} | {_gain(r.gain_at_fit)} | {_gain(r.final_gain)} | "
            f"{_step(r.t_mem50)} | {_step(r.t_gen50)} | {_step(r.gap)} | {_md_cell(groks)} |"
        )
    first = grokking.iloc[0]
    last_step = int(first["last_step"])
    if pd.isna(first["t_gen50_spread"]):
        stagger = f"Staggered: no (fewer than two domains grok; run of {last_step} steps)"
    else:
        stagger = (f"Staggered: {'yes' if first['staggered'] else 'no'} (t_gen50 spread "
                   f"{int(first['t_gen50_spread'])} steps of {last_step})")  # fmt: skip
    count = f"{int(grokking['groks'].sum())} of {len(grokking)} domains grok."
    return "\n\n".join([heading, count, "\n".join(lines), stagger, GROKKING_RULE])


DENSE_METRICS = ("edit_distance_char", "consistency_norm_mean_cos", "consistency_mean_cos", "routing_entropy",
                 "probe_loss")  # fmt: skip


def dense_markdown(dense: pd.DataFrame | None) -> str:
    """Each monitor metric vs the probe's test accuracy over every monitor step after the fit."""
    heading = "## Dense correlations (pathway monitor, every monitor step after the fit)"
    if dense is None or dense.empty:
        return f"{heading}\n\nNot measurable here: no pathway monitor (lab pretraining only)."
    shown = dense[dense["metric"].isin(DENSE_METRICS)]
    metrics = [m for m in DENSE_METRICS if m in set(shown["metric"])]
    lines = ["| domain | t_fit | steps | n | " + " | ".join(f"{m} r (rho)" for m in metrics) + " |",
             "|---|---|---|---|" + "---|" * len(metrics)]  # fmt: skip
    for domain, rows in shown.groupby("domain", sort=True):
        by_metric = rows.set_index("metric")
        first = rows.iloc[0]
        cells = [f"{fmt_number(by_metric.at[m, 'pearson_r'])} "
                 f"({fmt_number(by_metric.at[m, 'spearman_r'])})"
                 if m in by_metric.index else "-" for m in metrics]  # fmt: skip
        span = "-" if pd.isna(first["first_step"]) else f"{int(first['first_step'])}-{int(first['last_step'])}"
        lines.append(f"| {domain} | {_step(first['t_fit'])} | {span} | {int(rows['n'].max())} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    note = ("Pearson r (Spearman rho) of each metric against the accuracy probe's test accuracy over "
            "the monitor's steps from the domain's fit (first probe step with training accuracy >= "
            "0.9) to the end; no p-values, since consecutive steps are autocorrelated. Beside the "
            "ten-checkpoint Table 1 below, these use every monitor step.")  # fmt: skip
    return "\n\n".join([heading, "\n".join(lines), note])


def configured_window(accuracy: pd.DataFrame) -> str:
    return str(accuracy["window"].iloc[0])


def summary_markdown(inputs: SummaryInputs, claims: list[Claim], rule_text: str) -> str:
    counts = {v: sum(c.verdict == v for c in claims) for v in (HOLDS, FAILS, UNMEASURABLE)}
    return (
        "\n\n".join(
            [
                f"# Paper claims vs run `{inputs.run}`",
                grokking_markdown(inputs.grokking),
                "## Paper claims",
                f"{counts[HOLDS]} hold, {counts[FAILS]} do not hold, {counts[UNMEASURABLE]} are not "
                "measurable here. Every number below is computed from this run's tables "
                "(results/{run}/analysis, metrics, eval, theory); the verdict rules are in "
                "`src/grokpath/analysis/summary.py`.",
                claims_markdown(claims),
                dense_markdown(inputs.dense),
                "## Checkpoint windows of the correlations",
                f"Configured window: `{configured_window(inputs.accuracy)}` (figures and "
                "verdicts). " + rule_text,
                window_markdown(inputs.accuracy),
                "## Table 1 (configured window; bootstrap CIs and leave-one-checkpoint-out R^2; "
                "pooled rows pool within-domain z-scores)",
                table1_markdown(inputs.correlations),
                "## Table 1 over the other window (Pearson r; pooled: within-domain z-scores)",
                other_window_markdown(inputs.correlations),
            ]
        )
        + "\n"
    )


def write_summary(text: str, path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
