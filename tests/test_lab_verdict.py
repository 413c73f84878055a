"""The "does the lab grok?" verdict on hand-made accuracy curves."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from grokpath.analysis.verdict import (
    TABLE_COLUMNS,
    chance_levels,
    gain,
    grokking_table,
    grokking_verdict,
    half_memorized_step,
    staggered,
)

STEPS = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
FITS_AT_300 = [0.1, 0.5, 0.95, 1, 1, 1, 1, 1, 1, 1]
LATE_RISE = [0, 0, 0, 0.05, 0.1, 0.5, 0.8, 0.9, 0.9, 0.9]  # half of 0.9 first reached at 600


def curve(domain: str, values, steps=STEPS) -> pd.DataFrame:
    return pd.DataFrame({"domain": domain, "step": steps, "accuracy": values})


def memorized(domain: str, t_stars) -> pd.DataFrame:
    return pd.DataFrame({"domain": domain, "t_star": pd.array(t_stars, dtype="Int64")})


def verdict(train, test, t_stars=(200, 300, 300, 400), chance=0.0) -> pd.Series:
    table = grokking_verdict(curve("math", train), curve("math", test), memorized("math", t_stars),
                             {"math": chance})  # fmt: skip
    assert len(table) == 1
    return table.iloc[0]


def test_gain_corrects_for_chance():
    assert gain(0.25, 0.25) == 0
    assert gain(1.0, 0.25) == 1
    assert gain(0.625, 0.25) == pytest.approx(0.5)
    assert gain(0.4, 0.0) == 0.4


def test_half_memorized_step_is_the_median_t_star_rounded_down():
    assert half_memorized_step(pd.Series([30, 10, 20, 40], dtype="Int64")) == 20
    assert half_memorized_step(pd.Series([5, None, 7], dtype="Int64")) == 5
    assert half_memorized_step(pd.Series([], dtype="Int64")) is None


def test_a_clear_grok():
    row = verdict(FITS_AT_300, LATE_RISE)
    assert (row["t_fit"], row["t_mem50"], row["t_gen50"], row["gap"]) == (300, 300, 600, 300)
    assert row["gain_at_fit"] == 0 and row["final_gain"] == pytest.approx(0.9)
    assert row["fits"] and row["generalizes"] and row["late"] and row["after_memorization"]
    assert row["groks"] and row["reason"] == "" and row["n_memorized"] == 4


def test_fitting_and_generalizing_together_is_not_grokking():
    together = [0.1, 0.5, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    row = verdict(FITS_AT_300, together)
    assert row["generalizes"] and not row["late"] and not row["groks"]
    # every failed condition is named: half of 0.9 is reached at 200, before t_mem50 = 300
    assert row["reason"] == "gain at fit 0.70 > half the final 0.90; generalizes before memorization"


def test_never_generalizing():
    row = verdict(FITS_AT_300, [0.0] * 10)
    assert not row["generalizes"] and not row["groks"] and pd.isna(row["t_gen50"])
    assert row["reason"] == "final gain 0.00 < 0.5"


def test_generalizing_then_forgetting_judges_the_final_gain():
    forget = [0, 0, 0, 0.3, 0.9, 0.9, 0.6, 0.4, 0.3, 0.2]
    row = verdict(FITS_AT_300, forget)
    assert row["final_gain"] == pytest.approx(0.2) and not row["groks"]
    assert row["reason"] == "final gain 0.20 < 0.5"


def test_never_fitting():
    row = verdict([0.1, 0.5, 0.8, 0.85, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8], LATE_RISE)
    assert not row["fits"] and pd.isna(row["t_fit"]) and pd.isna(row["gain_at_fit"])
    assert not row["late"] and not row["groks"] and row["reason"] == "never fits"


def test_generalizing_before_memorization():
    row = verdict(FITS_AT_300, LATE_RISE, t_stars=[700, 800, 900])
    assert row["gap"] == 600 - 800 and not row["after_memorization"] and not row["groks"]
    assert row["reason"] == "generalizes before memorization"


def test_no_memorized_samples():
    row = verdict(FITS_AT_300, LATE_RISE, t_stars=[None, None])
    assert pd.isna(row["t_mem50"]) and pd.isna(row["gap"]) and row["n_memorized"] == 0
    assert not row["after_memorization"] and not row["groks"]
    assert row["reason"] == "no memorized samples"


def test_multiple_choice_at_chance_has_no_gain():
    # 4-way choice: 0.25 is guessing, 0.925 is a gain of 0.9
    row = verdict(FITS_AT_300, [0.25] * 5 + [0.625, 0.85, 0.925, 0.925, 0.925], chance=0.25)
    assert row["gain_at_fit"] == 0 and row["final_gain"] == pytest.approx(0.9)
    assert row["t_gen50"] == 600 and row["groks"]
    at_chance = verdict(FITS_AT_300, [0.25] * 10, chance=0.25)
    assert at_chance["final_gain"] == 0 and not at_chance["groks"]


def test_only_checkpoint_steps_decide_t_fit():
    # a dense probe fits at step 250 between checkpoints: t_fit is still the next checkpoint
    dense = pd.concat([curve("math", FITS_AT_300), curve("math", [0.95], [250])])
    table = grokking_verdict(dense, curve("math", LATE_RISE), memorized("math", [300]),
                             {"math": 0.0})  # fmt: skip
    assert table.iloc[0]["t_fit"] == 300


def verdicts_with_gen50(t_gen50s: dict[str, int | None], groks: dict[str, bool]) -> pd.DataFrame:
    return pd.DataFrame({"domain": list(t_gen50s), "t_gen50": pd.array(list(t_gen50s.values()), dtype="Int64"),
                         "groks": [groks[d] for d in t_gen50s]})  # fmt: skip


@pytest.mark.parametrize(
    "t_gen50s, groks, expected",
    [
        ({"a": 300, "b": 700}, {"a": True, "b": True}, (True, 400.0)),
        ({"a": 300, "b": 400}, {"a": True, "b": True}, (False, 100.0)),
        ({"a": 300, "b": 550}, {"a": True, "b": True}, (True, 250.0)),  # exactly a quarter
        ({"a": 300, "b": 900}, {"a": True, "b": False}, (False, None)),  # one grokking domain
        ({"a": 300, "b": 400, "c": 900}, {"a": True, "b": True, "c": False}, (False, 100.0)),
    ],
)
def test_staggered(t_gen50s, groks, expected):
    assert staggered(verdicts_with_gen50(t_gen50s, groks), 1000) == expected


def test_grokking_table_from_the_workflow_layouts(tmp_path):
    manifest = {"domains": {"math": {"output_type": "generate_until"},
                            "commonsense": {"output_type": "multiple_choice"}}}  # fmt: skip
    (tmp_path / "commonsense").mkdir()
    rows = [{"doc_id": i, "choices": ["a", "b", "c", "d"]} for i in range(3)]
    (tmp_path / "commonsense" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    chance = chance_levels(manifest, tmp_path)
    assert chance == {"math": 0.0, "commonsense": 0.25}

    def aggregate(domain, metric, filter_name, values):
        return pd.DataFrame({"task": f"lab_{domain}", "domain": domain, "step": STEPS,
                             "metric": metric, "filter": filter_name, "value": values,
                             "stderr": 0.01, "n": 100, "version": "1.0"})  # fmt: skip

    mc_rise = [0.25] * 5 + [0.625, 0.85, 0.925, 0.925, 0.925]
    table = pd.concat([aggregate("math", "exact_match", "strip", LATE_RISE),
                       aggregate("commonsense", "acc", "none", mc_rise)])  # fmt: skip
    probe = pd.concat([
        curve(d, FITS_AT_300).assign(split=split, n=50, checkpoint=True)
        for d in chance for split in ("train", "test")
    ] + [curve("math", [0.99], [150]).assign(split="train", n=50, checkpoint=False)])  # fmt: skip
    samples = pd.DataFrame({"domain": ["math", "math", "commonsense", "commonsense"],
                            "sample_id": list("abcd"), "memorized": [True, False, True, True],
                            "t_star": pd.array([300, 900, 200, 300], dtype="Int64")})  # fmt: skip
    result = grokking_table(table, probe, samples, chance).set_index("domain")
    assert list(result.reset_index().columns) == TABLE_COLUMNS
    assert result.loc["math", "t_fit"] == 300 and result.loc["math", "n_memorized"] == 1
    assert result.loc["commonsense", "chance"] == 0.25
    assert result["groks"].all() and (result["t_gen50"] == 600).all()
    assert (result["last_step"] == 1000).all()
    assert not result["staggered"].any() and (result["t_gen50_spread"] == 0).all()
