"""Rule summary: results/{run}/summary.md, each paper claim beside this run's measurement, and
the claims as a table (output claims: analysis/claims.parquet, grokpath.analysis.summary.CLAIM_COLUMNS).

Inputs: correlations, nested, accuracy (analysis/), groups, generalization, contamination,
matches, edit_distance, consistency, routing, loss_baselines, toy, and the ablation tables
(threshold_tables, eps_tables, delta_tables, listed in the order of the matching params), and
grokking (analysis/grokking.parquet) and dense (analysis/dense_correlations.parquet): lab
checkpoints only, absent at paper scale.
Params: run, delta, fig2_domain, cross_domains, fig4_groups, fig5_group, fig6_groups,
thresholds, eps_factors, deltas, strong_r, weak_r, alpha, rise_fraction, min_gain, min_checkpoints.
"""

from grokpath.analysis.dense_correlations import DENSE_CORRELATION_COLUMNS
from grokpath.analysis.stats import (
    ACCURACY_COLUMNS,
    CORRELATION_COLUMNS,
    NESTED_COLUMNS,
    window_rule_text,
)
from grokpath.analysis.summary import (
    SummaryInputs,
    Thresholds,
    build_claims,
    claims_table,
    summary_markdown,
    write_summary,
)
from grokpath.analysis.theory import TOY_COLUMNS
from grokpath.analysis.trends import resolve_groups
from grokpath.analysis.verdict import TABLE_COLUMNS as GROKKING_COLUMNS
from grokpath.entry import as_list, run
from grokpath.evaluation.contamination import CONTAMINATION_COLUMNS
from grokpath.evaluation.generalization import GENERALIZATION_COLUMNS
from grokpath.evaluation.matching import MATCH_COLUMNS
from grokpath.figures.render import GROUP_COLUMNS, metrics, paired
from grokpath.tableio import read_parquet, write_parquet


def main(args: dict) -> None:
    groups = read_parquet(args["groups"], GROUP_COLUMNS)
    verdicts = as_list(args.get("grokking"))  # empty at paper scale
    dense = as_list(args.get("dense"))  # empty at paper scale: no pathway monitor
    fig5 = resolve_groups(args["fig5_group"], groups, 1)
    inputs = SummaryInputs(
        run=str(args["run"]),
        correlations=read_parquet(args["correlations"], CORRELATION_COLUMNS),
        nested=read_parquet(args["nested"], NESTED_COLUMNS),
        accuracy=read_parquet(args["accuracy"], ACCURACY_COLUMNS),
        groups=groups,
        generalization=read_parquet(args["generalization"], GENERALIZATION_COLUMNS),
        contamination=read_parquet(args["contamination"], CONTAMINATION_COLUMNS),
        matches=read_parquet(args["matches"], MATCH_COLUMNS),
        edit_distance=metrics(args["edit_distance"]),
        consistency=metrics(args["consistency"]),
        routing=metrics(args["routing"]),
        loss_baselines=metrics(args["loss_baselines"]),
        toy=read_parquet(args["toy"], TOY_COLUMNS),
        fig4_groups=resolve_groups(args["fig4_groups"], groups, 2),
        fig5_group=fig5[0] if fig5 else None,
        fig6_groups=resolve_groups(args["fig6_groups"], groups, 2),
        fig2_domain=str(args["fig2_domain"]),
        cross_domains=tuple(args["cross_domains"]),
        delta=float(args["delta"]),
        threshold_ablation={
            v: metrics(p) for v, p in paired(args, "threshold_tables", "thresholds")
        },
        eps_ablation={v: metrics(p) for v, p in paired(args, "eps_tables", "eps_factors")},
        delta_ablation={v: metrics(p) for v, p in paired(args, "delta_tables", "deltas")},
        grokking=read_parquet(verdicts[0], GROKKING_COLUMNS) if verdicts else None,
        dense=read_parquet(dense[0], DENSE_CORRELATION_COLUMNS) if dense else None,
    )
    thresholds = Thresholds(float(args["strong_r"]), float(args["weak_r"]), float(args["alpha"]))
    rule = window_rule_text(
        float(args["rise_fraction"]), float(args["min_gain"]), int(args["min_checkpoints"])
    )
    claims = build_claims(inputs, thresholds)
    write_parquet(claims_table(claims), args["claims"])
    write_summary(summary_markdown(inputs, claims, rule), args["summary"])


run(main, globals())
