"""Small fixed tables in the analysis inputs' exact layouts, for the stats, figure and summary tests.

Two domains, ten checkpoints, three memorization groups and four MoE layers. Distances rise
until a group's t* and fall after it; accuracy rises from step 500 on; the pretraining probe is
dense (every 50 steps) and training accuracy passes 0.9 between 300 and 400, so both domains grok
(t_fit 400, t_mem50 300, t_gen50 700); everything is drawn from one seeded generator, so every
test sees the same numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokpath.analysis import verdict as lab_verdict

STEPS = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
DOMAINS = ["code", "math"]
GROUPS = [200, 300, 500]
LAYERS = ["0", "1", "2", "3"]
METRIC_COLUMNS = ["step", "domain", "group", "layer", "metric", "value", "se", "n"]


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def accuracy_curve(step: int) -> float:
    """Flat near 0.1, then a rise from step 500 on: a sustained rise the window rule finds."""
    return 0.1 + 0.7 / (1 + np.exp(-(step - 650) / 80))


def _distance(step: int, t_star: int, layer_scale: float) -> float:
    peak = 10.0 * layer_scale
    return peak * (step / t_star if step <= t_star else np.exp(-(step - t_star) / 400))


def metric_rows(metric: str, value_of, domains, groups, layers=("all",)) -> list[dict]:
    rows = []
    for step in STEPS:
        for domain in domains:
            for group in groups:
                for layer in layers:
                    rows.append({"step": step, "domain": domain, "group": group, "layer": layer,
                                 "metric": metric, "value": value_of(step, domain, group, layer),
                                 "se": 0.1, "n": 20})  # fmt: skip
    return rows


def _group_t_star(group: str) -> int:
    return int(group) if group.isdigit() else 400


def edit_distance_table() -> pd.DataFrame:
    rng = _rng()
    groups = ["all", "memorized"] + [str(g) for g in GROUPS]

    def value(step, domain, group, layer):
        scale = 1.0 if layer == "all" else 0.3 + 0.1 * int(layer)
        return _distance(step, _group_t_star(group), scale) + rng.normal(0, 0.05)

    rows = metric_rows("edit_distance_char", value, DOMAINS + ["all"], groups, ["all"] + LAYERS)
    cross = metric_rows("edit_distance_char_cross", lambda *a: 12 + rng.normal(0, 0.3),
                        ["code|math"], ["all"])  # fmt: skip
    return pd.DataFrame(rows + cross, columns=METRIC_COLUMNS)


def consistency_table() -> pd.DataFrame:
    rng = _rng()
    groups = ["all", "memorized"] + [str(g) for g in GROUPS]

    def value(step, domain, group, layer):
        t_star = _group_t_star(group)
        return 0.5 + 0.4 * max(0, step - t_star) / 1000 + rng.normal(0, 0.01)

    return pd.DataFrame(metric_rows("consistency_norm_mean_cos", value, DOMAINS + ["all"], groups),
                        columns=METRIC_COLUMNS)  # fmt: skip


def routing_table() -> pd.DataFrame:
    rng = _rng()
    groups = ["all", "memorized"] + [str(g) for g in GROUPS]
    value = lambda step, domain, group, layer: 1.5 + rng.normal(0, 0.2)  # noqa: E731
    return pd.DataFrame(
        metric_rows("routing_entropy", value, DOMAINS + ["all"], groups, ["all"] + LAYERS),
        columns=METRIC_COLUMNS,
    )


def loss_baselines_table() -> pd.DataFrame:
    rng = _rng()
    groups = ["all", "memorized"] + [str(g) for g in GROUPS]

    def train(step, domain, group, layer):
        return 0.3 + 2.0 * np.exp(-step / 150) + rng.normal(0, 0.005)

    rows = metric_rows("training_loss", train, DOMAINS + ["all"], groups)
    rows += metric_rows("training_loss_ma", train, DOMAINS + ["all"], groups)
    rows += metric_rows("validation_loss", lambda *a: 1.0 + rng.normal(0, 0.05),
                        DOMAINS + ["all"], ["all"])  # fmt: skip
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def items_table(n_items: int = 20) -> pd.DataFrame:
    """Item correctness that follows accuracy_curve: item k is right once the curve passes k/n."""
    rows = []
    for domain in DOMAINS:
        for step in STEPS:
            level = accuracy_curve(step)
            for doc_id in range(n_items):
                rows.append({"task": f"lab_{domain}", "domain": domain, "doc_id": doc_id,
                             "step": step, "correct": (doc_id + 0.5) / n_items < level,
                             "score": 0.0, "prediction": ""})  # fmt: skip
    return pd.DataFrame(rows)


def contamination_table(n_items: int = 20) -> pd.DataFrame:
    rows = [
        {"domain": d, "doc_id": i, "task": f"lab_{d}", "min_k_pp": float(i), "n_tokens": 5,
         "contaminated": i == n_items - 1}
        for d in DOMAINS for i in range(n_items)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def generalization_table(items: pd.DataFrame) -> pd.DataFrame:
    first_right = items[items["correct"]].groupby(["task", "domain", "doc_id"])["step"].min()
    table = (
        items[["task", "domain", "doc_id"]]
        .drop_duplicates()
        .merge(first_right.rename("gen_step").reset_index(), how="left")
    )
    table["gen_step"] = table["gen_step"].astype("Int64")
    table["generalized"] = table["gen_step"].notna()
    return table


def groups_table() -> pd.DataFrame:
    rows = [{"domain": d, "t_star": g, "n_samples": 10 + g // 100} for d in DOMAINS for g in GROUPS]
    return pd.DataFrame(rows)


def matches_table() -> pd.DataFrame:
    rows = [
        {"domain": "math", "train_group": 200, "test_group": 600, "similarity": 0.5, "delay": 400,
         "n_train": 12, "n_test": 3},
        {"domain": "math", "train_group": 300, "test_group": 700, "similarity": 0.4, "delay": 400,
         "n_train": 13, "n_test": 4},
        {"domain": "math", "train_group": 500, "test_group": 1000, "similarity": 0.3,
         "delay": 500, "n_train": 15, "n_test": 2},
    ]  # fmt: skip
    return pd.DataFrame(rows)


def memorization_samples() -> pd.DataFrame:
    rows = []
    for domain in DOMAINS:
        for i in range(30):
            t_star = GROUPS[i % 3] if i < 18 else None
            rows.append({"domain": domain, "sample_id": f"{domain}-{i}", "t_star": t_star,
                         "memorized": t_star is not None, "eps": 0.5, "delta": 0.05,
                         "final_loss": 0.1})  # fmt: skip
    table = pd.DataFrame(rows)
    table["t_star"] = table["t_star"].astype("Int64")
    return table


def toy_table() -> pd.DataFrame:
    rng = _rng()
    distance = rng.uniform(0, 6, size=30)
    return pd.DataFrame({
        "seed": np.arange(30), "routing_specificity": distance / 6, "edit_distance": distance,
        "effective_dim": 40 + 2 * distance + rng.normal(0, 0.5, size=30),
        "mean_path_length": 2.0, "n_samples": 200, "n_experts": 16, "dim": 100,
    })  # fmt: skip


def training_curve(step: int) -> float:
    """Probe training accuracy: fits (>= 0.9) from step 330 on, i.e. at checkpoint 400."""
    return 1 - 0.9 * np.exp(-step / 150)


def probe_table() -> pd.DataFrame:
    """The dense probe: every 50 steps, `checkpoint` true at the saved steps."""
    rows = [
        {"step": step, "domain": domain, "split": split, "n": 50,
         "accuracy": training_curve(step) if split == "train" else accuracy_curve(step),
         "checkpoint": step in STEPS}
        for step in range(50, STEPS[-1] + 1, 50) for domain in DOMAINS for split in ("train", "test")
    ]  # fmt: skip
    return pd.DataFrame(rows)


def aggregate_table() -> pd.DataFrame:
    """lm-eval's aggregate at the checkpoints: exact match (both domains are generate-until)."""
    rows = [
        {"task": f"lab_{d}", "domain": d, "step": s, "metric": "exact_match", "filter": "strip",
         "value": accuracy_curve(s), "stderr": 0.05, "n": 20, "version": "1.0"}
        for d in DOMAINS for s in STEPS
    ]  # fmt: skip
    return pd.DataFrame(rows)


def grokking_table() -> pd.DataFrame:
    return lab_verdict.grokking_table(aggregate_table(), probe_table(), memorization_samples(),
                                      {d: 0.0 for d in DOMAINS})  # fmt: skip
