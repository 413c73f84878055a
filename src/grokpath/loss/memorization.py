"""The memorization step t* of each training sample (paper: "Memorization and grokking").

A sample is memorized from the earliest checkpoint t* such that at t* and every later checkpoint
the loss is <= eps and within delta of the sample's final loss. Every sample meets the delta part
at the last checkpoint trivially, so a t* at the last checkpoint is unconfirmed: such samples
keep their t_star but `memorized` is False (paper: memorized "before the last checkpoint").

Output columns (`memorization/samples.parquet`): domain, sample_id, t_star (Int64, null = the
loss never settled below eps), memorized (bool: t_star before the last checkpoint), eps, delta,
final_loss. `memorization/groups.parquet`: domain, t_star, n_samples (memorized groups).
`memorization/eps.json`, per domain: eps, fraction (memorized before the last checkpoint), chosen
(auto | config), band ([target, target + 0.05], the paper's 20-25 %) and in_band; auto adds
reached_target, target and, when out of the band, band_note.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokpath.errors import GrokpathError


def loss_matrix(losses: pd.DataFrame) -> pd.DataFrame:
    """Samples x steps, steps ascending; a sample missing at some step, or a NaN/inf loss (a
    diverged or broken checkpoint), is an input error."""
    bad = ~np.isfinite(losses["loss"].to_numpy(dtype=float))
    if bad.any():
        row = losses[bad].iloc[0]
        raise GrokpathError(
            f"loss tables: sample {row['sample_id']} ({row['domain']}) has a non-finite loss "
            f"({row['loss']}) at step {row['step']}"
        )
    matrix = losses.pivot_table(index=["domain", "sample_id"], columns="step", values="loss", aggfunc="first")
    matrix = matrix.sort_index(axis=1)
    if matrix.isna().any().any():
        domain, sample_id = matrix.index[matrix.isna().any(axis=1)][0]
        raise GrokpathError(f"loss tables: sample {sample_id} ({domain}) is missing at some checkpoint")
    return matrix


def memorization_steps(values: np.ndarray, steps: np.ndarray, eps: float, delta: float) -> np.ndarray:
    """t* per row of a (samples x steps) loss array; -1 where the rule never holds."""
    final = values[:, -1:]
    ok = (values <= eps) & (np.abs(values - final) <= delta)
    # holds_from[i, j]: the rule holds at checkpoint j and at every later one.
    holds_from = np.flip(np.logical_and.accumulate(np.flip(ok, axis=1), axis=1), axis=1)
    first = np.argmax(holds_from, axis=1)
    return np.where(holds_from.any(axis=1), steps[first], -1)


def memorized_fraction(values: np.ndarray, steps: np.ndarray, eps: float, delta: float) -> float:
    t_star = memorization_steps(values, steps, eps, delta)
    return float(np.mean((t_star >= 0) & (t_star < steps[-1])))


BAND_WIDTH = 0.05  # paper: eps is chosen so that 20-25 % of the training data is memorized


def band_report(fraction: float, target: float) -> dict:
    """Whether a memorized fraction lies in the paper's band [target, target + BAND_WIDTH]."""
    band = [target, round(target + BAND_WIDTH, 10)]
    return {"band": band, "in_band": bool(band[0] <= fraction <= band[1] + 1e-12)}


def choose_eps(values: np.ndarray, steps: np.ndarray, delta: float, eps_step: float, target: float) -> dict:
    """Smallest eps on the grid eps_step, 2*eps_step, ... reaching the target memorized fraction.

    The fraction can only grow with eps, so the scan stops at the first hit; if the target is out
    of reach, the smallest eps reaching the largest attainable fraction is returned and flagged.
    The report says whether that fraction lies in the band [target, target + 0.05]; since every
    smaller eps is below the target and every larger one at or above the chosen fraction, a miss
    means no eps on the grid lands in the band (`band_note` then says so).
    """
    if eps_step <= 0 or not 0 < target <= 1:
        raise GrokpathError(f"auto eps: eps_step {eps_step} must be > 0, target {target} in (0, 1]")
    chosen = _scan_eps(values, steps, delta, eps_step, target)
    report = {**chosen, **band_report(chosen["fraction"], target)}
    if not report["in_band"]:
        low, high = report["band"]
        report["band_note"] = (
            f"no eps on the grid (step {eps_step}) memorizes {low:.0%}-{high:.0%}: "
            f"eps {chosen['eps']} gives {chosen['fraction']:.1%}"
            + ("; a finer eps_step may land in the band" if chosen["reached_target"] else "")
        )
    return report


def _scan_eps(values: np.ndarray, steps: np.ndarray, delta: float, eps_step: float, target: float) -> dict:
    ceiling = float(np.max(values)) + eps_step
    best = None
    k = 1
    while k * eps_step <= ceiling + 1e-12:
        eps = round(k * eps_step, 10)
        fraction = memorized_fraction(values, steps, eps, delta)
        if fraction >= target:
            return {"eps": eps, "fraction": fraction, "reached_target": True}
        if best is None or fraction > best["fraction"]:
            best = {"eps": eps, "fraction": fraction, "reached_target": False}
        k += 1
    return best or {"eps": eps_step, "fraction": 0.0, "reached_target": False}


def memorization_table(losses: pd.DataFrame, eps_by_domain: dict, delta: float, eps_step: float, target: float):
    """Returns (samples table, groups table, eps report) for the training split."""
    train = losses[losses["split"] == "train"]
    if train.empty:
        raise GrokpathError("loss tables: no training samples (split == 'train') to find memorization in")
    frames, report = [], {}
    for domain, part in train.groupby("domain", sort=True):
        matrix = loss_matrix(part)
        steps = np.asarray(matrix.columns, dtype=np.int64)
        if len(steps) < 2:
            raise GrokpathError("loss tables: memorization needs at least two checkpoints")
        values = matrix.to_numpy(dtype=np.float64)
        setting = eps_by_domain.get(domain, "auto")
        if setting == "auto":
            report[domain] = {**choose_eps(values, steps, delta, eps_step, target), "chosen": "auto", "target": target}
        else:
            eps = float(setting)
            fraction = memorized_fraction(values, steps, eps, delta)
            report[domain] = {"eps": eps, "fraction": fraction, "chosen": "config",
                              **band_report(fraction, target)}
        eps = report[domain]["eps"]
        t_star = memorization_steps(values, steps, eps, delta)
        frames.append(pd.DataFrame({
            "domain": domain,
            "sample_id": matrix.index.get_level_values("sample_id"),
            "t_star": pd.array([int(t) if t >= 0 else pd.NA for t in t_star], dtype="Int64"),
            "memorized": (t_star >= 0) & (t_star < steps[-1]),
            "eps": eps,
            "delta": delta,
            "final_loss": values[:, -1],
        }))
    samples = pd.concat(frames, ignore_index=True)
    groups = (
        samples[samples["memorized"]].groupby(["domain", "t_star"]).size().rename("n_samples").reset_index()
    )
    groups["t_star"] = groups["t_star"].astype("int64")
    return samples, groups, report
