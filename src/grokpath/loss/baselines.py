"""The loss baselines the pathway metrics are compared against (paper Table 1, Fig. 7).

Tidy rows (step, domain, group, layer="all", metric, value, se, n), the layout of the pathway
metric tables, for:
- training_loss: mean per-sample training loss of the group (group = t* step, "memorized", "all"),
- training_loss_ma: its trailing moving average over `window` checkpoints,
- validation_loss: mean loss of the domain's validation samples (group "all").
Domain "all" pools the domains.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["step", "domain", "group", "layer", "metric", "value", "se", "n"]


def _summary(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    grouped = frame.groupby(keys, sort=True)["loss"]
    out = grouped.agg(value="mean", sd="std", n="count").reset_index()
    out["se"] = (out["sd"] / np.sqrt(out["n"])).fillna(0.0)
    return out.drop(columns="sd")


def _with_group_labels(train: pd.DataFrame, memorization: pd.DataFrame) -> pd.DataFrame:
    """Each training row repeated under every group it belongs to: its t*, memorized, all."""
    labels = memorization[["domain", "sample_id", "t_star", "memorized"]]
    merged = train.merge(labels, on=["domain", "sample_id"], how="left")
    memorized = merged[merged["memorized"].fillna(False).astype(bool)]
    parts = [
        merged.assign(group="all"),
        memorized.assign(group="memorized"),
        memorized.assign(group=memorized["t_star"].astype("int64").astype(str)),
    ]
    return pd.concat(parts, ignore_index=True)


def _pooled(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.assign(domain="all")], ignore_index=True)


def loss_baselines(losses: pd.DataFrame, memorization: pd.DataFrame, window: int) -> pd.DataFrame:
    train = _pooled(_with_group_labels(losses[losses["split"] == "train"], memorization))
    training = _summary(train, ["step", "domain", "group"]).assign(metric="training_loss")
    moving = training.sort_values("step").copy()
    moving["value"] = moving.groupby(["domain", "group"])["value"].transform(
        lambda s: s.rolling(window, min_periods=1).mean()
    )
    moving = moving.assign(metric="training_loss_ma", se=np.nan)
    valid = _summary(_pooled(losses[losses["split"] == "valid"]), ["step", "domain"])
    valid = valid.assign(group="all", metric="validation_loss")
    table = pd.concat([training, moving, valid], ignore_index=True).assign(layer="all")
    table["n"] = table["n"].astype("int64")
    return table[COLUMNS].sort_values(["metric", "domain", "group", "step"]).reset_index(drop=True)
