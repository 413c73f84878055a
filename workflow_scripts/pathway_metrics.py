"""Metric 1, Metric 2 and baselines from the pathway tables of every step (rule `pathway_metrics`).

Inputs: pathways (list of extraction parquets, one per step), memorization (parquet),
checkpoints (the checkpoints folder holding step{S}/ for every step, or a list of step dirs:
router matrices W_l for consistency are read from each step's safetensors).
Outputs: edit_distance, consistency, routing (tidy parquets; columns in grokpath.pathway_metrics).
Params: threshold (0.7), max_pairs, seed, final_step (default: the largest step given; the
reference of router saturation).
"""

import json
import re
from pathlib import Path

from grokpath.entry import log, run
from grokpath.errors import GrokpathError
from grokpath.pathway_metrics import (
    DEFAULT_MAX_PAIRS,
    baselines_table,
    consistency_table,
    edit_distance_table,
)
from grokpath.pathways import PAPER_THRESHOLD, load_pathway_table
from grokpath.routers import router_spec_from_checkpoint
from grokpath.tableio import read_parquet, write_parquet

MEMORIZATION_COLUMNS = ["domain", "sample_id", "t_star", "memorized"]


def as_list(value) -> list:
    return [value] if isinstance(value, (str, Path)) else list(value)


def step_of_checkpoint(path: Path) -> int | None:
    meta = path / "grokpath_checkpoint.json"
    if meta.exists():
        return int(json.loads(meta.read_text())["step"])
    match = re.fullmatch(r"step(\d+)", path.name)
    return int(match.group(1)) if match else None


def checkpoint_dirs_by_step(checkpoints) -> dict[int, Path]:
    """Accept the checkpoints folder, one step dir, or a list of step dirs."""
    found: dict[int, Path] = {}
    for entry in map(Path, as_list(checkpoints)):
        step = step_of_checkpoint(entry)
        candidates = (
            [entry] if step is not None else sorted(p for p in entry.iterdir() if p.is_dir())
        )
        for path in candidates:
            step = step_of_checkpoint(path)
            if step is not None:
                found[step] = path
    return found


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

    dirs = checkpoint_dirs_by_step(args["checkpoints"])
    missing = [s for s in steps if s not in dirs]
    if missing:
        raise GrokpathError(f"{args['checkpoints']}: no checkpoint for step(s) {missing}")
    router_weights, top_k = {}, None
    for table in tables:
        spec = router_spec_from_checkpoint(dirs[table.step])
        if list(spec.layers) != table.layers.tolist():
            raise GrokpathError(
                f"{dirs[table.step]}: router layers {spec.layers} differ from the pathway table's "
                f"{table.layers.tolist()}"
            )
        router_weights[table.step] = spec.stacked_weights().numpy()
        if table.step == final_step:
            top_k = spec.top_k

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
