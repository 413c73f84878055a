"""Metric 1, Metric 2 and baselines from the pathway tables of every step (rule `pathway_metrics`).

Inputs: pathways (extract_pathways' chunk folders, or extraction parquets, one per step),
memorization (parquet), routers (the same folders, or `step{S}.routers.parquet` files written by
extraction: the router matrices W_l that Metric 2 embeds experts with).
Outputs: edit_distance, consistency, routing (tidy parquets; columns in grokpath.routing.metrics).
Params: threshold (0.7), max_pairs, seed, final_step (default: the largest step given; the
reference of router saturation), consistency_min_cos (0.05: Metric 2's floor on a sample's largest
adjacent-layer cosine).
"""

import re
from pathlib import Path

from grokpath.entry import as_list, log, run
from grokpath.errors import GrokpathError
from grokpath.routing.metrics import (
    DEFAULT_CONSISTENCY_MIN_COS,
    DEFAULT_MAX_PAIRS,
    baselines_table,
    consistency_table,
    edit_distance_table,
)
from grokpath.routing.pathways import PAPER_THRESHOLD, load_pathway_tables
from grokpath.routing.routers import read_router_weights
from grokpath.tableio import read_parquet, step_tables, write_parquet

MEMORIZATION_COLUMNS = ["domain", "sample_id", "t_star", "memorized"]


def step_of_router_table(path) -> int:
    """`.../step{S}.routers.parquet` -> S."""
    match = re.search(r"step(\d+)", Path(path).name)
    if not match:
        raise GrokpathError(f"{path}: router table name must contain step<S>")
    return int(match.group(1))


def log_exclusions(consistency, min_cos: float) -> None:
    """Per step: how many samples the consistency floor left out (domain "all", group "all")."""
    sizes = consistency.query(
        "domain == 'all' and group == 'all' and metric == 'consistency_mean_cos'"
    ).set_index("step")["n"]
    kept = consistency.query(
        "domain == 'all' and group == 'all' and metric == 'consistency_norm_mean_cos'"
    ).set_index("step")["n"]
    for step, size in sizes.items():
        left_out = size - int(kept.get(step, 0))
        if left_out:
            log.info("step %d: consistency leaves out %d of %d samples (largest adjacent cosine "
                     "< %.3g)", step, left_out, size, min_cos)


def main(args: dict) -> None:
    workers = max(1, int(args.get("threads") or 1))
    threshold = float(args.get("threshold", PAPER_THRESHOLD))
    max_pairs = int(args.get("max_pairs", DEFAULT_MAX_PAIRS))
    seed = int(args.get("seed", 0))
    min_cos = float(args.get("consistency_min_cos", DEFAULT_CONSISTENCY_MIN_COS))
    memorization = read_parquet(args["memorization"], MEMORIZATION_COLUMNS)
    tables = load_pathway_tables(as_list(args["pathways"]))
    steps = [t.step for t in tables]
    if len(set(steps)) != len(steps):
        raise GrokpathError(f"pathways: two tables for the same step ({steps})")

    final_step = int(args.get("final_step") or steps[-1])
    final = [t for t in tables if t.step == final_step]
    if not final:
        raise GrokpathError(f"final_step {final_step}: no pathway table for it among {steps}")

    router_paths = step_tables(as_list(args["routers"]), ".routers.parquet")
    if len(router_paths) != len(tables):
        raise GrokpathError(f"{len(router_paths)} router tables for {len(tables)} pathway tables")
    # Rules pass both lists in step order; sorted again here for command-line use.
    router_paths = [p for _, p in sorted(zip(map(step_of_router_table, router_paths), router_paths))]
    router_weights, top_k = {}, None
    for table, path in zip(tables, router_paths):
        routers = read_router_weights(path)
        if list(routers.layers) != table.layers.tolist():
            raise GrokpathError(
                f"{path}: router layers {routers.layers} differ from the pathway table's "
                f"{table.layers.tolist()}"
            )
        router_weights[table.step] = routers.weights
        if table.step == final_step:
            top_k = routers.top_k

    log.info(
        "edit distance over %d steps (threshold %.2f, max_pairs %d)",
        len(tables),
        threshold,
        max_pairs,
    )
    write_parquet(
        edit_distance_table(tables, memorization, threshold, max_pairs, seed, workers),
        args["edit_distance"],
    )
    consistency = consistency_table(tables, router_weights, memorization, min_cos)
    log_exclusions(consistency, min_cos)
    write_parquet(consistency, args["consistency"])
    write_parquet(baselines_table(tables, final[0], top_k, memorization), args["routing"])


run(main, globals())
