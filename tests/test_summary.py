"""summary.md: verdicts computed from the tables, on the fixed analysis tables."""

from __future__ import annotations

import dataclasses

import pytest

import analysis_tables as T
from grokpath.analysis import stats
from grokpath.analysis import summary as S

THRESHOLDS = S.Thresholds(strong_r=0.8, weak_r=0.5, alpha=0.05)


@pytest.fixture(scope="module")
def inputs() -> S.SummaryInputs:
    items, contamination = T.items_table(), T.contamination_table()
    accuracy = stats.accuracy_with_window(stats.domain_accuracy(items, contamination), 0.1, 0.05, 4)
    metrics = {
        "edit_distance": T.edit_distance_table(), "consistency": T.consistency_table(),
        "routing": T.routing_table(), "loss_baselines": T.loss_baselines_table(),
    }  # fmt: skip
    points = stats.predictor_points(metrics, accuracy, "memorized")
    distance = metrics["edit_distance"]
    return S.SummaryInputs(
        run="fixture", correlations=stats.correlation_table(points, "memorized", 200, 0.95, 0),
        nested=stats.nested_f_tests(points, "training_loss"), accuracy=accuracy,
        groups=T.groups_table(), generalization=T.generalization_table(items),
        contamination=contamination, matches=T.matches_table(), toy=T.toy_table(),
        fig4_groups=[200, 300], fig5_group=300, fig6_groups=[300, 500], fig2_domain="math",
        cross_domains=("math", "code"), delta=0.05,
        threshold_ablation={"0.6": distance, "0.7": distance}, eps_ablation={"1.0": distance},
        delta_ablation={"0.05": distance}, grokking=T.grokking_table(), **metrics,
    )  # fmt: skip


def verdicts(inputs) -> dict[tuple[str, str], str]:
    return {(c.figure, c.claim): c.verdict for c in S.build_claims(inputs, THRESHOLDS)}


def test_fixture_verdicts(inputs):
    by_figure = {}
    for claim in S.build_claims(inputs, THRESHOLDS):
        by_figure.setdefault(claim.figure, []).append(claim.verdict)
    assert by_figure["Table 1"] == [
        S.HOLDS,
        S.HOLDS,
        S.HOLDS,
    ]  # distance -, consistency +, loss weaker
    assert by_figure["Fig 1"] == [S.HOLDS]  # half generalized by 700, median t* 300
    assert by_figure["Fig 5"] == [S.FAILS]  # every fixture layer falls, the last one too
    assert by_figure["Fig 12"] == [S.HOLDS]  # the fixture's cross distance is noise
    assert by_figure["Fig 8"] == [S.HOLDS]
    assert by_figure["App. LoRA"] == [S.UNMEASURABLE]
    assert by_figure["Fig 9"] == by_figure["Fig 10"] == by_figure["Fig 11"] == [S.HOLDS]


def test_claims_report_the_numbers(inputs):
    claims = {c.figure + c.claim: c for c in S.build_claims(inputs, THRESHOLDS)}
    delay = next(c for k, c in claims.items() if "delay grows" in k)
    assert "200->600, 300->700, 500->1000" in delay.ours
    fig7 = next(c for k, c in claims.items() if k.startswith("Fig 7"))
    rows = stats.primary_rows(inputs.correlations)
    pooled = rows[rows["domain"] == stats.POOLED].set_index("predictor")
    assert f"edit_distance {pooled.loc['edit_distance', 'r2']:.2f}" in fig7.ours
    assert fig7.ours.startswith("within-domain z: ")
    assert "edit_distance 0.91" in fig7.paper


def test_missing_data_is_not_measurable(inputs):
    empty = dataclasses.replace(
        inputs, matches=inputs.matches.iloc[:0], toy=inputs.toy.iloc[:2],
        threshold_ablation={}, fig5_group=None,
    )  # fmt: skip
    found = verdicts(empty)
    assert (
        found[("Fig 2", "matched test groups generalize after their training groups memorize")]
        == S.UNMEASURABLE
    )
    assert (
        found[("Fig 8", "in a one-layer MoE toy, edit distance tracks the effective dimension")]
        == S.UNMEASURABLE
    )
    assert (
        found[("Fig 9", "the distance trend survives the routing threshold ablation")]
        == S.UNMEASURABLE
    )
    assert (
        found[("Fig 5", "early layers' distance drops most; the last layer's rises")]
        == S.UNMEASURABLE
    )


def test_no_accuracy_rise_makes_table1_not_measurable(inputs):
    flat = inputs.correlations.assign(rise_found=False)
    claim = S.table1_sign(
        dataclasses.replace(inputs, correlations=flat), "edit_distance", -1, THRESHOLDS
    )
    assert claim.verdict == S.UNMEASURABLE


def test_wrong_sign_does_not_hold(inputs):
    flipped = inputs.toy.assign(effective_dim=-inputs.toy["effective_dim"])
    claim = S.theory_toy_claim(dataclasses.replace(inputs, toy=flipped), THRESHOLDS)
    assert claim.verdict == S.FAILS


def test_markdown_lists_every_claim_and_table1(inputs):
    claims = S.build_claims(inputs, THRESHOLDS)
    text = S.summary_markdown(inputs, claims, "rule text")
    assert text.startswith("# Paper claims vs run `fixture`")
    assert text.count("**holds**") + text.count("**does not hold**") + text.count(
        "**not measurable**"
    ) == len(claims)
    assert "rule text" in text and f"| {stats.POOLED} | edit_distance | 10 |" in text
    table = [line for line in text.splitlines() if line.startswith("| Fig 13")]
    assert len(table) == 1 and table[0].count("|") == 6  # pipes inside cells are escaped


def test_grokking_verdict_is_on_top(inputs):
    text = S.summary_markdown(inputs, S.build_claims(inputs, THRESHOLDS), "rule text")
    top = text.index("## Does this run show memorization before generalization?")
    assert top < text.index("## Paper claims") < text.index("| paper | claim |")
    assert "2 of 2 domains grok." in text
    assert "| math | 400 | 0.13 | 0.79 | 300 | 700 | 400 | yes |" in text
    assert "Staggered: no (t_gen50 spread 0 steps of 1000)" in text


def test_grokking_verdict_says_why_not_and_copes_without_a_probe(inputs):
    failing = inputs.grokking.assign(groks=[False, True], reason=["never fits", ""],
                                     t_gen50_spread=float("nan"))  # fmt: skip
    text = S.grokking_markdown(failing)
    assert "1 of 2 domains grok." in text and "| no (never fits) |" in text
    assert "Staggered: no (fewer than two domains grok; run of 1000 steps)" in text
    absent = S.summary_markdown(dataclasses.replace(inputs, grokking=None), [], "rule text")
    assert "Not measurable here" in absent


def test_markdown_shows_both_windows(inputs):
    text = S.summary_markdown(inputs, S.build_claims(inputs, THRESHOLDS), "rule text")
    assert "Configured window: `paper`" in text
    # math: paper window = the last five steps, rise window from 500 (fixture accuracy)
    assert "| math | 600, 700, 800, 900, 1000 | 500, 600, 700, 800, 900, 1000 |" in text
    assert "| math | edit_distance | 5 |" in text  # Table 1 over the configured window
    other = text[text.index("## Table 1 over the other window"):]
    assert "Window `rise` (checkpoints: code 6, math 6)" in other
    rise = inputs.correlations[(inputs.correlations["window"] == "rise")
                               & (inputs.correlations["domain"] == stats.POOLED)]  # fmt: skip
    r2 = rise.set_index("predictor").loc["edit_distance", "r2"]
    pooled_r = rise.set_index("predictor").loc["edit_distance", "pearson_r"]
    assert f"| {pooled_r:+.2f} | {r2:.2f} |" in other


def test_verdicts_read_the_configured_window_only(inputs):
    """Flipping the other window's correlations changes no verdict; flipping the configured
    window's flips the sign claims."""
    table = inputs.correlations
    other = ~table["primary"]
    flipped_other = table.assign(pearson_r=table["pearson_r"].where(~other, -table["pearson_r"]),
                                 r2=table["r2"].where(~other, 0.0))  # fmt: skip
    assert verdicts(dataclasses.replace(inputs, correlations=flipped_other)) == verdicts(inputs)
    flipped = table.assign(pearson_r=table["pearson_r"].where(other, -table["pearson_r"]))
    claim = S.table1_sign(dataclasses.replace(inputs, correlations=flipped), "edit_distance", -1,
                          THRESHOLDS)  # fmt: skip
    assert claim.verdict == S.FAILS


def test_markdown_names_domains_left_out_of_the_pool(inputs):
    table = inputs.correlations
    pooled = (table["domain"] == stats.POOLED) & table["primary"]
    marked = table.assign(left_out=table["left_out"].where(~pooled, "code: no accuracy rise"))
    text = S.table1_markdown(marked)
    assert "- edit_distance: left out of the pool: code: no accuracy rise" in text
    assert "left out" not in S.table1_markdown(table)
    assert "| BCa |" in text or "| percentile |" in text


def test_dense_correlations_section_lists_each_domain_and_metric():
    import pandas as pd

    from grokpath.analysis.summary import dense_markdown

    dense = pd.DataFrame({
        "domain": ["math", "math", "code"], "metric": ["edit_distance_char", "probe_loss", "edit_distance_char"],
        "t_fit": pd.array([400, 400, None], dtype="Int64"), "first_step": pd.array([400, 400, None], dtype="Int64"),
        "last_step": pd.array([2400, 2400, None], dtype="Int64"), "n": [41, 41, 0],
        "pearson_r": [-0.8123, 0.5, float("nan")], "spearman_r": [-0.75, 0.4, float("nan")],
    })  # fmt: skip
    text = dense_markdown(dense)
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "-0.81 (-0.75)" in rows["math"] and "400-2400" in rows["math"] and "| 41 |" in rows["math"]
    assert rows["code"].startswith("| code | - | - | 0 |")
    assert "Not measurable" in dense_markdown(None)


def test_table1_says_n_a_where_r2_is_undefined(inputs):
    rows = stats.primary_rows(inputs.correlations)
    first = rows.index[0]
    table = inputs.correlations.copy()
    table.loc[first, ["r2", "loo_r2"]] = float("nan")
    domain, predictor = table.loc[first, "domain"], table.loc[first, "predictor"]
    lines = [
        line for line in S.table1_markdown(table).splitlines()
        if line.startswith(f"| {domain} | {predictor} |")
    ]  # fmt: skip
    assert len(lines) == 1 and lines[0].endswith("| n/a | n/a |")
    defined = rows.iloc[1]
    assert f"| {defined.r2:.2f} | " in S.table1_markdown(inputs.correlations)
