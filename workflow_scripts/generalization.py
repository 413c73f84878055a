"""Generalization step of every test item from the per-item evaluation table.

Inputs:  items          per-item Parquet of the evaluate step
         contamination  optional: contamination Parquet; flagged items are dropped first
Params:  min_mean_acc (0.8), max_misses (1)
Outputs: generalization Parquet (grokpath.evaluation.generalization.GENERALIZATION_COLUMNS)
"""

import logging

from grokpath.entry import run

log = logging.getLogger("grokpath.evaluation.generalization")


def main(args):
    from grokpath.evaluation import generalization
    from grokpath.tableio import read_parquet, write_parquet

    items = read_parquet(args["per_item"], ["task", "domain", "doc_id", "step", "correct"])
    if args.get("contamination"):
        contamination = read_parquet(args["contamination"], ["domain", "doc_id", "contaminated"])
        before = items[["domain", "doc_id"]].drop_duplicates().shape[0]
        items = generalization.drop_contaminated(items, contamination)
        after = items[["domain", "doc_id"]].drop_duplicates().shape[0]
        log.info("dropped %d contaminated test items of %d", before - after, before)
    table = generalization.generalization_steps(
        items,
        min_mean_acc=float(args.get("min_mean_acc", 0.8)),
        max_misses=int(args.get("max_misses", 1)),
    )
    write_parquet(table, args["generalization"])


run(main, globals())
