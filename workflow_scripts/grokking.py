"""Rule grokking: does the lab grok? One verdict per domain (grokpath.analysis.verdict).

Inputs:  aggregate  eval/aggregate.parquet (lm-eval test accuracy at the checkpoints)
         probe      train/probe.parquet (training accuracy; rows at other steps are ignored)
         samples    memorization/samples.parquet (t* of the memorized samples)
         manifest   corpus/manifest.json (output type per domain; test.jsonl beside it gives
                    the number of choices)
Outputs: grokking   analysis/grokking.parquet (grokpath.analysis.verdict.TABLE_COLUMNS)
"""

import json

from grokpath.analysis import verdict as lab_verdict
from grokpath.entry import corpus_dir, log, run
from grokpath.evaluation.harness import AGGREGATE_COLUMNS
from grokpath.tableio import read_parquet, write_parquet


def main(args: dict) -> None:
    with open(args["manifest"]) as fh:
        chance = lab_verdict.chance_levels(json.load(fh), corpus_dir(args))
    table = lab_verdict.grokking_table(
        read_parquet(args["aggregate"], AGGREGATE_COLUMNS),
        read_parquet(args["probe"], lab_verdict.PROBE_COLUMNS),
        read_parquet(args["samples"], lab_verdict.SAMPLE_COLUMNS),
        chance,
    )
    for row in table.itertuples():
        log.info("%s: %s", row.domain, "groks" if row.groks else f"does not grok ({row.reason})")
    write_parquet(table, args["grokking"])


run(main, globals())
