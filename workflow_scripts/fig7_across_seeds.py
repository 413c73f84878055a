"""Rule fig7_across_seeds: paper Fig 7 over every seed (grokpath.figures.seeds).

Inputs (one file per seed, in the order of params.seeds): points
(analysis/correlation_points.parquet), correlations (analysis/table1_correlations.parquet).
Outputs: png, pdf. Params: seeds.
"""

from grokpath.analysis.seeds import read_by_seed
from grokpath.analysis.stats import CORRELATION_COLUMNS, POINT_COLUMNS
from grokpath.entry import as_list, run
from grokpath.figures.seeds import fig7_across_seeds


def by_seed(args: dict, key: str, columns: list[str]) -> dict:
    return read_by_seed(as_list(args["seeds"]), as_list(args[key]), columns, key)


def main(args: dict) -> None:
    fig7_across_seeds(
        by_seed(args, "points", POINT_COLUMNS),
        by_seed(args, "correlations", CORRELATION_COLUMNS),
        args["png"],
        args["pdf"],
    )


run(main, globals())
