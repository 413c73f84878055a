"""Several seeds: one whole run per seed, and what holds across them (results/{run}/seeds/).

Config `seeds` (default `[seed]`) lists the seeds. Each seed is a whole run, corpus split and
model initialisation included, under results/{run}/seed{N}/ (the Snakefile loads rules/run.smk
as one Snakemake module per seed, grokpath.config.seed_run_config); one seed keeps the plain
results/{run}/. The aggregation (rules/seeds.smk) reads each seed's tables and reports:

- seeds/table1_per_seed.parquet, `PER_SEED_COLUMNS`: every seed's Table 1 rows of the configured
  window (the `primary` rows of analysis/table1_correlations.parquet), with a `seed` column.
- seeds/table1_across_seeds.parquet, `ACROSS_COLUMNS`: per domain (and the within-domain z pool)
  and predictor, over the seeds whose Pearson r is defined (n_seeds, seeds): mean, sd (ddof 1;
  NaN for one seed), min and max of Pearson r, Spearman rho, R^2 and the mean leave-one-out R^2;
  n_negative / n_positive: seeds whose r is below / above 0.
- seeds/claims_across_seeds.parquet, `CLAIMS_ACROSS_COLUMNS`: per paper claim (analysis/claims.
  parquet, joined on claim_id), how many seeds it holds in, fails in and cannot be measured in,
  and the verdict as text ("holds in 2 of 3 seeds").
- seeds/grokking_across_seeds.parquet, `GROKKING_ACROSS_COLUMNS` (lab runs): per domain, in how
  many seeds it groks (grokpath.analysis.verdict), the mean steps, and in how many seeds the domains'
  generalization is staggered.
- seeds/summary.md: the three tables for a reader, and seeds/fig7_across_seeds.png (Fig 7 with every
  seed's within-domain z-scores, grokpath.figures.seeds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokpath.analysis.stats import (
    FIG7_PREDICTORS,
    PAPER_FIG7_R2,
    PAPER_TABLE1_PEARSON,
    POOLED,
    PREDICTORS,
    ols_fit,
    pooled_z_points,
    primary_rows,
)
from grokpath.analysis.summary import FAILS, HOLDS, UNMEASURABLE, fmt_number
from grokpath.errors import GrokpathError
from grokpath.tableio import read_parquet

SEEDS_DIR = "seeds"  # results/{run}/seeds/: the aggregation's folder (never a seed's run)
STATISTICS = ["pearson_r", "spearman_rho", "r2", "loo_r2"]
PER_SEED_COLUMNS = [
    "seed", "window", "domain", "predictor", "n_checkpoints", "steps", "rise_found", "late_rise",
    "left_out", "pearson_r", "pearson_p", "pearson_ci_low", "pearson_ci_high", "spearman_rho",
    "spearman_p", "r2", "loo_r2",
]  # fmt: skip
ACROSS_COLUMNS = [
    "window", "domain", "predictor", "n_seeds", "seeds",
    "pearson_r_mean", "pearson_r_sd", "pearson_r_min", "pearson_r_max", "n_negative", "n_positive",
    "spearman_rho_mean", "spearman_rho_sd", "spearman_rho_min", "spearman_rho_max",
    "r2_mean", "r2_sd", "r2_min", "r2_max", "loo_r2_mean",
]  # fmt: skip
CLAIMS_ACROSS_COLUMNS = [
    "claim_id", "figure", "claim", "paper", "n_seeds", "n_holds", "n_fails", "n_unmeasurable",
    "seeds_holding", "verdict", "per_seed",
]  # fmt: skip
GROKKING_ACROSS_COLUMNS = [
    "domain", "n_seeds", "n_groks", "seeds_grokking", "verdict", "t_fit_mean", "t_mem50_mean",
    "t_gen50_mean", "gap_mean", "gap_sd", "final_gain_mean", "n_staggered",
]  # fmt: skip
FIG7_POINT_COLUMNS = ["seed", "predictor", "domain", "step", "x", "accuracy"]


def read_by_seed(seeds, paths, columns, what: str) -> dict[int, pd.DataFrame]:
    """{seed: table} from one file per seed, listed in the order of `seeds`."""
    seeds, paths = [int(s) for s in seeds], list(paths)
    if len(paths) != len(seeds):
        raise GrokpathError(f"{what}: {len(paths)} files for {len(seeds)} seeds")
    return {seed: read_parquet(path, columns) for seed, path in zip(seeds, paths)}


def _seed_text(seeds) -> str:
    return ",".join(str(s) for s in seeds)


def _by_seed(tables: dict[int, pd.DataFrame]) -> pd.DataFrame:
    if not tables:
        raise GrokpathError("no seed's table to aggregate")
    return pd.concat(
        [table.assign(seed=int(seed)) for seed, table in sorted(tables.items())], ignore_index=True
    )


# ---------------------------------------------------------------- Table 1 over seeds


def table1_per_seed(correlations: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """PER_SEED_COLUMNS: each seed's rows of the configured window (the `primary` rows)."""
    rows = _by_seed({seed: primary_rows(table) for seed, table in correlations.items()})
    return rows[PER_SEED_COLUMNS].reset_index(drop=True)


def _spread(values: pd.Series, name: str) -> dict:
    values = values.dropna().astype(float)
    return {
        f"{name}_mean": values.mean() if len(values) else np.nan,
        f"{name}_sd": values.std(ddof=1) if len(values) > 1 else np.nan,
        f"{name}_min": values.min() if len(values) else np.nan,
        f"{name}_max": values.max() if len(values) else np.nan,
    }


def table1_across_seeds(per_seed: pd.DataFrame) -> pd.DataFrame:
    """ACROSS_COLUMNS: per window, domain and predictor, the spread over the seeds whose Pearson
    r is defined. Domains in table order, the within-domain pool last; predictors as in Table 1."""
    order = {p.name: i for i, p in enumerate(PREDICTORS)}
    domains = [d for d in dict.fromkeys(per_seed["domain"]) if d != POOLED]
    domain_order = {d: i for i, d in enumerate(sorted(domains) + [POOLED])}
    rows = []
    for (window, domain, predictor), part in per_seed.groupby(["window", "domain", "predictor"]):
        defined = part[np.isfinite(part["pearson_r"].astype(float))]
        r = defined["pearson_r"].astype(float)
        row = {
            "window": window, "domain": domain, "predictor": predictor,
            "n_seeds": len(defined), "seeds": _seed_text(sorted(defined["seed"])),
            **_spread(defined["pearson_r"], "pearson_r"),
            "n_negative": int((r < 0).sum()), "n_positive": int((r > 0).sum()),
            **_spread(defined["spearman_rho"], "spearman_rho"),
            **_spread(defined["r2"], "r2"),
            "loo_r2_mean": defined["loo_r2"].astype(float).mean() if len(defined) else np.nan,
        }  # fmt: skip
        rows.append(row)
    table = pd.DataFrame(rows, columns=ACROSS_COLUMNS)
    keys = [table["domain"].map(domain_order), table["predictor"].map(order)]
    return table.assign(_d=keys[0], _p=keys[1]).sort_values(["window", "_d", "_p"])[
        ACROSS_COLUMNS
    ].reset_index(drop=True)


# ---------------------------------------------------------------- claims over seeds


def seeds_verdict(n_holds: int, n_seeds: int, n_unmeasurable: int = 0, verb: str = "holds") -> str:
    """The verdict as a count of seeds: "holds in 2 of 3 seeds (1 not measurable)"."""
    unit = "seed" if n_seeds == 1 else "seeds"
    if n_seeds and n_unmeasurable == n_seeds:
        return f"not measurable in any of {n_seeds} {unit}" if n_seeds > 1 else "not measurable"
    text = f"{verb} in {n_holds} of {n_seeds} {unit}"
    return text + (f" ({n_unmeasurable} not measurable)" if n_unmeasurable else "")


def claims_across_seeds(claims: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """CLAIMS_ACROSS_COLUMNS: per claim_id (in the summary's order), the seeds' verdicts counted.
    A seed without a claim counts as not measurable there."""
    table = _by_seed(claims)
    seeds = sorted(claims)
    rows = []
    for claim_id in dict.fromkeys(table["claim_id"]):
        part = table[table["claim_id"] == claim_id].set_index("seed")
        verdicts = {seed: part["verdict"].get(seed, UNMEASURABLE) for seed in seeds}
        holding = [seed for seed, v in verdicts.items() if v == HOLDS]
        n_fails = sum(v == FAILS for v in verdicts.values())
        n_unmeasurable = len(seeds) - len(holding) - n_fails
        first = part.iloc[0]
        rows.append({
            "claim_id": claim_id, "figure": first["figure"], "claim": first["claim"],
            "paper": first["paper"], "n_seeds": len(seeds), "n_holds": len(holding),
            "n_fails": n_fails, "n_unmeasurable": n_unmeasurable,
            "seeds_holding": _seed_text(holding),
            "verdict": seeds_verdict(len(holding), len(seeds), n_unmeasurable),
            "per_seed": "; ".join(f"{seed}: {v}" for seed, v in verdicts.items()),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=CLAIMS_ACROSS_COLUMNS)


# ---------------------------------------------------------------- the lab verdict over seeds


def grokking_across_seeds(grokking: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """GROKKING_ACROSS_COLUMNS: per domain, in how many seeds it groks (verdict.TABLE_COLUMNS
    per seed), the steps' means over the seeds where they are defined."""
    table = _by_seed(grokking)
    seeds = sorted(grokking)
    staggered = sum(
        bool(t["staggered"].iloc[0]) for t in grokking.values() if len(t)
    )  # run-level, repeated on every row of a seed's table
    rows = []
    for domain, part in table.groupby("domain", sort=True):
        groks = sorted(part.loc[part["groks"].astype(bool), "seed"])
        gap = part["gap"].astype(float).dropna()
        rows.append({
            "domain": domain, "n_seeds": len(seeds), "n_groks": len(groks),
            "seeds_grokking": _seed_text(groks),
            "verdict": seeds_verdict(len(groks), len(seeds), verb="groks"),
            **{f"{c}_mean": part[c].astype(float).mean() for c in ("t_fit", "t_mem50", "t_gen50")},
            "gap_mean": gap.mean() if len(gap) else np.nan,
            "gap_sd": gap.std(ddof=1) if len(gap) > 1 else np.nan,
            "final_gain_mean": part["final_gain"].astype(float).mean(),
            "n_staggered": staggered,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=GROKKING_ACROSS_COLUMNS)


# ---------------------------------------------------------------- Fig 7 over seeds


def fig7_points_across_seeds(points: dict[int, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    """FIG7_POINT_COLUMNS: each seed's Fig 7 points (configured window), z-scored within each
    domain of that seed as grokpath.analysis.stats pools them; and what was left out, as "seed N: why"."""
    parts, left_out = [], []
    for seed, table in sorted(points.items()):
        for predictor in FIG7_PREDICTORS:
            part, out = pooled_z_points(table[table["predictor"] == predictor])
            parts.append(part.assign(seed=int(seed), predictor=predictor))
            left_out += [f"seed {seed}, {predictor}: {why}" for why in out]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if frame.empty:
        return pd.DataFrame(columns=FIG7_POINT_COLUMNS), left_out
    return frame[FIG7_POINT_COLUMNS].reset_index(drop=True), left_out


def pooled_r2_across_seeds(points: pd.DataFrame) -> dict[str, float]:
    """Per Fig 7 predictor, R^2 of the OLS fit over every seed's within-domain z-scores."""
    r2 = {}
    for predictor in FIG7_PREDICTORS:
        part = points[points["predictor"] == predictor]
        fit = ols_fit(part["x"].to_numpy(float), part["accuracy"].to_numpy(float))
        r2[predictor] = fit.r2 if fit else np.nan
    return r2


# ---------------------------------------------------------------- summary.md


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table1_markdown(across: pd.DataFrame, n_seeds: int) -> str:
    lines = [
        "| domain | predictor | seeds with r | mean Pearson r (sd) | min, max | r < 0 in | "
        "mean Spearman rho (sd) | mean R^2 | paper |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in across.itertuples(index=False):
        if r.domain == POOLED:
            r2 = PAPER_FIG7_R2.get(r.predictor)
            paper = f"R^2 {r2:.2f} (raw pool)" if r2 is not None else ""
        else:
            low_high = PAPER_TABLE1_PEARSON.get(r.predictor)
            paper = f"r {low_high[0]:+.2f} to {low_high[1]:+.2f}" if low_high else ""
        lines.append(
            f"| {r.domain} | {r.predictor} | {r.n_seeds} of {n_seeds} | "
            f"{fmt_number(r.pearson_r_mean)} ({fmt_number(r.pearson_r_sd, sign=False)}) | "
            f"{fmt_number(r.pearson_r_min)}, {fmt_number(r.pearson_r_max)} | "
            f"{r.n_negative} of {r.n_seeds} | "
            f"{fmt_number(r.spearman_rho_mean)} ({fmt_number(r.spearman_rho_sd, sign=False)}) | "
            f"{fmt_number(r.r2_mean, sign=False)} | {paper} |"
        )
    return "\n".join(lines)


def claims_markdown(claims: pd.DataFrame) -> str:
    lines = ["| paper | claim | paper's number | over seeds | per seed |", "|---|---|---|---|---|"]
    for c in claims.itertuples(index=False):
        cells = (c.figure, c.claim, c.paper, f"**{c.verdict}**", c.per_seed)
        lines.append("| " + " | ".join(_cell(v) for v in cells) + " |")
    return "\n".join(lines)


def grokking_markdown(grokking: pd.DataFrame | None) -> str:
    heading = "## Does each seed memorize before it generalizes?"
    if grokking is None or grokking.empty:
        return f"{heading}\n\nNot measurable here: no pretraining probe (lab checkpoints only)."
    lines = [
        "| domain | groks | mean t_fit | mean t_mem50 | mean t_gen50 | mean gap (sd) | "
        "mean final gain |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in grokking.itertuples(index=False):
        lines.append(
            f"| {r.domain} | {r.verdict} | {fmt_number(r.t_fit_mean, 0, False)} | "
            f"{fmt_number(r.t_mem50_mean, 0, False)} | {fmt_number(r.t_gen50_mean, 0, False)} | "
            f"{fmt_number(r.gap_mean, 0, False)} ({fmt_number(r.gap_sd, 0, False)}) | "
            f"{fmt_number(r.final_gain_mean, sign=False)} |"
        )
    first = grokking.iloc[0]
    stagger = seeds_verdict(int(first["n_staggered"]), int(first["n_seeds"]), verb="staggered")
    return "\n\n".join([heading, "\n".join(lines), f"The domains' generalization is {stagger}."])


def summary_markdown(
    run: str, seeds: list[int], across: pd.DataFrame, claims: pd.DataFrame,
    grokking: pd.DataFrame | None,
) -> str:  # fmt: skip
    n = len(seeds)
    counts = {
        "all": int((claims["n_holds"] == n).sum()),
        "some": int(((claims["n_holds"] > 0) & (claims["n_holds"] < n)).sum()),
        "none": int(((claims["n_holds"] == 0) & (claims["n_unmeasurable"] < n)).sum()),
        "unmeasurable": int((claims["n_unmeasurable"] == n).sum()),
    }
    window = str(across["window"].iloc[0]) if len(across) else "n/a"
    return (
        "\n\n".join(
            [
                f"# Paper claims across {n} seeds: run `{run}` "
                f"(seeds {', '.join(map(str, seeds))})",
                "Each seed is a whole run - corpus split, model initialisation and every seeded "
                f"step - under results/{run}/seed{{N}}/, with its own summary.md. A claim that "
                "one seed supports is an anecdote; below, each verdict counts the seeds.",
                grokking_markdown(grokking),
                "## Paper claims",
                f"{counts['all']} hold in every seed, {counts['some']} in some, {counts['none']} "
                f"in none; {counts['unmeasurable']} are not measurable in any seed. Verdict rules: "
                "`src/grokpath/analysis/summary.py`; counting: `src/grokpath/analysis/seeds.py`.",
                claims_markdown(claims),
                f"## Table 1 across seeds (configured window `{window}`; pooled rows pool "
                "within-domain z-scores; sd over seeds)",
                table1_markdown(across, n),
            ]
        )
        + "\n"
    )
