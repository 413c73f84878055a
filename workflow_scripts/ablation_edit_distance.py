"""Rule ablation_edit_distance: group edit distances under an ablation's memorization groups.

Inputs: pathways (extract_pathways' chunk folders, or extraction parquets, one per step),
memorization (ablation samples parquet).
Output: edit_distance (tidy parquet, layer "all", edit_distance_char).
Params: threshold, max_pairs, seed.
"""

from grokpath.analysis.ablation import group_edit_distance_table
from grokpath.entry import as_list, run
from grokpath.routing.pathways import load_pathway_tables
from grokpath.tableio import read_parquet, write_parquet

MEMORIZATION_COLUMNS = ["domain", "sample_id", "t_star", "memorized"]


def main(args: dict) -> None:
    tables = load_pathway_tables(as_list(args["pathways"]))
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
