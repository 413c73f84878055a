"""A stored known-good snapshot of the numbers the paper comparison rests on.

The package functions (not Snakemake: a workflow subprocess would import the installed package,
not the copy a mutation tool mutates) run on the small stored input tables in
tests/data/snapshot/ (written once by its make_inputs.py) from per-sample losses, per-item
correctness, router weights and Min-K%++ scores to: memorization and generalization counts,
Fig 1's cumulative generalized fraction, the checkpoint windows, Table 1 (Pearson, Spearman,
R^2, LOO R^2 per window, domain and predictor), Fig 7's pooled within-domain R^2, the pooled
nested F-tests, the matched groups and every summary verdict. They are compared with
tests/data/snapshot/expected.json: floats within a relative 1e-6, everything else exactly.

A difference means a number the paper comparison reports has changed. If the change is meant
(a fixed bug, a changed rule), regenerate the file on purpose and commit it with a message that
says why the numbers moved:

    python tests/test_snapshot.py --update
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grokpath.analysis import stats
from grokpath.analysis import summary as S
from grokpath.analysis.trends import cumulative_generalized_fraction, resolve_groups
from grokpath.evaluation.contamination import flag_top_fraction
from grokpath.evaluation.generalization import drop_contaminated, generalization_steps
from grokpath.evaluation.matching import match_groups
from grokpath.loss.baselines import loss_baselines
from grokpath.loss.memorization import memorization_table
from grokpath.routing.metrics import baselines_table, consistency_table, edit_distance_table
from grokpath.routing.pathways import PathwayTable

DATA = Path(__file__).parent / "data" / "snapshot"
EXPECTED = DATA / "expected.json"
REL, ABS = 1e-6, 1e-9

# the settings of config/config.yaml where they matter, small where they only cost time
EPS = {"math": 0.5, "code": "auto", "trivia": "auto"}  # fixed eps for one domain, auto for two
DELTA, EPS_STEP, TARGET = 0.05, 0.1, 0.2
LOSS_MA_WINDOW, THRESHOLD, MIN_COS, TOP_K = 3, 0.7, 0.05, 2
MIN_MEAN_ACC, MAX_MISSES, CONTAMINATED_FRACTION = 0.8, 1, 0.1
RISE_FRACTION, MIN_GAIN, MIN_CHECKPOINTS = 0.1, 0.05, 4
GROUP, N_RESAMPLES, CONFIDENCE, SEED = "memorized", 99, 0.95, 0
THRESHOLDS = S.Thresholds(strong_r=0.8, weak_r=0.5, alpha=0.05)
TABLE1_COLUMNS = ["n_checkpoints", "pearson_r", "spearman_rho", "r2", "loo_r2"]


def read(name: str) -> pd.DataFrame:
    return pd.read_parquet(DATA / f"{name}.parquet")


def pathway_tables() -> tuple[list[PathwayTable], dict[int, np.ndarray]]:
    """The stored router weights as one PathwayTable per step, and each step's routers."""
    weights = read("routing_weights")
    columns = [c for c in weights.columns if c.startswith("w")]
    layers = sorted({int(c[1:].split("_")[0]) for c in columns})
    n_experts = len(columns) // len(layers)
    tables = []
    for step, part in weights.groupby("step", sort=True):
        w = part[columns].to_numpy(np.float32).reshape(len(part), len(layers), n_experts)
        tables.append(PathwayTable(
            step=int(step), domains=part["domain"].to_numpy(object),
            sample_ids=part["sample_id"].to_numpy(object), layers=np.array(layers),
            n_tokens=np.full(len(part), 6), weights=w,
            entropy=-(w * np.log(w)).sum(axis=-1).astype(np.float32),
        ))  # fmt: skip
    routers = read("routers")
    hidden = [c for c in routers.columns if c.startswith("h")]
    matrices = {
        int(step): part.sort_values(["layer", "expert"])[hidden].to_numpy(float)
        .reshape(len(layers), n_experts, len(hidden))
        for step, part in routers.groupby("step")
    }  # fmt: skip
    return tables, matrices


def memorize(losses: pd.DataFrame, eps: dict, delta: float = DELTA):
    return memorization_table(losses, eps, delta, EPS_STEP, TARGET)


def compute() -> dict:
    """Every snapshot number, from the stored inputs through the package functions."""
    losses, items = read("losses"), read("items")
    samples, groups, eps_report = memorize(losses, EPS)
    scores = read("contamination_scores")
    contamination = scores.assign(contaminated=flag_top_fraction(scores, CONTAMINATED_FRACTION))
    generalization = generalization_steps(items, MIN_MEAN_ACC, MAX_MISSES)

    tables, routers = pathway_tables()
    metrics = {
        "edit_distance": edit_distance_table(tables, samples, THRESHOLD, seed=SEED),
        "consistency": consistency_table(tables, routers, samples, MIN_COS),
        "routing": baselines_table(tables, tables[-1], TOP_K, samples),
        "loss_baselines": loss_baselines(losses, samples, LOSS_MA_WINDOW),
    }
    accuracy = stats.accuracy_with_window(
        stats.domain_accuracy(items, contamination), RISE_FRACTION, MIN_GAIN, MIN_CHECKPOINTS
    )
    points = stats.predictor_points(metrics, accuracy, GROUP)
    correlations = stats.correlation_table(points, GROUP, N_RESAMPLES, CONFIDENCE, SEED)
    nested = stats.nested_f_tests(points, "training_loss")

    texts = read("texts")
    train_texts = {d: dict(zip(p["key"], p["text"])) for d, p in
                   texts[texts["split"] == "train"].groupby("domain")}  # fmt: skip
    test_texts = {d: dict(zip(p["key"].astype(int), p["text"])) for d, p in
                  texts[texts["split"] == "test"].groupby("domain")}  # fmt: skip
    matches = match_groups(samples, drop_contaminated(generalization, contamination),
                           train_texts, test_texts)  # fmt: skip

    fixed_eps = {d: report["eps"] for d, report in eps_report.items()}
    fig5 = resolve_groups("auto", groups, 1)
    inputs = S.SummaryInputs(
        run="snapshot", correlations=correlations, nested=nested, accuracy=accuracy,
        groups=groups, generalization=generalization, contamination=contamination,
        matches=matches, toy=read("toy"), fig4_groups=resolve_groups("auto", groups, 2),
        fig5_group=fig5[0] if fig5 else None, fig6_groups=resolve_groups("auto", groups, 2),
        fig2_domain="math", cross_domains=("math", "code"), delta=DELTA,
        threshold_ablation={
            str(t): edit_distance_table(tables, samples, t, seed=SEED, cross_domain=False)
            for t in (0.5, 0.8)
        },
        eps_ablation={
            str(f): edit_distance_table(
                tables, memorize(losses, {d: e * f for d, e in fixed_eps.items()})[0],
                THRESHOLD, seed=SEED, cross_domain=False)
            for f in (0.75, 1.0)
        },
        delta_ablation={
            str(d): edit_distance_table(tables, memorize(losses, fixed_eps, d)[0], THRESHOLD,
                                        seed=SEED, cross_domain=False)
            for d in (0.03, 0.05)
        },
        **metrics,
    )  # fmt: skip
    claims = S.build_claims(inputs, THRESHOLDS)
    return {
        "memorization": memorization_numbers(samples, groups, eps_report),
        "generalization": generalization_numbers(generalization, contamination),
        "fig1_fraction": fig1_numbers(generalization, contamination, accuracy),
        "windows": window_numbers(accuracy),
        "table1": table1_numbers(correlations),
        "fig7_r2": fig7_numbers(correlations),
        "nested_pooled": nested_numbers(nested),
        "matches": [[r.domain, int(r.train_group), int(r.test_group)]
                    for r in matches.itertuples()],  # fmt: skip
        "verdicts": {f"{c.figure}: {c.claim}": c.verdict for c in claims},
    }


def memorization_numbers(samples, groups, eps_report) -> dict:
    out = {}
    for domain, part in samples.groupby("domain"):
        sizes = groups[groups["domain"] == domain]
        out[domain] = {
            "eps": float(eps_report[domain]["eps"]),
            "fraction": float(eps_report[domain]["fraction"]),
            "in_band": bool(eps_report[domain]["in_band"]),
            "n_samples": len(part),
            "n_memorized": int(part["memorized"].sum()),
            "n_unconfirmed": int((~part["memorized"] & part["t_star"].notna()).sum()),
            "groups": {str(t): int(n) for t, n in zip(sizes["t_star"], sizes["n_samples"])},
        }
    return out


def generalization_numbers(generalization, contamination) -> dict:
    clean = drop_contaminated(generalization, contamination)
    out = {}
    for domain, part in clean.groupby("domain"):
        steps = part.loc[part["generalized"], "gen_step"].astype(int)
        out[domain] = {
            "n_items": len(part),
            "n_contaminated": int(contamination.loc[contamination["domain"] == domain,
                                                    "contaminated"].sum()),  # fmt: skip
            "n_generalized": int(part["generalized"].sum()),
            "gen_steps": {str(s): int(n) for s, n in steps.value_counts().sort_index().items()},
        }
    return out


def fig1_numbers(generalization, contamination, accuracy) -> dict:
    """Fig 1's line: the cumulative generalized fraction of each domain's clean items."""
    curve = cumulative_generalized_fraction(drop_contaminated(generalization, contamination),
                                            sorted(accuracy["step"].unique()))  # fmt: skip
    return {d: [float(f) for f in part["fraction"]] for d, part in curve.groupby("domain")}


def window_numbers(accuracy) -> dict:
    def steps(part, column):
        return [int(s) for s in part.loc[part[column].astype(bool), "step"]]

    return {
        domain: {
            "accuracy": [float(a) for a in part["accuracy"]],
            "paper_steps": steps(part, "in_paper_window"),
            "rise_steps": steps(part, "in_rise_window"),
            "rise_found": bool(part["rise_found"].all()),
            "late_rise": bool(part["late_rise"].any()),
        }
        for domain, part in accuracy.groupby("domain")
    }


def table1_numbers(correlations) -> dict:
    return {
        f"{r['window']}|{r['domain']}|{r['predictor']}": {c: _number(r[c]) for c in TABLE1_COLUMNS}
        for _, r in correlations.iterrows()
    }


def fig7_numbers(correlations) -> dict:
    pooled = stats.primary_rows(correlations)
    pooled = pooled[pooled["domain"] == stats.POOLED].set_index("predictor")
    return {p: {"r2": _number(pooled.loc[p, "r2"]), "domains": pooled.loc[p, "domains"],
                "left_out": pooled.loc[p, "left_out"]} for p in stats.FIG7_PREDICTORS}  # fmt: skip


def nested_numbers(nested) -> dict:
    pooled = nested[nested["domain"] == stats.POOLED]
    return {r.metric: {"r2_loss": _number(r.r2_loss), "r2_loss_metric": _number(r.r2_loss_metric),
                       "p": _number(r.p), "n_checkpoints": int(r.n_checkpoints)}
            for r in pooled.itertuples()}  # fmt: skip


def _number(value):
    """JSON-safe: ints stay ints, NaN becomes None."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else value


def differences(expected, actual, path: str = "") -> list[str]:
    """Every place where `actual` differs from `expected` (floats within REL / ABS)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = [f"{path}/{k}: missing" for k in expected if k not in actual]
        found += [f"{path}/{k}: not in expected.json" for k in actual if k not in expected]
        for key in expected.keys() & actual.keys():
            found += differences(expected[key], actual[key], f"{path}/{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (e, a) in enumerate(zip(expected, actual))
                for d in differences(e, a, f"{path}[{i}]")]  # fmt: skip
    numeric = isinstance(actual, (int, float)) and not isinstance(actual, bool)
    if isinstance(expected, float) and numeric:
        if actual == pytest.approx(expected, rel=REL, abs=ABS):
            return []
    elif expected == actual and type(expected) is type(actual):
        return []
    return [f"{path}: expected {expected!r}, got {actual!r}"]


@pytest.fixture(scope="module")
def snapshot() -> tuple[dict, dict]:
    if not EXPECTED.exists():
        pytest.fail(f"{EXPECTED} is missing: python tests/test_snapshot.py --update")
    return json.loads(EXPECTED.read_text()), json.loads(json.dumps(compute()))


SECTIONS = ["memorization", "generalization", "fig1_fraction", "windows", "table1", "fig7_r2",
            "nested_pooled", "matches", "verdicts"]  # fmt: skip


@pytest.mark.parametrize("section", SECTIONS)
def test_snapshot_matches_the_stored_numbers(snapshot, section):
    expected, actual = snapshot
    found = differences(expected[section], actual[section], section)
    assert not found, "\n".join(found[:40]) + (
        "\nIf this change is meant: python tests/test_snapshot.py --update, and say why in the "
        "commit message"
    )


def test_the_snapshot_exercises_what_it_guards(snapshot):
    """The stored inputs keep their point: rise and no-rise domains, a pooled row that leaves a
    domain out, unconfirmed last-step t*, matched groups and verdicts of every kind."""
    expected, _ = snapshot
    assert {d: w["rise_found"] for d, w in expected["windows"].items()} == {
        "code": True, "math": True, "trivia": False}  # fmt: skip
    assert "trivia: no accuracy rise" in expected["fig7_r2"]["edit_distance"]["left_out"]
    assert sum(m["n_unconfirmed"] for m in expected["memorization"].values()) > 0
    assert expected["matches"]
    assert set(expected["verdicts"].values()) == {S.HOLDS, S.FAILS, S.UNMEASURABLE}


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: python {sys.argv[0]} --update   (rewrites {EXPECTED.name}; commit it "
                 "with a message that says why the numbers changed)")  # fmt: skip
    EXPECTED.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {EXPECTED}")
