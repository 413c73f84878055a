"""Rule collect_evaluation: one per-item and one aggregate table over every evaluation chunk."""

import pandas as pd

from grokpath.entry import as_list, run
from grokpath.tableio import read_parquet, write_parquet

ITEM_COLUMNS = ["task", "domain", "doc_id", "step", "correct", "score", "prediction"]
AGGREGATE_COLUMNS = ["task", "domain", "step", "metric", "value", "stderr", "version"]


def concat(paths, columns) -> pd.DataFrame:
    return pd.concat([read_parquet(p, columns) for p in as_list(paths)], ignore_index=True)


def main(args: dict) -> None:
    items = concat(args["chunk_items"], ITEM_COLUMNS).sort_values(["task", "step", "doc_id"])
    aggregate = concat(args["chunk_aggregates"], AGGREGATE_COLUMNS)
    aggregate = aggregate.sort_values(["task", "step", "metric"])
    write_parquet(items.reset_index(drop=True), args["per_item"])
    write_parquet(aggregate.reset_index(drop=True), args["aggregate"])


run(main, globals())
