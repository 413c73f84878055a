"""summary.md: verdicts computed from the tables, on the fixed analysis tables."""

from __future__ import annotations

import dataclasses

import pandas as pd
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


# ---------------------------------------------------------------- summary.md, line by line
# Small hand-built tables; every expected line below is written out from the table rows.

NAN = float("nan")


def _correlation_row(domain, predictor, window, primary, n, r, r2, **more) -> dict:
    row = {
        "domain": domain, "predictor": predictor, "window": window, "primary": primary,
        "left_out": "", "rise_found": True, "n_checkpoints": n, "pearson_r": r, "pearson_p": NAN,
        "pearson_ci_low": NAN, "pearson_ci_high": NAN, "pearson_ci_method": "none",
        "spearman_rho": NAN, "spearman_p": NAN, "r2": r2, "loo_r2": NAN,
    }  # fmt: skip
    row.update(more)
    return row


# the configured ("paper") window: math's two rows in reverse predictor order, one pooled row
PAPER_ROWS = [
    _correlation_row("math", "consistency", "paper", True, 5, 0.95, 0.9, pearson_p=0.013,
                     pearson_ci_low=0.7, pearson_ci_high=0.99, pearson_ci_method="percentile",
                     spearman_rho=0.9, spearman_p=0.037, loo_r2=-0.2),
    _correlation_row("math", "edit_distance", "paper", True, 5, -0.9, 0.81, pearson_p=0.037,
                     pearson_ci_low=-0.99, pearson_ci_high=-0.5, pearson_ci_method="BCa",
                     spearman_rho=-0.8, spearman_p=0.1, loo_r2=0.5),
    _correlation_row(stats.POOLED, "edit_distance", "paper", True, 10, -0.85, 0.72,
                     pearson_p=0.0018, pearson_ci_low=-0.95, pearson_ci_high=-0.6,
                     pearson_ci_method="BCa", spearman_rho=-0.83, spearman_p=0.003, loo_r2=0.61,
                     left_out="code: no accuracy rise"),
]  # fmt: skip
# the other ("rise") window: per predictor, Pearson r of code, math and pooled, and pooled R^2
OTHER_VALUES = {
    "edit_distance": (-0.5, -0.7, -0.6, 0.36),
    "consistency": (0.4, 0.8, 0.6, 0.64),
    "training_loss": (0.3, -0.1, 0.1, 0.01),
    "training_loss_ma": (0.2, -0.2, 0.0, 0.0),
    "validation_loss": (NAN, -0.3, -0.3, 0.09),
    "routing_entropy": (0.1, 0.2, 0.2, 0.04),
}
# math listed before code: the columns must still be sorted; consistency has fewer checkpoints
# (the checkpoint counts are read off the first predictor, edit_distance)
OTHER_ROWS = [
    _correlation_row(domain, predictor, "rise", False, n, values[i], values[3] if i == 2 else NAN)
    for predictor, values in OTHER_VALUES.items()
    for i, domain, n in [(1, "math", 7), (0, "code", 6), (2, stats.POOLED, 13)]
    for n in [n - 1 if predictor == "consistency" else n]
]  # fmt: skip


def correlations_table(paper_rows=PAPER_ROWS) -> pd.DataFrame:
    return pd.DataFrame([*OTHER_ROWS[:9], *paper_rows, *OTHER_ROWS[9:]])


TABLE1_LINES = [
    "| domain | predictor | n | Pearson r [95% boot. CI] (p) | CI method | Spearman rho (p) | R^2 "
    "| LOO R^2 |",
    "|---|---|---|---|---|---|---|---|",
    "| math | edit_distance | 5 | -0.90 [-0.99, -0.50] (p=0.037) | BCa | -0.80 (p=0.1) | 0.81 "
    "| 0.50 |",
    "| math | consistency | 5 | +0.95 [+0.70, +0.99] (p=0.013) | percentile | +0.90 (p=0.037) "
    "| 0.90 | -0.20 |",
    "| pooled (within-domain z) | edit_distance | 10 | -0.85 [-0.95, -0.60] (p=0.0018) | BCa "
    "| -0.83 (p=0.003) | 0.72 | 0.61 |",
]
TABLE1_TEXT = "\n".join(
    [*TABLE1_LINES, "", "- edit_distance: left out of the pool: code: no accuracy rise"]
)

OTHER_WINDOW_TEXT = """Window `rise` (checkpoints: code 6, math 7).

| predictor | code r | math r | pooled r | pooled R^2 |
|---|---|---|---|---|
| edit_distance | -0.50 | -0.70 | -0.60 | 0.36 |
| consistency | +0.40 | +0.80 | +0.60 | 0.64 |
| training_loss | +0.30 | -0.10 | +0.10 | 0.01 |
| training_loss_ma | +0.20 | -0.20 | +0.00 | 0.00 |
| validation_loss | n/a | -0.30 | -0.30 | 0.09 |
| routing_entropy | +0.10 | +0.20 | +0.20 | 0.04 |"""


def accuracy_table() -> pd.DataFrame:
    """math rises inside both windows (from 200; the paper window is 300-400); code stays flat."""
    rows = []
    for domain, accuracy, rise_window, rise in [
        ("math", [0.1, 0.25, 0.5, 0.75], [False, True, True, True], True),
        ("code", [0.2, 0.2, 0.2, 0.2], [False] * 4, False),
    ]:
        for i, step in enumerate([100, 200, 300, 400]):
            rows.append({
                "domain": domain, "step": step, "accuracy": accuracy[i], "n_items": 10,
                "window": "paper", "in_window": step >= 300, "in_paper_window": step >= 300,
                "in_rise_window": rise_window[i], "rise_found": rise, "late_rise": rise,
            })  # fmt: skip
    return pd.DataFrame(rows)


WINDOW_TEXT = """\
| domain | paper window steps | rise window steps | accuracy over the configured window \
| rise found | rise starts after the paper window's first step |
|---|---|---|---|---|---|
| code | 300, 400 |  | 0.20, 0.20 | False | False |
| math | 300, 400 | 200, 300, 400 | 0.50, 0.75 | True | True |"""


def grokking_rows(*rows) -> pd.DataFrame:
    columns = ["domain", "t_fit", "gain_at_fit", "final_gain", "t_mem50", "t_gen50", "gap",
               "groks", "reason", "last_step", "staggered", "t_gen50_spread"]  # fmt: skip
    return pd.DataFrame([dict(zip(columns, r)) for r in rows])


# both domains grok, half a quarter-run apart: staggered (listed math first; shown sorted)
STAGGERED = grokking_rows(
    ("math", 400, 0.1, 0.8, 300, 700, 400, True, "", 2000, True, 500),
    ("code", 200, 0.05, 0.9, 200, 1200, 1000, True, "", 2000, True, 500),
)
GROKKING_HEADING = "## Does this run show memorization before generalization?"
GROKKING_HEADER = [
    "| domain | t_fit | gain at fit | final gain | t_mem50 | t_gen50 | gap | groks |",
    "|---|---|---|---|---|---|---|---|",
]
GROKKING_TEXT = "\n\n".join([
    GROKKING_HEADING,
    "2 of 2 domains grok.",
    "\n".join([*GROKKING_HEADER,
               "| code | 200 | 0.05 | 0.90 | 200 | 1200 | 1000 | yes |",
               "| math | 400 | 0.10 | 0.80 | 300 | 700 | 400 | yes |"]),
    "Staggered: yes (t_gen50 spread 500 steps of 2000)",
    S.GROKKING_RULE,
])  # fmt: skip


def dense_table() -> pd.DataFrame:
    """math listed first; a metric the summary does not show; code lacks probe_loss and math
    routing_entropy."""
    rows = [
        ("math", "edit_distance_char", 400, 400, 2400, 41, -0.8123, -0.75),
        ("math", "not_a_summary_metric", 400, 400, 2400, 41, 0.99, 0.99),
        ("math", "probe_loss", 400, 400, 2400, 40, 0.5, 0.4),
        ("code", "routing_entropy", 200, 200, 2400, 45, -0.3, -0.25),
        ("code", "edit_distance_char", 200, 200, 2400, 45, 0.2, 0.1),
    ]
    columns = ["domain", "metric", "t_fit", "first_step", "last_step", "n", "pearson_r",
               "spearman_r"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


DENSE_HEADING = "## Dense correlations (pathway monitor, every monitor step after the fit)"
DENSE_NOTE = (
    "Pearson r (Spearman rho) of each metric against the accuracy probe's test accuracy over the "
    "monitor's steps from the domain's fit (first probe step with training accuracy >= 0.9) to "
    "the end; no p-values, since consecutive steps are autocorrelated. Beside the ten-checkpoint "
    "Table 1 below, these use every monitor step."
)
DENSE_TEXT = "\n\n".join([
    DENSE_HEADING,
    "| domain | t_fit | steps | n | edit_distance_char r (rho) | routing_entropy r (rho) "
    "| probe_loss r (rho) |\n"
    "|---|---|---|---|---|---|---|\n"
    "| code | 200 | 200-2400 | 45 | +0.20 (+0.10) | -0.30 (-0.25) | - |\n"
    "| math | 400 | 400-2400 | 41 | -0.81 (-0.75) | - | +0.50 (+0.40) |",
    DENSE_NOTE,
])  # fmt: skip

TINY_CLAIMS = [
    S.Claim("Fig 1", "claim one", "paper one", "ours one", S.HOLDS),
    S.Claim("Fig 2", "claim two", "a | b", "first\nsecond", S.HOLDS),
    S.Claim("Fig 3", "claim three", "paper three", "ours three", S.FAILS),
]
CLAIMS_TEXT = """\
| paper | claim | paper's number | ours | verdict |
|---|---|---|---|---|
| Fig 1 | claim one | paper one | ours one | **holds** |
| Fig 2 | claim two | a \\| b | first second | **holds** |
| Fig 3 | claim three | paper three | ours three | **does not hold** |"""


def test_table1_lists_the_configured_window_in_predictor_order_with_pool_notes():
    assert S.table1_markdown(correlations_table()) == TABLE1_TEXT


def test_table1_without_left_out_domains_has_no_trailing_note():
    no_notes = [{**row, "left_out": ""} for row in PAPER_ROWS]
    assert S.table1_markdown(correlations_table(no_notes)) == "\n".join(TABLE1_LINES)


def test_other_window_table_shows_every_predictor_per_domain_and_pooled():
    assert S.other_window_markdown(correlations_table()) == OTHER_WINDOW_TEXT


def test_other_window_says_so_when_the_table_has_only_the_configured_window():
    only_paper = pd.DataFrame(PAPER_ROWS)
    assert S.other_window_markdown(only_paper) == "(no other window in the table)"


def test_window_table_lists_both_windows_steps_and_the_rise_flags():
    assert S.window_markdown(accuracy_table()) == WINDOW_TEXT
    assert S.configured_window(accuracy_table()) == "paper"


def test_grokking_section_says_staggered_yes_with_the_spread():
    assert S.grokking_markdown(STAGGERED) == GROKKING_TEXT


def test_grokking_section_of_a_single_domain_that_never_fits_shows_dashes():
    never = grokking_rows(("trivia", NAN, NAN, 0.02, 300, NAN, NAN, False, "never fits", 1000,
                           False, NAN))  # fmt: skip
    assert S.grokking_markdown(never) == "\n\n".join([
        GROKKING_HEADING,
        "0 of 1 domains grok.",
        "\n".join([*GROKKING_HEADER, "| trivia | - | - | 0.02 | 300 | - | - | no (never fits) |"]),
        "Staggered: no (fewer than two domains grok; run of 1000 steps)",
        S.GROKKING_RULE,
    ])  # fmt: skip


def test_dense_section_shows_the_summary_metrics_per_sorted_domain():
    assert S.dense_markdown(dense_table()) == DENSE_TEXT


def test_dense_section_without_a_monitor_says_not_measurable():
    text = f"{DENSE_HEADING}\n\nNot measurable here: no pathway monitor (lab pretraining only)."
    assert S.dense_markdown(None) == text
    assert S.dense_markdown(dense_table().iloc[:0]) == text


def test_claims_table_escapes_pipes_and_newlines_in_cells():
    assert S.claims_markdown(TINY_CLAIMS) == CLAIMS_TEXT
    assert S._md_cell("a|b\nc") == "a\\|b c"


def tiny_inputs() -> S.SummaryInputs:
    empty = pd.DataFrame()
    return S.SummaryInputs(
        run="tiny", correlations=correlations_table(), nested=empty, accuracy=accuracy_table(),
        groups=empty, generalization=empty, contamination=empty, matches=empty,
        edit_distance=empty, consistency=empty, routing=empty, loss_baselines=empty, toy=empty,
        fig4_groups=[], fig5_group=None, fig6_groups=[], fig2_domain="math",
        cross_domains=("math", "code"), delta=0.05, grokking=STAGGERED, dense=dense_table(),
    )  # fmt: skip


def test_summary_document_has_every_section_in_order():
    text = S.summary_markdown(tiny_inputs(), TINY_CLAIMS, "The rule text.")
    assert text == "\n\n".join([
        "# Paper claims vs run `tiny`",
        GROKKING_TEXT,
        "## Paper claims",
        "2 hold, 1 do not hold, 0 are not measurable here. Every number below is computed from "
        "this run's tables (results/{run}/analysis, metrics, eval, theory); the verdict rules are "
        "in `src/grokpath/analysis/summary.py`.",
        CLAIMS_TEXT,
        DENSE_TEXT,
        "## Checkpoint windows of the correlations",
        "Configured window: `paper` (figures and verdicts). The rule text.",
        WINDOW_TEXT,
        "## Table 1 (configured window; bootstrap CIs and leave-one-checkpoint-out R^2; pooled "
        "rows pool within-domain z-scores)",
        TABLE1_TEXT,
        "## Table 1 over the other window (Pearson r; pooled: within-domain z-scores)",
        OTHER_WINDOW_TEXT,
    ]) + "\n"  # fmt: skip


def test_write_summary_writes_the_text(tmp_path):
    path = tmp_path / "summary.md"
    S.write_summary("# Paper claims\n", path)
    assert path.read_text() == "# Paper claims\n"


# every claim's id, figure, wording and the paper's number, in summary order (fixture: Fig 2
# domain math, cross domains math x code)
PAPER_CLAIMS = [
    ("fig1_leap_after_memorization", "Fig 1",
     "test generalization leaps after the training data is memorized",
     "leap after memorization in every domain"),
    ("fig2_positive_delays", "Fig 2",
     "matched test groups generalize after their training groups memorize",
     "math delays 120k-485k steps"),
    ("fig2_delay_grows", "Fig 2", "the delay grows for groups memorized later (math)",
     "5k->125k, 125k->490k, 245k->615k, 370k->855k"),
    ("fig4_rise_then_fall", "Fig 4",
     "edit distance rises during memorization, then falls (global quadratic)",
     "concave over steps"),
    ("fig4_distance_falls_after_memorization", "Fig 4",
     "edit distance falls after memorization (per domain)", "falls after t*"),
    ("fig4_loss_flat_after_memorization", "Fig 4",
     "training loss of the memorized groups stays flat meanwhile", "flat"),
    ("fig5_early_layers_drop", "Fig 5", "early layers' distance drops most; the last layer's rises",
     "16 layers, 245k group"),
    ("fig6_consistency_rises_after_memorization", "Fig 6",
     "consistency rises after memorization (per domain)", "rises after t*"),
    ("table1_edit_distance_negative", "Table 1",
     "edit distance correlates negatively with accuracy", "Pearson -0.98 to -0.93"),
    ("table1_consistency_positive", "Table 1", "consistency correlates positively with accuracy",
     "Pearson +0.92 to +0.99"),
    ("table1_loss_is_weaker", "Table 1",
     "the loss rows are weaker predictors than the pathway metrics",
     "loss rows weak or wrong sign"),
    ("fig7_r2", "Fig 7", "pathway metrics fit accuracy better than loss (R^2)",
     "edit_distance 0.91, consistency 0.89, training_loss 0.41, training_loss_ma 0.63, "
     "validation_loss 0.33"),
    ("fig7_metric_adds_to_loss", "F-test",
     "(beyond the paper) a pathway metric adds to training loss in predicting accuracy",
     "not tested in the paper"),
    ("nanomoe_correlations", "App. nanoMoE",
     "a small MoE evaluated zero-shot shows the same strong correlations", "|r| 0.8-1.0"),
    ("fig9_threshold_ablation", "Fig 9",
     "the distance trend survives the routing threshold ablation", "same trend at 0.5-0.8"),
    ("fig10_eps_ablation", "Fig 10", "the distance trend survives the eps ablation",
     "same trend at eps 1.5-2.0"),
    ("fig11_delta_ablation", "Fig 11", "the distance trend survives the delta ablation",
     "same trend at delta 0.03-0.05"),
    ("fig12_cross_domain_no_trend", "Fig 12", "math x code pathway distance shows no trend",
     "no trend"),
    ("fig13_entropy_is_not_distance", "Fig 13",
     "routing entropy is only weakly related to edit distance", "r = 0.24"),
    ("fig8_theory_toy", "Fig 8",
     "in a one-layer MoE toy, edit distance tracks the effective dimension", "tracks"),
    ("lora_rank", "App. LoRA", "results hold with LoRA rank 64", "same trends"),
]  # fmt: skip


def test_claims_carry_their_ids_wording_and_the_papers_numbers(inputs):
    claims = S.build_claims(inputs, THRESHOLDS)
    assert [(c.claim_id, c.figure, c.claim, c.paper) for c in claims] == PAPER_CLAIMS
    assert (claims[-1].ours, claims[-1].verdict) == (
        "rank-64 instruction tuning is not part of this workflow", S.UNMEASURABLE)


def test_a_claim_that_brings_its_own_id_keeps_it(monkeypatch):
    own = S.Claim("Fig 1", "c", "p", "o", S.HOLDS, claim_id="my_own_id")
    plain = S.Claim("Fig 2", "c", "p", "o", S.FAILS)
    monkeypatch.setattr(S, "_claims", lambda inputs, thresholds: [own] + [plain] * 20)
    ids = [c.claim_id for c in S.build_claims(None, THRESHOLDS)]
    assert ids[:3] == ["my_own_id", "fig2_positive_delays", "fig2_delay_grows"]


def test_a_claim_list_out_of_step_with_the_ids_is_an_error(monkeypatch):
    plain = S.Claim("Fig 2", "c", "p", "o", S.FAILS)
    monkeypatch.setattr(S, "_claims", lambda inputs, thresholds: [plain] * 20)
    with pytest.raises(AssertionError, match=r"^20 claims for 21 ids: update CLAIM_IDS$"):
        S.build_claims(None, THRESHOLDS)


def test_claims_parquet_has_one_text_row_per_claim():
    claims = [S.Claim("Fig 1", "claim one", "paper one", "ours one", S.HOLDS, claim_id="one"),
              S.Claim("Fig 2", "claim two", "paper two", "ours two", S.FAILS, claim_id="two")]
    table = S.claims_table(claims)
    assert list(table.columns) == ["claim_id", "figure", "claim", "paper", "measured", "verdict"]
    assert table.values.tolist() == [
        ["one", "Fig 1", "claim one", "paper one", "ours one", "holds"],
        ["two", "Fig 2", "claim two", "paper two", "ours two", "does not hold"],
    ]


# ---------------------------------------------------------------- single claims, whole


def with_tables(**tables) -> S.SummaryInputs:
    return dataclasses.replace(tiny_inputs(), **tables)


POSITIVE_DELAYS = "matched test groups generalize after their training groups memorize"


def test_positive_delays_counts_pairs_and_strictly_positive_delays():
    # sorted delays -50, 0, 1, 300, 400: median 1 > 0, and 1, 300, 400 are positive
    matches = pd.DataFrame({"delay": [1, 0, -50, 300, 400]})
    assert S.positive_delays(with_tables(matches=matches)) == S.Claim(
        "Fig 2", POSITIVE_DELAYS, "math delays 120k-485k steps",
        "5 matched pairs, median delay 1 steps, 3 positive", S.HOLDS,
    )  # fmt: skip


def test_positive_delays_with_a_zero_median_does_not_hold():
    matches = pd.DataFrame({"delay": [-100, 0, 200]})
    assert S.positive_delays(with_tables(matches=matches)) == S.Claim(
        "Fig 2", POSITIVE_DELAYS, "math delays 120k-485k steps",
        "3 matched pairs, median delay 0 steps, 1 positive", S.FAILS,
    )  # fmt: skip


def test_positive_delays_without_pairs_is_not_measurable():
    assert S.positive_delays(with_tables(matches=pd.DataFrame({"delay": []}))) == S.Claim(
        "Fig 2", POSITIVE_DELAYS, "math delays 120k-485k steps", "no matched pairs",
        S.UNMEASURABLE,
    )  # fmt: skip


TOY_CLAIM = "in a one-layer MoE toy, edit distance tracks the effective dimension"
# five seeds: deviations -2..2 against -2, -1, 0, 2, 1: r = 9 / 10 = 0.9, p (t = 3.58, 3 df) 0.037
TOY = pd.DataFrame({"edit_distance": [1.0, 2, 3, 4, 5], "effective_dim": [1.0, 2, 3, 5, 4]})


def test_theory_toy_holds_for_a_significant_positive_r():
    assert S.theory_toy_claim(with_tables(toy=TOY), THRESHOLDS) == S.Claim(
        "Fig 8", TOY_CLAIM, "tracks", "r = +0.90 (p=0.037) over 5 seeds", S.HOLDS
    )


def test_theory_toy_needs_p_strictly_below_alpha():
    _, p = stats.pearson(TOY["edit_distance"], TOY["effective_dim"])
    at_alpha = dataclasses.replace(THRESHOLDS, alpha=p)
    assert S.theory_toy_claim(with_tables(toy=TOY), at_alpha).verdict == S.FAILS


def test_theory_toy_with_four_seeds_is_not_significant():
    # n = 4: p = 1 - |r| exactly; r = 4 / 5 = 0.8
    toy = pd.DataFrame({"edit_distance": [1.0, 2, 3, 4], "effective_dim": [1.0, 3, 2, 4]})
    assert S.theory_toy_claim(with_tables(toy=toy), THRESHOLDS) == S.Claim(
        "Fig 8", TOY_CLAIM, "tracks", "r = +0.80 (p=0.2) over 4 seeds", S.FAILS
    )


def test_theory_toy_with_two_seeds_is_not_measurable():
    assert S.theory_toy_claim(with_tables(toy=TOY.iloc[:2]), THRESHOLDS) == S.Claim(
        "Fig 8", TOY_CLAIM, "tracks", "too few seeds", S.UNMEASURABLE
    )


SMALL_MOE = "a small MoE evaluated zero-shot shows the same strong correlations"


def test_small_moe_reads_distance_and_consistency_of_rising_domains():
    # configured window, math: edit_distance -0.90, consistency +0.95 (pooled is not a domain)
    inputs = with_tables(correlations=correlations_table())
    assert S.small_moe_correlations(inputs, THRESHOLDS) == S.Claim(
        "App. nanoMoE", SMALL_MOE, "|r| 0.8-1.0",
        "|r| from 0.90 to 0.95 over 2 (domain, metric) pairs", S.HOLDS,
    )  # fmt: skip
    stricter = dataclasses.replace(THRESHOLDS, strong_r=0.92)
    assert S.small_moe_correlations(inputs, stricter).verdict == S.FAILS


def test_small_moe_without_a_rise_is_not_measurable():
    inputs = with_tables(correlations=correlations_table().assign(rise_found=False))
    assert S.small_moe_correlations(inputs, THRESHOLDS) == S.Claim(
        "App. nanoMoE", SMALL_MOE, "|r| 0.8-1.0", "no domain with a rise", S.UNMEASURABLE
    )


def test_small_moe_counts_an_r_of_exactly_strong_r_as_strong():
    # math's edit_distance r is -0.90: |r| = 0.90 meets strong_r = 0.90
    inputs = with_tables(correlations=correlations_table())
    at_edge = dataclasses.replace(THRESHOLDS, strong_r=0.9)
    assert S.small_moe_correlations(inputs, at_edge).verdict == S.HOLDS


DELAY_GROWS = "the delay grows for groups memorized later (math)"
DELAY_PAPER = "5k->125k, 125k->490k, 245k->615k, 370k->855k"


def matches_table(pairs, domain="math") -> pd.DataFrame:
    return pd.DataFrame([{"domain": domain, "train_group": a, "test_group": b, "delay": b - a}
                         for a, b in pairs])  # fmt: skip


def test_delay_grows_reports_spearman_and_the_pairs_of_the_fig2_domain():
    # math delays 200, 400, 300, 600: ranks 1, 3, 2, 4 -> rho = 1 - 6 * 2 / 60 = 0.8, p = 0.2;
    # the code pair is another domain and is left out
    matches = pd.concat([
        matches_table([(100, 300), (200, 600), (300, 600), (400, 1000)]),
        matches_table([(500, 100)], domain="code"),
    ])  # fmt: skip
    assert S.delay_grows(with_tables(matches=matches)) == S.Claim(
        "Fig 2", DELAY_GROWS, DELAY_PAPER,
        "Spearman(t*, delay) +0.80 (p=0.2); pairs 100->300, 200->600, 300->600, 400->1000",
        S.HOLDS,
    )  # fmt: skip


def test_delay_shrinking_with_t_star_does_not_hold():
    matches = matches_table([(100, 900), (200, 600), (300, 500)])  # delays 800, 400, 200
    assert S.delay_grows(with_tables(matches=matches)).verdict == S.FAILS


def test_delay_grows_with_equal_delays_is_not_measurable():
    matches = matches_table([(100, 300), (200, 400), (300, 500)])  # every delay 200: no rho
    claim = S.delay_grows(with_tables(matches=matches))
    assert (claim.ours.split(";")[0], claim.verdict) == (
        "Spearman(t*, delay) n/a (p=nan)", S.UNMEASURABLE)


def test_delay_grows_with_two_pairs_is_not_measurable():
    matches = matches_table([(100, 300), (200, 600)])
    assert S.delay_grows(with_tables(matches=matches)) == S.Claim(
        "Fig 2", DELAY_GROWS, DELAY_PAPER, "2 matched pairs", S.UNMEASURABLE
    )


def metric_rows(metric, domain, group, layer, steps, values) -> pd.DataFrame:
    return pd.DataFrame({"step": steps, "domain": domain, "group": group, "layer": layer,
                         "metric": metric, "value": values})  # fmt: skip


def ablation_table(*groups) -> pd.DataFrame:
    """Global edit distance of memorized groups: (t*, steps, values)."""
    return pd.concat([metric_rows("edit_distance_char", "all", str(t), "all", steps, values)
                      for t, steps, values in groups])  # fmt: skip


FALLING_100 = (100, [100, 200, 300], [3.0, 2.0, 1.0])
FALLING_200 = (200, [200, 300, 400], [3.0, 2.5, 1.0])
RISING_200 = (200, [200, 300, 400], [1.0, 2.0, 3.0])
TOO_SHORT = (300, [300, 400], [2.0, 1.0])  # two checkpoints from t* on: no trend


def test_ablation_holds_when_most_groups_fall_in_every_setting():
    tables = {"0.7": ablation_table(FALLING_100, FALLING_200), "0.9": ablation_table(TOO_SHORT)}
    assert S.ablation_claim(tables, "Fig 9", "routing threshold", "same trend") == S.Claim(
        "Fig 9", "the distance trend survives the routing threshold ablation", "same trend",
        "0.7: 2/2 fall, 0.9: 0/0 fall", S.HOLDS,
    )  # fmt: skip


def test_ablation_with_half_the_groups_falling_does_not_hold():
    tables = {"0.6": ablation_table(FALLING_100, RISING_200),
              "0.7": ablation_table(FALLING_100, FALLING_200)}  # fmt: skip
    assert S.ablation_claim(tables, "Fig 10", "eps", "p") == S.Claim(
        "Fig 10", "the distance trend survives the eps ablation", "p",
        "0.6: 1/2 fall, 0.7: 2/2 fall", S.FAILS,
    )  # fmt: skip


def test_ablation_without_settings_or_trends_is_not_measurable():
    claim = "the distance trend survives the delta ablation"
    assert S.ablation_claim({}, "Fig 11", "delta", "p") == S.Claim(
        "Fig 11", claim, "p", "no settings configured", S.UNMEASURABLE)
    short = {"0.05": ablation_table(TOO_SHORT)}
    assert S.ablation_claim(short, "Fig 11", "delta", "p") == S.Claim(
        "Fig 11", claim, "p", "no group with 3 checkpoints after t*", S.UNMEASURABLE)


CROSS = "math x code pathway distance shows no trend"
# cross distance 1, 3, 2, 4 over four steps: rho 0.8, p = 1 - 0.8 = 0.2 (n = 4)
CROSS_ROWS = metric_rows("edit_distance_char_cross", "code|math", "all", "all",
                         [100, 200, 300, 400], [1.0, 3.0, 2.0, 4.0])  # fmt: skip


def test_cross_domain_distance_without_a_significant_trend_holds():
    assert S.cross_domain_no_trend(with_tables(edit_distance=CROSS_ROWS), THRESHOLDS) == S.Claim(
        "Fig 12", CROSS, "no trend", "Spearman with step +0.80 (p=0.2, 4 checkpoints)", S.HOLDS
    )


def test_cross_domain_trend_is_significant_when_p_is_below_alpha():
    inputs = with_tables(edit_distance=CROSS_ROWS)
    _, p = stats.spearman(CROSS_ROWS["step"], CROSS_ROWS["value"])
    assert S.cross_domain_no_trend(inputs, dataclasses.replace(THRESHOLDS, alpha=p)).verdict == (
        S.HOLDS)  # p equal to alpha is not significant
    assert S.cross_domain_no_trend(inputs, dataclasses.replace(THRESHOLDS, alpha=0.25)).verdict == (
        S.FAILS)


def test_cross_domain_without_rows_is_not_measurable():
    inputs = with_tables(edit_distance=CROSS_ROWS.iloc[:0])
    assert S.cross_domain_no_trend(inputs, THRESHOLDS) == S.Claim(
        "Fig 12", CROSS, "no trend", "no cross-domain rows", S.UNMEASURABLE)


ENTROPY = "routing entropy is only weakly related to edit distance"
# math, group 100, layers 0 and 1 at steps 100 and 200: distance 1, 2, 3, 4 vs entropy 1, 3, 2, 4
ENTROPY_DISTANCE = metric_rows("edit_distance_char", "math", "100", ["0", "0", "1", "1"],
                               [100, 200, 100, 200], [1.0, 2.0, 3.0, 4.0])  # fmt: skip
ENTROPY_ROUTING = metric_rows("routing_entropy", "math", "100", ["0", "0", "1", "1"],
                              [100, 200, 100, 200], [1.0, 3.0, 2.0, 4.0])  # fmt: skip


def test_entropy_and_distance_strongly_related_does_not_hold():
    inputs = with_tables(edit_distance=ENTROPY_DISTANCE, routing=ENTROPY_ROUTING)
    assert S.entropy_is_not_distance(inputs, THRESHOLDS) == S.Claim(
        "Fig 13", ENTROPY, "r = 0.24", "r = +0.80 (p=0.2, 4 per-layer sets)", S.FAILS)
    looser = dataclasses.replace(THRESHOLDS, weak_r=0.9)
    assert S.entropy_is_not_distance(inputs, looser).verdict == S.HOLDS
    r, _ = stats.pearson(ENTROPY_DISTANCE["value"], ENTROPY_ROUTING["value"])
    at_edge = dataclasses.replace(THRESHOLDS, weak_r=abs(r))
    assert S.entropy_is_not_distance(inputs, at_edge).verdict == S.FAILS  # |r| < weak_r, strictly


def test_entropy_without_paired_rows_is_not_measurable():
    global_only = ENTROPY_ROUTING.assign(layer="all")
    inputs = with_tables(edit_distance=ENTROPY_DISTANCE, routing=global_only)
    assert S.entropy_is_not_distance(inputs, THRESHOLDS) == S.Claim(
        "Fig 13", ENTROPY, "r = 0.24", "no paired rows", S.UNMEASURABLE)


F_TEST = "(beyond the paper) a pathway metric adds to training loss in predicting accuracy"


def nested_table(edit_distance_p) -> pd.DataFrame:
    rows = [
        (stats.POOLED, "edit_distance", 0.4, 0.7, 12.3, edit_distance_p),
        (stats.POOLED, "consistency", 0.4, NAN, NAN, NAN),  # no test: not listed
        (stats.POOLED, "routing_entropy", 0.4, 0.45, 1.5, 0.2),
        ("math", "edit_distance", 0.5, 0.9, 30.0, 0.5),  # a single domain: not the pooled test
    ]
    return pd.DataFrame(rows, columns=["domain", "metric", "r2_loss", "r2_loss_metric", "f", "p"])


def test_metric_adds_to_loss_reads_the_pooled_edit_distance_f_test():
    assert S.metric_adds_to_loss(with_tables(nested=nested_table(0.01)), THRESHOLDS) == S.Claim(
        "F-test", F_TEST, "not tested in the paper",
        "pooled within-domain z: edit_distance: R^2 0.40 -> 0.70, F=12.3, p=0.01; "
        "routing_entropy: R^2 0.40 -> 0.45, F=1.5, p=0.2", S.HOLDS,
    )  # fmt: skip
    at_alpha = with_tables(nested=nested_table(0.05))
    assert S.metric_adds_to_loss(at_alpha, THRESHOLDS).verdict == S.FAILS  # p < alpha, strictly


def test_metric_adds_to_loss_without_the_distance_test_is_not_measurable():
    assert S.metric_adds_to_loss(with_tables(nested=nested_table(NAN)), THRESHOLDS) == S.Claim(
        "F-test", F_TEST, "not tested in the paper", "too few checkpoints", S.UNMEASURABLE)


def test_delay_without_any_rank_correlation_does_not_hold():
    # delays 200, 400, 100, 300: ranks 2, 4, 1, 3 -> sum d^2 = 10, rho = 1 - 60 / 60 = 0
    matches = matches_table([(100, 300), (200, 600), (300, 400), (400, 700)])
    claim = S.delay_grows(with_tables(matches=matches))
    assert (claim.ours.split(";")[0], claim.verdict) == ("Spearman(t*, delay) +0.00 (p=1)", S.FAILS)


TABLE1_DISTANCE = "edit distance correlates negatively with accuracy"


def table1_correlations() -> pd.DataFrame:
    """correlations_table plus code's configured-window rows: its distance r is -0.85; its
    consistency row (r -0.10) has no accuracy rise and must not count."""
    code = [
        _correlation_row("code", "edit_distance", "paper", True, 5, -0.85, 0.7,
                         pearson_ci_low=-0.9, pearson_ci_high=-0.7),
        _correlation_row("code", "consistency", "paper", True, 5, -0.1, 0.01, rise_found=False),
    ]  # fmt: skip
    return pd.concat([correlations_table(), pd.DataFrame(code)], ignore_index=True)


def test_table1_sign_lists_each_rising_domain_with_its_ci():
    inputs = with_tables(correlations=table1_correlations())
    assert S.table1_sign(inputs, "edit_distance", -1, THRESHOLDS) == S.Claim(
        "Table 1", TABLE1_DISTANCE, "Pearson -0.98 to -0.93",
        "math -0.90 [-0.99, -0.50]; code -0.85 [-0.90, -0.70]", S.HOLDS,
    )  # fmt: skip
    assert S.table1_sign(inputs, "consistency", +1, THRESHOLDS) == S.Claim(
        "Table 1", "consistency correlates positively with accuracy", "Pearson +0.92 to +0.99",
        "math +0.95 [+0.70, +0.99]", S.HOLDS,
    )  # fmt: skip


def test_table1_sign_needs_every_domain_strong_and_of_the_papers_sign():
    inputs = with_tables(correlations=table1_correlations())
    # code's |r| 0.85 is exactly strong_r 0.85: still strong; 0.86 is not
    assert S.table1_sign(inputs, "edit_distance", -1,
                         dataclasses.replace(THRESHOLDS, strong_r=0.85)).verdict == S.HOLDS
    assert S.table1_sign(inputs, "edit_distance", -1,
                         dataclasses.replace(THRESHOLDS, strong_r=0.86)).verdict == S.FAILS
    assert S.table1_sign(inputs, "consistency", -1, THRESHOLDS).verdict == S.FAILS  # fmt: skip


def test_table1_sign_without_a_rising_domain_is_not_measurable():
    inputs = with_tables(correlations=table1_correlations().assign(pearson_r=NAN))
    assert S.table1_sign(inputs, "edit_distance", -1, THRESHOLDS) == S.Claim(
        "Table 1", TABLE1_DISTANCE, "Pearson -0.98 to -0.93", "no domain with an accuracy rise",
        S.UNMEASURABLE,
    )  # fmt: skip


LOSS_WEAKER = "the loss rows are weaker predictors than the pathway metrics"


def loss_correlations(pathway, loss) -> pd.DataFrame:
    """math's configured window: |r| of distance and consistency, then of the three loss rows;
    routing entropy (not a pathway row here) and a domain without a rise must not count."""
    names = ["edit_distance", "consistency", "training_loss", "training_loss_ma",
             "validation_loss"]  # fmt: skip
    rows = [_correlation_row("math", p, "paper", True, 5, r, NAN)
            for p, r in zip(names, [*pathway, *loss])]  # fmt: skip
    rows += [_correlation_row("math", "routing_entropy", "paper", True, 5, 0.0, NAN),
             _correlation_row("code", "training_loss", "paper", True, 5, 1.0, NAN,
                              rise_found=False)]  # fmt: skip
    return pd.DataFrame(rows)


def test_loss_is_weaker_compares_mean_abs_r():
    inputs = with_tables(correlations=loss_correlations([-0.8, 0.6], [0.2, -0.4, 0.6]))
    assert S.loss_is_weaker(inputs) == S.Claim(
        "Table 1", LOSS_WEAKER, "loss rows weak or wrong sign",
        "mean |r|: pathway metrics 0.70, loss rows 0.40", S.HOLDS,
    )  # fmt: skip
    tied = with_tables(correlations=loss_correlations([-0.5, 0.5], [0.5, -0.5, 0.5]))
    assert S.loss_is_weaker(tied).verdict == S.FAILS


def test_loss_is_weaker_without_loss_rows_is_not_measurable():
    no_loss = loss_correlations([-0.8, 0.6], [NAN, NAN, NAN])
    assert S.loss_is_weaker(with_tables(correlations=no_loss)) == S.Claim(
        "Table 1", LOSS_WEAKER, "loss rows weak or wrong sign", "no domain with a rise",
        S.UNMEASURABLE,
    )  # fmt: skip


FIG7 = "pathway metrics fit accuracy better than loss (R^2)"
FIG7_PAPER = ("edit_distance 0.91, consistency 0.89, training_loss 0.41, training_loss_ma 0.63, "
              "validation_loss 0.33")  # fmt: skip


def pooled_r2(consistency) -> pd.DataFrame:
    """Pooled R^2 of the configured window (validation loss absent), and a configured-window
    domain row and an other-window pooled row that Fig 7 must not read."""
    values = {"edit_distance": 0.9, "consistency": consistency, "training_loss": 0.4,
              "training_loss_ma": 0.6}  # fmt: skip
    rows = [_correlation_row(stats.POOLED, p, "paper", True, 10, NAN, r2)
            for p, r2 in values.items()]  # fmt: skip
    rows += [_correlation_row("math", "training_loss", "paper", True, 5, NAN, 0.99),
             _correlation_row(stats.POOLED, "training_loss", "rise", False, 12, NAN, 0.99)]
    return pd.DataFrame(rows)


def test_fig7_holds_when_both_pathway_r2_beat_every_loss_r2():
    assert S.fig7_r2(with_tables(correlations=pooled_r2(0.85))) == S.Claim(
        "Fig 7", FIG7, FIG7_PAPER,
        "within-domain z: edit_distance 0.90, consistency 0.85, training_loss 0.40, "
        "training_loss_ma 0.60, validation_loss nan", S.HOLDS,
    )  # fmt: skip
    # consistency's 0.60 only ties training_loss_ma's: not better
    assert S.fig7_r2(with_tables(correlations=pooled_r2(0.6))).verdict == S.FAILS


def test_fig7_without_a_pooled_consistency_r2_is_not_measurable():
    assert S.fig7_r2(with_tables(correlations=pooled_r2(NAN))) == S.Claim(
        "Fig 7", FIG7, FIG7_PAPER,
        "within-domain z: edit_distance 0.90, consistency nan, training_loss 0.40, "
        "training_loss_ma 0.60, validation_loss nan", S.UNMEASURABLE,
    )  # fmt: skip


RISE_THEN_FALL = "edit distance rises during memorization, then falls (global quadratic)"


def test_rise_then_fall_counts_concave_global_fits_of_the_shown_groups():
    # group 200: 1, 3, 1 (up, then down: concave); 300: 3, 1, 3 (convex); 400 has no rows;
    # per-layer rows of group 300 and math's rows are not the global series
    table = pd.concat([
        ablation_table((200, [100, 200, 300], [1.0, 3.0, 1.0]),
                       (300, [100, 200, 300], [3.0, 1.0, 3.0])),
        metric_rows("edit_distance_char", "all", "300", "0", [100, 200, 300], [1.0, 5.0, 1.0]),
        metric_rows("edit_distance_char", "math", "300", "all", [100, 200, 300], [1.0, 5.0, 1.0]),
    ])  # fmt: skip
    inputs = with_tables(edit_distance=table, fig4_groups=[200, 300, 400])
    # 1 of 2 concave: not more than half
    assert S.rise_then_fall(inputs) == S.Claim(
        "Fig 4", RISE_THEN_FALL, "concave over steps",
        "1/2 groups concave (t*=200: concave, t*=300: convex)", S.FAILS,
    )  # fmt: skip


def test_rise_then_fall_holds_for_most_groups_and_a_flat_series_is_not_concave():
    # 200: 1, 3, 1 and 300: 1, 4, 2 are concave; 500 stays at 0 (quadratic coefficient 0)
    table = ablation_table((200, [100, 200, 300], [1.0, 3.0, 1.0]),
                           (300, [100, 200, 300], [1.0, 4.0, 2.0]),
                           (500, [100, 200, 300], [0.0, 0.0, 0.0]))  # fmt: skip
    inputs = with_tables(edit_distance=table, fig4_groups=[200, 300, 500])
    assert S.rise_then_fall(inputs) == S.Claim(
        "Fig 4", RISE_THEN_FALL, "concave over steps",
        "2/3 groups concave (t*=200: concave, t*=300: concave, t*=500: convex)", S.HOLDS,
    )  # fmt: skip


def test_rise_then_fall_without_three_global_checkpoints_is_not_measurable():
    inputs = with_tables(edit_distance=ablation_table(TOO_SHORT), fig4_groups=[300])
    assert S.rise_then_fall(inputs) == S.Claim(
        "Fig 4", RISE_THEN_FALL, "concave over steps", "no global series", S.UNMEASURABLE)


LOSS_FLAT = "training loss of the memorized groups stays flat meanwhile"


def loss_rows(*groups) -> pd.DataFrame:
    """Global training loss of memorized groups: (t*, steps, values)."""
    return pd.concat([metric_rows("training_loss", "all", str(t), "all", steps, values)
                      for t, steps, values in groups])  # fmt: skip


def test_a_loss_that_moves_by_exactly_delta_is_still_flat():
    # t*=200: 2.0 at 200 -> 2.25 at 400: +0.25, |0.25| <= delta 0.25; t*=300: 1.5 -> 1.375:
    # -0.125; group 400 has no rows and is not listed
    table = loss_rows((200, [100, 200, 300, 400], [3.0, 2.0, 2.5, 2.25]),
                      (300, [100, 300, 400], [1.0, 1.5, 1.375]))  # fmt: skip
    inputs = with_tables(loss_baselines=table, fig4_groups=[200, 300, 400], delta=0.25)
    assert S.loss_flat_after_memorization(inputs) == S.Claim(
        "Fig 4", LOSS_FLAT, "flat", "t*=200: +0.250, t*=300: -0.125 (delta 0.25)", S.HOLDS)
    # the same change against a smaller delta is not flat
    stricter = dataclasses.replace(inputs, delta=0.125)
    assert S.loss_flat_after_memorization(stricter) == S.Claim(
        "Fig 4", LOSS_FLAT, "flat", "t*=200: +0.250, t*=300: -0.125 (delta 0.125)", S.FAILS)


def test_loss_flat_without_global_rows_of_a_shown_group_is_not_measurable():
    # rows of another group, and per-layer rows of the shown one
    table = pd.concat([loss_rows((500, [500, 600], [1.0, 1.0])),
                       metric_rows("training_loss", "all", "200", "0", [200, 300], [1.0, 1.0])])
    inputs = with_tables(loss_baselines=table, fig4_groups=[200])
    assert S.loss_flat_after_memorization(inputs) == S.Claim(
        "Fig 4", LOSS_FLAT, "flat", "no shown group has global training-loss rows",
        S.UNMEASURABLE,
    )  # fmt: skip


EARLY_LAYERS = "early layers' distance drops most; the last layer's rises"
EARLY_PAPER = "16 layers, 245k group"


def layer_table(group, *layers, steps=(200, 300, 400)) -> pd.DataFrame:
    """Global per-layer edit distance of one group: one list of values per layer 0, 1, ..."""
    return pd.concat([metric_rows("edit_distance_char", "all", group, str(i), list(steps), values)
                      for i, values in enumerate(layers)])  # fmt: skip


def test_early_layers_drop_holds_when_a_first_half_layer_drops_most_and_the_last_rises():
    # t*=300: L0 2.0 -> 1.5 (-0.50), L1 2.0 -> 1.0 (-1.00, the largest drop: index 1 < 3 / 2),
    # L2 2.0 -> 2.25 (+0.25, the last layer rises). A layer "3" of another metric, another
    # domain or another group, and group 300's global row, must not be read.
    rows = pd.concat([
        layer_table("300", [1.0, 2.0, 1.5], [1.0, 2.0, 1.0], [1.0, 2.0, 2.25]),
        metric_rows("routing_entropy", "all", "300", "3", [200, 300, 400], [9.0, 9.0, 0.0]),
        metric_rows("edit_distance_char", "math", "300", "3", [200, 300, 400], [9.0, 9.0, 0.0]),
        metric_rows("edit_distance_char", "all", "200", "3", [200, 300, 400], [9.0, 9.0, 0.0]),
        metric_rows("edit_distance_char", "all", "300", "all", [200, 300, 400], [9.0, 9.0, 0.0]),
    ])  # fmt: skip
    inputs = with_tables(edit_distance=rows, fig5_group=300)
    assert S.early_layers_drop(inputs) == S.Claim(
        "Fig 5", EARLY_LAYERS, EARLY_PAPER, "t*=300: L0 -0.50, L1 -1.00, L2 +0.25", S.HOLDS)


def test_early_layers_drop_needs_the_last_layer_strictly_rising():
    # two layers: L0 -1.00 drops most (index 0 < 1); L1 +0.50 rises, then stays level (0.00)
    rising = with_tables(edit_distance=layer_table("300", [2.0, 2.0, 1.0], [1.0, 1.0, 1.5]),
                         fig5_group=300)  # fmt: skip
    assert S.early_layers_drop(rising) == S.Claim(
        "Fig 5", EARLY_LAYERS, EARLY_PAPER, "t*=300: L0 -1.00, L1 +0.50", S.HOLDS)
    level = with_tables(edit_distance=layer_table("300", [2.0, 2.0, 1.0], [1.0, 1.0, 1.0]),
                        fig5_group=300)  # fmt: skip
    assert S.early_layers_drop(level) == S.Claim(
        "Fig 5", EARLY_LAYERS, EARLY_PAPER, "t*=300: L0 -1.00, L1 +0.00", S.FAILS)


def test_early_layers_drop_in_the_second_half_does_not_hold():
    # four layers: the largest drop is L2's (index 2 is not < 4 / 2); the last layer rises
    rows = layer_table("300", [1.0, 1.0, 0.5], [1.0, 1.0, 0.75], [1.0, 1.0, 0.0], [1.0, 1.0, 2.0])
    assert S.early_layers_drop(with_tables(edit_distance=rows, fig5_group=300)) == S.Claim(
        "Fig 5", EARLY_LAYERS, EARLY_PAPER, "t*=300: L0 -0.50, L1 -0.25, L2 -1.00, L3 +1.00",
        S.FAILS,
    )  # fmt: skip


def test_early_layers_drop_with_a_single_layer_is_not_measurable():
    rows = layer_table("300", [2.0, 2.0, 1.0])
    assert S.early_layers_drop(with_tables(edit_distance=rows, fig5_group=300)) == S.Claim(
        "Fig 5", EARLY_LAYERS, EARLY_PAPER, "no per-layer rows", S.UNMEASURABLE)


def test_early_layers_drop_when_t_star_is_not_a_checkpoint_is_not_measurable():
    rows = layer_table("250", [2.0, 2.0, 1.0], [1.0, 1.0, 1.5])  # steps 200, 300, 400
    assert S.early_layers_drop(with_tables(edit_distance=rows, fig5_group=250)) == S.Claim(
        "Fig 5", EARLY_LAYERS, EARLY_PAPER, "t*=250 is not a checkpoint", S.UNMEASURABLE)


FALLS = ("Fig 4", "edit distance falls after memorization (per domain)", "falls after t*")
RISES = ("Fig 6", "consistency rises after memorization (per domain)", "rises after t*")


def trend_table(metric, *series) -> pd.DataFrame:
    """(domain, t*, values at the three checkpoints from t* on, 100 steps apart), plus the
    pooled "all" domain and a cross-domain pair, which are no per-domain panels."""
    rows = [metric_rows(metric, d, str(t), "all", [t, t + 100, t + 200], values)
            for d, t, values in series]  # fmt: skip
    rows += [metric_rows(metric, d, "100", "all", [100, 200, 300], [9.0, 5.0, 1.0])
             for d in ["all", "code|math"]]  # fmt: skip
    return pd.concat(rows)


def test_distance_falling_after_memorization_needs_more_than_half_strictly_falling():
    # slopes per 1k steps: code t*=100 3, 2, 1 -> -10; code t*=200 1, 1.025, 1.05 -> +0.25;
    # math t*=100 level at 0 -> +0 (not falling); math t*=200 3, 2.5, 2 -> -5. 2 of 4 fall.
    table = trend_table("edit_distance_char",
                        ("math", 100, [0.0, 0.0, 0.0]), ("math", 200, [3.0, 2.5, 2.0]),
                        ("code", 100, [3.0, 2.0, 1.0]), ("code", 200, [1.0, 1.025, 1.05]))
    assert S.trend_after_memorization(table, "edit_distance_char", [100, 200], True,
                                      *FALLS) == S.Claim(
        *FALLS, "2/4 trends fall after t* (code t*=100: -10/1k; code t*=200: +0.25/1k; "
        "math t*=100: +0/1k; math t*=200: -5/1k)", S.FAILS,
    )  # fmt: skip


def test_consistency_rising_after_memorization_holds_for_most_strictly_rising_trends():
    # code t*=100 level at 0 -> +0 (not rising); code t*=200 +0.25/1k; math t*=100 1, 2, 3
    # -> +10/1k: 2 of 3 rise
    table = trend_table("consistency_norm_mean_cos",
                        ("code", 100, [0.0, 0.0, 0.0]), ("code", 200, [1.0, 1.025, 1.05]),
                        ("math", 100, [1.0, 2.0, 3.0]))  # fmt: skip
    assert S.trend_after_memorization(table, "consistency_norm_mean_cos", [100, 200], False,
                                      *RISES) == S.Claim(
        *RISES, "2/3 trends rise after t* (code t*=100: +0/1k; code t*=200: +0.25/1k; "
        "math t*=100: +10/1k)", S.HOLDS,
    )  # fmt: skip


def test_trends_after_memorization_without_three_checkpoints_are_not_measurable():
    table = metric_rows("consistency_norm_mean_cos", "math", "300", "all", [300, 400],
                        [1.0, 2.0])  # fmt: skip
    assert S.trend_after_memorization(table, "consistency_norm_mean_cos", [300], False,
                                      *RISES) == S.Claim(
        *RISES, "groups [300]: fewer than 3 checkpoints after t*", S.UNMEASURABLE)


LEAP = ("Fig 1", "test generalization leaps after the training data is memorized",
        "leap after memorization in every domain")  # fmt: skip


def generalized(domain, gen_steps) -> pd.DataFrame:
    """A domain's test items, doc_id 0, 1, ...: the step each first generalized (None: never)."""
    return pd.DataFrame({"task": f"lab_{domain}", "domain": domain, "doc_id": range(len(gen_steps)),
                         "gen_step": pd.array(gen_steps, dtype="Int64"),
                         "generalized": [s is not None for s in gen_steps]})  # fmt: skip


def memorized(domain, groups) -> pd.DataFrame:
    return pd.DataFrame([{"domain": domain, "t_star": t, "n_samples": n} for t, n in groups])


def leap_inputs(math_groups) -> S.SummaryInputs:
    # checkpoints 100-400 (accuracy_table). math: 8 clean items generalize at 100 x3, 300,
    # 400 x4, so 3/8 by 100 and 200, 4/8 by 300, all 8 by 400: half (0.5) first reached at 300.
    # A ninth item (100) is contaminated and dropped. code generalizes nothing; trivia has
    # generalized items but no memorized group.
    table = pd.concat([
        generalized("math", [100, 100, 100, 300, 400, 400, 400, 400, 100]),
        generalized("code", [None, None]), generalized("trivia", [100, 200]),
    ])  # fmt: skip
    contamination = pd.DataFrame({"domain": ["math", "math"], "doc_id": [8, 0],
                                  "contaminated": [True, False]})  # fmt: skip
    groups = pd.concat([memorized("math", math_groups), memorized("code", [(100, 5)])])
    return with_tables(generalization=table, contamination=contamination, groups=groups)


def test_leap_after_memorization_compares_half_generalized_with_the_median_t_star():
    # math groups by t*: 100 (2 samples), 150 (5), 200 (3), 300 (10): running totals 2, 7, 10, 20;
    # the median sample (10 of 20) is in group 200; 300 > 200
    inputs = leap_inputs([(300, 10), (100, 2), (200, 3), (150, 5)])
    assert S.leap_after_memorization(inputs) == S.Claim(
        *LEAP, "code: no generalized items or no memorized group; math: median t* 200, half "
        "generalized by 300; trivia: no generalized items or no memorized group", S.HOLDS,
    )  # fmt: skip


def test_leap_at_the_median_t_star_itself_does_not_hold():
    # every math sample memorized at 300, half generalized by 300: not after
    assert S.leap_after_memorization(leap_inputs([(300, 10)])) == S.Claim(
        *LEAP, "code: no generalized items or no memorized group; math: median t* 300, half "
        "generalized by 300; trivia: no generalized items or no memorized group", S.FAILS,
    )  # fmt: skip


def test_configured_window_is_read_even_from_a_single_accuracy_row():
    # one domain at one checkpoint: the window column still names the configured window
    assert S.configured_window(accuracy_table().iloc[:1]) == "paper"
