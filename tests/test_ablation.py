"""eps/delta ablations: memorization redrawn from loss tables, distances as the main table's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grokpath.analysis.ablation import (
    ablation_memorization,
    group_edit_distance_table,
    memorized_fractions,
    scaled_eps,
)
from grokpath.errors import GrokpathError
from grokpath.routing.metrics import edit_distance_table
from grokpath.routing.pathways import PathwayTable

STEPS = [10, 20, 30, 40]


def loss_tables() -> pd.DataFrame:
    """Sample a settles at 0.9 from step 20, b at 1.4 from 30, c stays above 3."""
    curves = {"a": [2.0, 0.9, 0.9, 0.9], "b": [3.0, 2.0, 1.42, 1.4], "c": [5.0, 4.0, 3.5, 3.2]}
    rows = [
        {"domain": "math", "sample_id": s, "split": "train", "step": step, "loss": loss, "n_tokens": 4}
        for s, losses in curves.items() for step, loss in zip(STEPS, losses)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_scaled_eps_multiplies_each_domain():
    report = {"math": {"eps": 2.0, "chosen": "auto"}, "code": {"eps": 0.4, "chosen": "config"}}
    assert scaled_eps(report, 0.75) == {"math": 1.5, "code": pytest.approx(0.3)}
    with pytest.raises(GrokpathError, match="factor"):
        scaled_eps(report, 0)
    with pytest.raises(GrokpathError, match="eps.json"):
        scaled_eps({"math": 2.0}, 1.0)


@pytest.mark.parametrize(
    "factor, delta, expected",
    [
        (1.0, 0.05, {"a": 20, "b": 30}),  # eps 1.5: a from 20, b from 30 (|1.42 - 1.4| <= 0.05)
        (0.7, 0.05, {"a": 20}),  # eps 1.05: b never settles below it
        (1.0, 0.01, {"a": 20}),  # delta 0.01: b at 30 is 0.02 from its final loss, t* = 40 (last)
    ],
)
def test_ablation_memorization(factor, delta, expected):
    samples = ablation_memorization(loss_tables(), {"math": {"eps": 1.5}}, factor, delta)
    memorized = samples[samples["memorized"]]
    assert dict(zip(memorized["sample_id"], memorized["t_star"].astype(int))) == expected
    assert (samples["eps_factor"] == factor).all() and (samples["delta"] == delta).all()


def test_memorized_fractions():
    samples = ablation_memorization(loss_tables(), {"math": {"eps": 1.5}}, 1.0, 0.05)
    fractions = memorized_fractions(samples).set_index("domain")
    assert fractions.loc["math", "memorized_fraction"] == pytest.approx(2 / 3)
    assert fractions.loc["all", "n_memorized"] == 2


def pathway_table(step: int, seed: int, n: int = 10) -> PathwayTable:
    rng = np.random.default_rng(seed)
    return PathwayTable(
        step=step,
        domains=np.array(["math" if i % 2 else "code" for i in range(n)], dtype=object),
        sample_ids=np.array([f"s{i}" for i in range(n)], dtype=object),
        layers=np.array([0, 1, 2]),
        n_tokens=np.full(n, 5),
        weights=rng.dirichlet(np.ones(6) * 0.3, size=(n, 3)).astype(np.float32),
        entropy=rng.uniform(0, 1, size=(n, 3)).astype(np.float32),
    )


@pytest.mark.parametrize("max_pairs", [1000, 7])  # every pair, and sampled pairs
def test_group_distances_equal_the_main_tables_rows(max_pairs):
    tables = [pathway_table(100, 1), pathway_table(200, 2)]
    memorization = pd.DataFrame({
        "domain": ["math" if i % 2 else "code" for i in range(10)],
        "sample_id": [f"s{i}" for i in range(10)],
        "t_star": pd.array([100 if i < 4 else (200 if i < 8 else None) for i in range(10)], dtype="Int64"),
        "memorized": [i < 8 for i in range(10)],
    })  # fmt: skip
    ours = group_edit_distance_table(tables, memorization, 0.7, max_pairs, seed=3)
    main = edit_distance_table(tables, memorization, 0.7, max_pairs, seed=3, cross_domain=False)
    main = main[(main["metric"] == "edit_distance_char") & (main["layer"] == "all")]
    key = ["step", "domain", "group"]
    pd.testing.assert_frame_equal(
        ours.sort_values(key).reset_index(drop=True), main.sort_values(key).reset_index(drop=True)
    )
