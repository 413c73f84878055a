"""Several seeds: the config key, the per-seed modules and the aggregation over seeds.

The aggregation functions run on hand-made per-seed tables whose spread and counts are computed
here by hand; the workflow checks are dry runs of the tiny config and in-process parses of the
Snakefile (nothing is trained).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

import analysis_tables as T
from grokpath.analysis import seeds as S
from grokpath.analysis import stats
from grokpath.analysis import summary
from grokpath.config import seed_run_config, seeds_from_command_line, validate_config
from grokpath.errors import GrokpathError
from grokpath.figures import seeds as seed_figures
from tiny_runs import TINY, planned_jobs
from workflow_utils import ROOT, script, snakemake

POOLED = stats.POOLED


# ---------------------------------------------------------------- the config key


@pytest.fixture
def tiny_config() -> dict:
    return yaml.safe_load(TINY.read_text())


@pytest.mark.parametrize("seeds", [[1, 1], [-1], [], [1.5], "1"])
def test_bad_seed_lists_are_rejected(tiny_config, seeds):
    with pytest.raises(GrokpathError, match="seeds"):
        validate_config({**tiny_config, "seeds": seeds})


def test_seed_lists_from_the_command_line_become_numbers(tiny_config):
    config = {**tiny_config, "seeds": ["1", "2"]}  # Snakemake's --config seeds=[1,2]
    seeds_from_command_line(config)
    assert config["seeds"] == [1, 2]
    validate_config(config)


def test_a_seed_module_config_is_that_seed_alone_and_valid(tiny_config):
    config = seed_run_config({**tiny_config, "seeds": [1, 2]}, 2)
    assert (config["run"], config["seed"], config["seeds"]) == ("tiny/seed2", 2, [2])
    validate_config(config)
    assert tiny_config["run"] == "tiny"  # the run's own config is left alone


def test_a_seed_run_name_must_match_its_seed(tiny_config):
    with pytest.raises(GrokpathError, match="seed 3"):
        validate_config({**tiny_config, "run": "tiny/seed3", "seed": 3, "seeds": [4]})
    with pytest.raises(GrokpathError, match="config key run"):
        validate_config({**tiny_config, "run": "tiny/other"})


def test_lab_config_runs_three_seeds_and_the_default_one():
    lab = yaml.safe_load((ROOT / "config" / "lab.yaml").read_text())
    quick = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert len(lab["seeds"]) == 3 and lab["seed"] in lab["seeds"]
    assert quick.get("seeds", [quick["seed"]]) == [quick["seed"]]


# ---------------------------------------------------------------- Table 1 over seeds


def correlation_rows(rs: dict[tuple[str, str], float], window="paper", other=0.99) -> pd.DataFrame:
    """A seed's table1_correlations.parquet: the configured window's rows with these Pearson r
    (Spearman rho = r / 2, R^2 = r^2), and the other window's rows, all at r = `other`."""
    rows = []
    for primary, name in ((True, window), (False, "rise" if window == "paper" else "paper")):
        for (domain, predictor), r in rs.items():
            value = r if primary else other
            rows.append({
                **{c: np.nan for c in stats.CORRELATION_COLUMNS}, "domain": domain,
                "predictor": predictor, "metric": predictor, "group": "memorized", "window": name,
                "primary": primary, "domains": domain, "left_out": "", "n_checkpoints": 5,
                "steps": "1,2,3,4,5", "rise_found": True, "late_rise": False,
                "pearson_r": value, "spearman_rho": value / 2, "r2": value**2, "loo_r2": 0.1,
            })  # fmt: skip
    return pd.DataFrame(rows)[stats.CORRELATION_COLUMNS]


@pytest.fixture
def three_seeds() -> dict[int, pd.DataFrame]:
    return {
        1: correlation_rows({("math", "edit_distance"): -0.9, ("math", "consistency"): 0.8,
                             (POOLED, "edit_distance"): -0.6}),
        2: correlation_rows({("math", "edit_distance"): -0.5, ("math", "consistency"): np.nan,
                             (POOLED, "edit_distance"): -0.2}),
        3: correlation_rows({("math", "edit_distance"): -0.7, ("math", "consistency"): 0.4,
                             (POOLED, "edit_distance"): 0.1}),
    }  # fmt: skip


def test_per_seed_table_keeps_the_configured_window_only(three_seeds):
    per_seed = S.table1_per_seed(three_seeds)
    assert list(per_seed.columns) == S.PER_SEED_COLUMNS
    assert set(per_seed["window"]) == {"paper"} and len(per_seed) == 9
    assert sorted(per_seed["seed"].unique()) == [1, 2, 3]


def test_mean_and_spread_over_seeds(three_seeds):
    across = S.table1_across_seeds(S.table1_per_seed(three_seeds))
    assert list(across.columns) == S.ACROSS_COLUMNS
    row = across.set_index(["domain", "predictor"]).loc[("math", "edit_distance")]
    # -0.9, -0.5, -0.7: mean -0.7, deviations -0.2, +0.2, 0 -> sd sqrt(0.08 / 2) = 0.2
    assert row["pearson_r_mean"] == pytest.approx(-0.7)
    assert row["pearson_r_sd"] == pytest.approx(0.2)
    assert (row["pearson_r_min"], row["pearson_r_max"]) == pytest.approx((-0.9, -0.5))
    assert (row["n_seeds"], row["seeds"], row["n_negative"], row["n_positive"]) == (3, "1,2,3", 3, 0)
    assert row["spearman_rho_mean"] == pytest.approx(-0.35)
    assert row["r2_mean"] == pytest.approx((0.81 + 0.25 + 0.49) / 3)
    # a seed whose r is undefined is left out of the mean and of n_seeds
    consistency = across.set_index(["domain", "predictor"]).loc[("math", "consistency")]
    assert (consistency["n_seeds"], consistency["seeds"]) == (2, "1,3")
    assert consistency["pearson_r_mean"] == pytest.approx(0.6)
    assert consistency["pearson_r_sd"] == pytest.approx(np.sqrt(0.08))
    pooled = across.set_index(["domain", "predictor"]).loc[(POOLED, "edit_distance")]
    assert (pooled["n_negative"], pooled["n_positive"]) == (2, 1)
    # domains first, the within-domain pool last; predictors in Table 1's order
    assert list(across["domain"]) == ["math", "math", POOLED]
    assert list(across["predictor"][:2]) == ["edit_distance", "consistency"]


def test_one_seed_has_no_spread():
    across = S.table1_across_seeds(
        S.table1_per_seed({5: correlation_rows({("math", "edit_distance"): -0.9})})
    )
    assert across["pearson_r_mean"].iloc[0] == pytest.approx(-0.9)
    assert np.isnan(across["pearson_r_sd"].iloc[0])


# ---------------------------------------------------------------- claims over seeds


def claim_rows(verdicts: dict[str, str]) -> pd.DataFrame:
    rows = [[cid, "Fig X", f"claim {cid}", "paper", f"measured {cid}", v] for cid, v in verdicts.items()]
    return pd.DataFrame(rows, columns=summary.CLAIM_COLUMNS)


H, F, U = summary.HOLDS, summary.FAILS, summary.UNMEASURABLE


@pytest.mark.parametrize(
    ("n_holds", "n_seeds", "n_unmeasurable", "expected"),
    [(3, 3, 0, "holds in 3 of 3 seeds"), (0, 3, 0, "holds in 0 of 3 seeds"),
     (1, 3, 1, "holds in 1 of 3 seeds (1 not measurable)"),
     (0, 3, 3, "not measurable in any of 3 seeds"), (1, 1, 0, "holds in 1 of 1 seed")],
)  # fmt: skip
def test_verdict_counts_seeds(n_holds, n_seeds, n_unmeasurable, expected):
    assert S.seeds_verdict(n_holds, n_seeds, n_unmeasurable) == expected


def test_claims_are_counted_over_seeds_by_id():
    claims = {
        1: claim_rows({"a": H, "b": H, "c": U, "d": H}),
        2: claim_rows({"a": H, "b": F, "c": U}),  # "d" missing: not measurable there
        3: claim_rows({"b": U, "a": F, "c": U, "d": H}),  # another order: joined on the id
    }
    table = S.claims_across_seeds(claims).set_index("claim_id")
    assert list(table.index) == ["a", "b", "c", "d"]  # the summary's order
    assert table.loc["a", "verdict"] == "holds in 2 of 3 seeds"
    assert (table.loc["a", "n_holds"], table.loc["a", "n_fails"], table.loc["a", "seeds_holding"]) == (2, 1, "1,2")
    assert table.loc["b", "verdict"] == "holds in 1 of 3 seeds (1 not measurable)"
    assert table.loc["c", "verdict"] == "not measurable in any of 3 seeds"
    assert table.loc["d", "verdict"] == "holds in 2 of 3 seeds (1 not measurable)"
    assert table.loc["a", "per_seed"] == "1: holds; 2: holds; 3: does not hold"


# ---------------------------------------------------------------- the lab verdict over seeds


def test_grokking_is_counted_over_seeds():
    base = T.grokking_table()
    assert base["groks"].all()  # the fixture: both domains grok
    second = base.copy()
    second.loc[second["domain"] == "math", "groks"] = False
    second["gap"] = second["gap"] + 100
    table = S.grokking_across_seeds({1: base, 2: second}).set_index("domain")
    assert table.loc["code", "verdict"] == "groks in 2 of 2 seeds"
    assert table.loc["math", "verdict"] == "groks in 1 of 2 seeds"
    assert table.loc["math", "seeds_grokking"] == "1"
    gap = float(base.set_index("domain").loc["math", "gap"])
    assert table.loc["math", "gap_mean"] == pytest.approx(gap + 50)
    assert table.loc["math", "gap_sd"] == pytest.approx(np.sqrt(2 * 50**2))


def test_summary_says_how_many_seeds_each_claim_holds_in(three_seeds):
    across = S.table1_across_seeds(S.table1_per_seed(three_seeds))
    claims = S.claims_across_seeds({1: claim_rows({"a": H}), 2: claim_rows({"a": H}),
                                    3: claim_rows({"a": F})})  # fmt: skip
    grokking = S.grokking_across_seeds({1: T.grokking_table(), 2: T.grokking_table(),
                                        3: T.grokking_table()})  # fmt: skip
    text = S.summary_markdown("lab", [1, 2, 3], across, claims, grokking)
    assert "across 3 seeds" in text and "**holds in 2 of 3 seeds**" in text
    assert "0 hold in every seed, 1 in some, 0 in none" in text
    assert "| math | edit_distance | 3 of 3 | -0.70 (0.20) | -0.90, -0.50 | 3 of 3 |" in text
    assert "groks in 3 of 3 seeds" in text
    assert "Not measurable here" in S.summary_markdown("hub", [1, 2], across, claims, None)


# ---------------------------------------------------------------- Fig 7 over seeds


@pytest.fixture(scope="module")
def seed_points() -> dict[int, pd.DataFrame]:
    """Two seeds' correlation points: the fixture's, and the same with x on another scale."""
    items, contamination = T.items_table(), T.contamination_table()
    accuracy = stats.accuracy_with_window(stats.domain_accuracy(items, contamination), 0.1, 0.05, 4)
    metrics = {
        "edit_distance": T.edit_distance_table(), "consistency": T.consistency_table(),
        "routing": T.routing_table(), "loss_baselines": T.loss_baselines_table(),
    }  # fmt: skip
    points = stats.predictor_points(metrics, accuracy, "memorized")
    return {1: points, 2: points.assign(x=points["x"] * 3 + 10)}


def test_fig7_points_are_z_scored_within_each_seed_and_domain(seed_points):
    z, left_out = S.fig7_points_across_seeds(seed_points)
    assert list(z.columns) == S.FIG7_POINT_COLUMNS and left_out == []
    for _, part in z.groupby(["seed", "predictor", "domain"]):
        assert part["x"].mean() == pytest.approx(0, abs=1e-9)
        assert part["x"].std(ddof=0) == pytest.approx(1)
    one, two = (z[(z["seed"] == s) & (z["predictor"] == "edit_distance")] for s in (1, 2))
    assert one["x"].to_numpy() == pytest.approx(two["x"].to_numpy())  # scale-free within a seed
    r2 = S.pooled_r2_across_seeds(z)
    # both seeds' points coincide, so pooling them keeps each seed's pooled R^2
    pooled = stats.primary_rows(stats.correlation_table(seed_points[1], "memorized", 200, 0.95, 0))
    edit = pooled[(pooled["domain"] == POOLED) & (pooled["predictor"] == "edit_distance")]
    assert r2["edit_distance"] == pytest.approx(float(edit["r2"].iloc[0]))


def test_fig7_across_seeds_has_one_marker_per_seed_and_one_colour_per_domain(seed_points, monkeypatch):
    correlations = {s: stats.correlation_table(p, "memorized", 200, 0.95, 0) for s, p in seed_points.items()}
    kept = {}
    monkeypatch.setattr(seed_figures, "save_figure", lambda fig, png, pdf: kept.setdefault("fig", fig))
    seed_figures.fig7_across_seeds(seed_points, correlations, "unused.png", "unused.pdf")
    fig = kept["fig"]
    title = fig._suptitle.get_text()
    assert "over 2 seeds" in title and "within-domain z-scores" in title
    ax = fig.axes[0]
    collections = ax.collections
    assert len(collections) == 2 * len(T.DOMAINS)  # one per seed and domain
    colours = {tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in collections}
    markers = {c.get_paths()[0].vertices.tobytes() for c in collections}
    assert len(colours) == len(T.DOMAINS) and len(markers) == 2
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [*sorted(T.DOMAINS), "seed 1", "seed 2"]
    assert ax.get_title().startswith("R² = ")


def test_fig7_across_seeds_writes_png_and_pdf(seed_points, tmp_path):
    correlations = {s: stats.correlation_table(p, "memorized", 200, 0.95, 0) for s, p in seed_points.items()}
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    seed_figures.fig7_across_seeds(seed_points, correlations, png, pdf)
    assert png.stat().st_size > 0 and pdf.stat().st_size > 0


# ---------------------------------------------------------------- claim ids of one run


def test_claims_have_stable_unique_ids():
    assert len(set(summary.CLAIM_IDS)) == len(summary.CLAIM_IDS)
    claims = [summary.Claim("Fig 1", "c", "p", "o", summary.HOLDS, claim_id="x")]
    table = summary.claims_table(claims)
    assert list(table.columns) == summary.CLAIM_COLUMNS
    assert table.iloc[0].to_dict() == {"claim_id": "x", "figure": "Fig 1", "claim": "c", "paper": "p",
                                       "measured": "o", "verdict": "holds"}  # fmt: skip


def test_build_claims_gives_every_claim_its_id():
    items, contamination = T.items_table(), T.contamination_table()
    accuracy = stats.accuracy_with_window(stats.domain_accuracy(items, contamination), 0.1, 0.05, 4)
    metrics = {
        "edit_distance": T.edit_distance_table(), "consistency": T.consistency_table(),
        "routing": T.routing_table(), "loss_baselines": T.loss_baselines_table(),
    }  # fmt: skip
    points = stats.predictor_points(metrics, accuracy, "memorized")
    distance = metrics["edit_distance"]
    inputs = summary.SummaryInputs(
        run="fixture", correlations=stats.correlation_table(points, "memorized", 200, 0.95, 0),
        nested=stats.nested_f_tests(points, "training_loss"), accuracy=accuracy,
        groups=T.groups_table(), generalization=T.generalization_table(items),
        contamination=contamination, matches=T.matches_table(), toy=T.toy_table(),
        fig4_groups=[200, 300], fig5_group=300, fig6_groups=[300, 500], fig2_domain="math",
        cross_domains=("math", "code"), delta=0.05,
        threshold_ablation={"0.6": distance}, eps_ablation={"1.0": distance},
        delta_ablation={"0.05": distance}, grokking=T.grokking_table(), **metrics,
    )  # fmt: skip
    claims = summary.build_claims(inputs, summary.Thresholds(0.8, 0.5, 0.05))
    assert [c.claim_id for c in claims] == summary.CLAIM_IDS
    by_id = {c.claim_id: c for c in claims}
    assert by_id["table1_edit_distance_negative"].figure == "Table 1"
    assert by_id["fig7_r2"].figure == "Fig 7" and by_id["lora_rank"].verdict == summary.UNMEASURABLE
    table = summary.claims_table(claims)
    assert list(table["claim_id"]) == summary.CLAIM_IDS


# ---------------------------------------------------------------- the workflow with several seeds


def parsed_workflow(api: SnakemakeApi, config: dict, **resource_settings):
    return api.workflow(
        resource_settings=ResourceSettings(**resource_settings),
        config_settings=ConfigSettings(configfiles=[TINY], config=copy.deepcopy(config)),
        snakefile=ROOT / "Snakefile",
        workdir=ROOT,
    )._workflow


def parsed_rules(config: dict) -> tuple[set[str], dict[str, tuple]]:
    """Local rule names and, per rule, its non-function params, inputs and outputs."""
    with SnakemakeApi(OutputSettings(quiet=True)) as api:
        workflow = parsed_workflow(api, config)
        rules = {
            rule.name: (
                repr({k: v for k, v in rule.params.items() if not callable(v)}),
                sorted(str(f) for f in rule.input if not callable(f)),
                sorted(str(f) for f in rule.output),
            )
            for rule in workflow.rules
        }
        return set(workflow._localrules), rules


def test_dry_run_plans_one_pretraining_per_seed_and_the_aggregation(tmp_path):
    result = snakemake(tmp_path, TINY, "-n", "--config", "seeds=[1,2]", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    rules = [job.rule for job in jobs]
    assert sorted(r for r in rules if r.endswith("pretrain_lab")) == ["seed1_pretrain_lab", "seed2_pretrain_lab"]
    assert {"seeds_summary", "fig7_across_seeds", "all"} <= set(rules)
    assert all(r.startswith(("seed1_", "seed2_")) for r in rules if r not in {"seeds_summary", "fig7_across_seeds", "all"})
    assert rules.count("seed1_summary") == rules.count("seed2_summary") == 1
    # each seed's DAG lies under results/{run}/seed{N}/; the aggregation under results/{run}/seeds/
    assert "results/tiny/seed2/checkpoints/step10" in result.stdout
    assert "results/tiny/seeds/summary.md" in result.stdout
    assert "results/tiny/summary.md" not in result.stdout
    assert "localrules directive specifies rules that are not present" not in result.stderr


def test_one_seed_keeps_the_plain_layout(tmp_path):
    result = snakemake(tmp_path, TINY, "-n", "--config", "seeds=[7]", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rules = {job.rule for job in planned_jobs(result.stdout)}
    assert "pretrain_lab" in rules and not any(r.startswith("seed") for r in rules)
    assert "results/tiny/summary.md" in result.stdout and "results/tiny/seed7" not in result.stdout


def test_each_seed_runs_with_its_own_seed(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, one = parsed_rules({"seeds": [7]})  # one seed: the plain rules, with that seed
    assert "'seed': 7" in one["pretrain_lab"][0] and "'seed': 7" in one["make_corpus"][0]
    _, two = parsed_rules({"seeds": [1, 2]})
    for seed in (1, 2):
        assert f"'seed': {seed}" in two[f"seed{seed}_pretrain_lab"][0]
        assert f"'seed': {seed}" in two[f"seed{seed}_make_corpus"][0]


def test_module_local_rules_carry_the_seed_prefix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local, rules = parsed_rules({"seeds": [1, 2]})
    assert local <= set(rules)  # no bare name left over
    for seed in (1, 2):
        assert {f"seed{seed}_{name}" for name in ("versions", "summary", "correlations", "memorization")} <= local
        assert f"seed{seed}_pretrain_lab" not in local and f"seed{seed}_sample_loss" not in local
    assert {"seeds_summary", "fig7_across_seeds"} <= local


def test_set_resources_of_a_rule_reach_every_seeds_copy(monkeypatch):
    """A profile's set-resources (profiles/slurm: GPU partition for pretrain_lab) names the bare
    rule; each seed's rule gets it, unless it is set for that seed's rule itself."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with SnakemakeApi(OutputSettings(quiet=True)) as api:
        workflow = parsed_workflow(
            api, {"seeds": [1, 2]},
            overwrite_resources={"pretrain_lab": {"mem_mb": 12345, "slurm_partition": "gpu"},
                                 "seed2_pretrain_lab": {"mem_mb": 999}},
            overwrite_threads={"sample_loss": 3},
        )  # fmt: skip
        rules = {rule.name: rule for rule in workflow.rules}
        assert rules["seed1_pretrain_lab"].resources["mem_mb"] == 12345
        assert rules["seed1_pretrain_lab"].resources["slurm_partition"] == "gpu"
        assert rules["seed2_pretrain_lab"].resources["mem_mb"] == 999
        assert rules["seed1_sample_loss"].resources["_cores"] == rules["seed2_sample_loss"].resources["_cores"] == 3
        assert rules["seed1_evaluate"].resources["mem_mb"] != 12345


def test_a_new_seed_leaves_the_other_seeds_rules_as_they_were(monkeypatch):
    """Params, inputs and outputs of seed 1's and seed 2's rules do not depend on the seed list,
    so Snakemake's params and input triggers leave their finished jobs alone (the touched dry run
    of tests/test_reruns.py checks the rest)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, two = parsed_rules({"seeds": [1, 2]})
    _, three = parsed_rules({"seeds": [1, 2, 3]})
    kept = {name for name in two if name.startswith(("seed1_", "seed2_"))}
    assert kept and all(two[name] == three[name] for name in kept)
    assert set(three) - set(two) == {name for name in three if name.startswith("seed3_")}
    assert two["seeds_summary"] != three["seeds_summary"]



def test_the_workflow_scripts_write_every_output(seed_points, tmp_path):
    """workflow_scripts/seeds_summary.py and fig7_across_seeds.py, from the command line."""
    inputs = {"correlations": [], "claims": [], "grokking": [], "points": []}
    for seed, points in seed_points.items():
        tables = {
            "correlations": stats.correlation_table(points, "memorized", 200, 0.95, seed),
            "claims": claim_rows({"a": H if seed == 1 else F, "b": U}),
            "grokking": T.grokking_table(), "points": points,
        }  # fmt: skip
        for name, table in tables.items():
            path = tmp_path / f"seed{seed}" / f"{name}.parquet"
            path.parent.mkdir(exist_ok=True)
            table.to_parquet(path, index=False)
            inputs[name].append(str(path))
    listed = {name: f"[{','.join(paths)}]" for name, paths in inputs.items()}
    out = tmp_path / "seeds"
    outputs = {"table1_per_seed": out / "per_seed.parquet", "table1_across": out / "across.parquet",
               "claims_across": out / "claims.parquet", "grokking_across": out / "grokking.parquet",
               "summary": out / "summary.md"}  # fmt: skip
    result = script(
        "seeds_summary", "seeds=[1,2]", "run=fixture",
        *(f"{name}={listed[name]}" for name in ("correlations", "claims", "grokking")),
        *(f"{name}={path}" for name, path in outputs.items()),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(pd.read_parquet(outputs["table1_across"]).columns) == S.ACROSS_COLUMNS
    claims = pd.read_parquet(outputs["claims_across"]).set_index("claim_id")
    assert claims.loc["a", "verdict"] == "holds in 1 of 2 seeds"
    assert len(pd.read_parquet(outputs["grokking_across"])) == len(T.DOMAINS)
    assert "holds in 1 of 2 seeds" in outputs["summary"].read_text()
    figure = script(
        "fig7_across_seeds", "seeds=[1,2]", f"points={listed['points']}",
        f"correlations={listed['correlations']}", f"png={out / 'f.png'}", f"pdf={out / 'f.pdf'}",
    )  # fmt: skip
    assert figure.returncode == 0, figure.stderr[-2000:]
    assert (out / "f.png").stat().st_size > 0 and (out / "f.pdf").stat().st_size > 0
