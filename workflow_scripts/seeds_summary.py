"""Rule seeds_summary: results/{run}/seeds/, what holds across the run's seeds (grokpath.analysis.seeds).

Inputs (one file per seed, in the order of params.seeds): correlations
(analysis/table1_correlations.parquet), claims (analysis/claims.parquet) and grokking
(analysis/grokking.parquet; lab checkpoints only, absent at paper scale).
Outputs: table1_per_seed, table1_across, claims_across, grokking_across (Parquet; empty without
the lab verdict), summary (summary.md). Params: seeds, run.
"""

import pandas as pd

from grokpath.analysis.seeds import (
    GROKKING_ACROSS_COLUMNS,
    claims_across_seeds,
    grokking_across_seeds,
    read_by_seed,
    summary_markdown,
    table1_across_seeds,
    table1_per_seed,
)
from grokpath.analysis.stats import CORRELATION_COLUMNS
from grokpath.analysis.summary import CLAIM_COLUMNS, write_summary
from grokpath.analysis.verdict import TABLE_COLUMNS as GROKKING_COLUMNS
from grokpath.entry import as_list, run
from grokpath.tableio import write_parquet


def by_seed(args: dict, key: str, columns: list[str]) -> dict[int, pd.DataFrame]:
    return read_by_seed(as_list(args["seeds"]), as_list(args.get(key)), columns, key)


def main(args: dict) -> None:
    seeds = [int(s) for s in as_list(args["seeds"])]
    per_seed = table1_per_seed(by_seed(args, "correlations", CORRELATION_COLUMNS))
    across = table1_across_seeds(per_seed)
    claims = claims_across_seeds(by_seed(args, "claims", CLAIM_COLUMNS))
    grokking = (
        grokking_across_seeds(by_seed(args, "grokking", GROKKING_COLUMNS))
        if as_list(args.get("grokking"))
        else None
    )
    write_parquet(per_seed, args["table1_per_seed"])
    write_parquet(across, args["table1_across"])
    write_parquet(claims, args["claims_across"])
    empty = pd.DataFrame(columns=GROKKING_ACROSS_COLUMNS)
    write_parquet(grokking if grokking is not None else empty, args["grokking_across"])
    text = summary_markdown(str(args["run"]), seeds, across, claims, grokking)
    write_summary(text, args["summary"])


run(main, globals())
