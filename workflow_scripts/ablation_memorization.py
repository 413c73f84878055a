"""Rule ablation_memorization: memorization redrawn with eps x factor and another delta.

Inputs: losses (loss parquets of every step), eps_report (memorization/eps.json of the main run).
Output: memorization (samples parquet plus eps_factor). Params: eps_factor, delta.
"""

import json

import pandas as pd

from grokpath.analysis.ablation import ablation_memorization, memorized_fractions
from grokpath.entry import log, run
from grokpath.loss.sample_loss import LOSS_COLUMNS
from grokpath.tableio import read_parquet, write_parquet


def main(args: dict) -> None:
    paths = args["losses"]
    paths = [paths] if isinstance(paths, str) else list(paths)
    losses = pd.concat([read_parquet(p, LOSS_COLUMNS) for p in paths], ignore_index=True)
    with open(args["eps_report"]) as fh:
        eps_report = json.load(fh)
    samples = ablation_memorization(
        losses, eps_report, float(args["eps_factor"]), float(args["delta"])
    )
    for row in memorized_fractions(samples).itertuples():
        log.info("%s: %.1f%% memorized", row.domain, 100 * row.memorized_fraction)
    write_parquet(samples, args["memorization"])


run(main, globals())
