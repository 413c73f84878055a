"""Rule ablation_memorization: memorization redrawn with eps x factor and another delta.

Inputs: losses (sample_loss's chunk folders, or loss parquets of every step), eps_report
(memorization/eps.json of the main run).
Output: memorization (samples parquet plus eps_factor). Params: eps_factor, delta.
"""

import json

from grokpath.analysis.ablation import ablation_memorization, memorized_fractions
from grokpath.entry import as_list, log, run
from grokpath.loss.sample_loss import read_loss_tables
from grokpath.tableio import write_parquet


def main(args: dict) -> None:
    losses = read_loss_tables(as_list(args["losses"]))
    with open(args["eps_report"]) as fh:
        eps_report = json.load(fh)
    samples = ablation_memorization(
        losses, eps_report, float(args["eps_factor"]), float(args["delta"])
    )
    for row in memorized_fractions(samples).itertuples():
        log.info("%s: %.1f%% memorized", row.domain, 100 * row.memorized_fraction)
    write_parquet(samples, args["memorization"])


run(main, globals())
