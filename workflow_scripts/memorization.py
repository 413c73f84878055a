"""Rule memorization: t* of every training sample from the per-checkpoint loss tables (`losses`:
sample_loss's chunk folders, or loss parquets, one per step)."""

import logging

from grokpath.entry import as_list, run
from grokpath.loss.memorization import memorization_table
from grokpath.loss.sample_loss import read_loss_tables
from grokpath.tableio import write_json, write_parquet

log = logging.getLogger("grokpath.loss.memorization")


def main(args: dict) -> None:
    losses = read_loss_tables(as_list(args["losses"]))
    samples, groups, report = memorization_table(
        losses, args["eps"], args["delta"], args["eps_step"], args["target_fraction"]
    )
    for domain, entry in report.items():
        log.info("%s: eps %.2f (%s), %.1f%% memorized before the last checkpoint",
                 domain, entry["eps"], entry["chosen"], 100 * entry["fraction"])
        if entry["chosen"] == "auto" and not entry["in_band"]:
            log.warning("%s: %s", domain, entry["band_note"])
    write_parquet(samples, args["samples"])
    write_parquet(groups, args["groups"])
    write_json(report, args["eps_report"])


run(main, globals())
