"""Metric 1, Metric 2 and baselines from the pathway tables of every step (rule `pathway_metrics`).

Inputs: pathways (list of extraction parquets, one per step), memorization (parquet),
routers (list of `step{S}.routers.parquet` written by extraction: the router matrices W_l
that Metric 2 embeds experts with).
Outputs: edit_distance, consistency, routing (tidy parquets; columns in grokpath.pathway_metrics).
Params: threshold (0.7), max_pairs, seed, final_step (default: the largest step given; the
reference of router saturation).
"""

import re
from pathlib import Path

from grokpath.entry import as_list, log, run
from grokpath.errors import GrokpathError
from grokpath.pathway_metrics import (
    DEFAULT_MAX_PAIRS,
    baselines_table,
    consistency_table,
    edit_distance_table,
)
from grokpath.pathways import PAPER_THRESHOLD, load_pathway_table
from grokpath.routers import read_router_weights
from grokpath.tableio import read_parquet, write_parquet

MEMORIZATION_COLUMNS = ["domain", "sample_id", "t_star", "memorized"]


def step_of_router_table(path) -> int:
    """`.../step{S}.routers.parquet` -> S."""
    match = re.search(r"step(\d+)", Path(path).name)
    if not match:
        raise GrokpathError(f"{path}: router table name must contain step<S>")
    return int(match.group(1))


def main(args: dict) -> None:
    workers = max(1, int(args.get("threads") or 1))
    threshold = float(args.get("threshold", PAPER_THRESHOLD))
    max_pairs = int(args.get("max_pairs", DEFAULT_MAX_PAIRS))
    seed = int(args.get("seed", 0))
    memorization = read_parquet(args["memorization"], MEMORIZATION_COLUMNS)
    tables = sorted(
        (load_pathway_table(p) for p in as_list(args["pathways"])), key=lambda t: t.step
    )
    steps = [t.step for t in tables]
    if len(set(steps)) != len(steps):
        raise GrokpathError(f"pathways: two tables for the same step ({steps})")

    final_step = int(args.get("final_step") or steps[-1])
    final = [t for t in tables if t.step == final_step]
    if not final:
        raise GrokpathError(f"final_step {final_step}: no pathway table for it among {steps}")

    router_paths = as_list(args["routers"])
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
    write_parquet(consistency_table(tables, router_weights, memorization), args["consistency"])
    write_parquet(baselines_table(tables, final[0], top_k, memorization), args["routing"])


run(main, globals())
