"""Rule ablation_edit_distance: group edit distances under an ablation's memorization groups.

Inputs: pathways (extraction parquets, one per step), memorization (ablation samples parquet).
Output: edit_distance (tidy parquet, layer "all", edit_distance_char).
Params: threshold, max_pairs, seed.
"""

from pathlib import Path

from grokpath.analysis.ablation import group_edit_distance_table
from grokpath.entry import run
from grokpath.routing.pathways import load_pathway_table
from grokpath.tableio import read_parquet, write_parquet

MEMORIZATION_COLUMNS = ["domain", "sample_id", "t_star", "memorized"]


def main(args: dict) -> None:
    paths = args["pathways"]
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    tables = sorted((load_pathway_table(p) for p in paths), key=lambda t: t.step)
    table = group_edit_distance_table(
        tables,
        read_parquet(args["memorization"], MEMORIZATION_COLUMNS),
        float(args["threshold"]),
        int(args["max_pairs"]),
        int(args["seed"]),
        max(1, int(args.get("threads") or 1)),
    )
    write_parquet(table, args["edit_distance"])


run(main, globals())
