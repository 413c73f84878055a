"""Extract per-sample router pathways at a chunk of checkpoints, in one process (rule
`extract_pathways`; `pathways.checkpoints_per_job`: at lab scale start-up dominates).

Inputs: checkpoints (HF dirs, one or a list), manifest (corpus/manifest.json; the corpus is its
folder). No memorization input on purpose: see grokpath.routing.extract.select_samples.
Output: pathways, a folder written whole or not at all, with per checkpoint `step{S}.parquet`
(columns in grokpath.routing.extract) and `step{S}.routers.parquet` (the router matrices; columns
in grokpath.routing.routers.ROUTER_COLUMNS). Params: steps (one per checkpoint, in order;
default: each checkpoint's grokpath_checkpoint.json), domains (names), max_per_domain (null = no
cap), seed, batch_size, max_length, device (auto|cpu|cuda...), dtype (auto|float32|bfloat16|float16),
weights (scores|topk, default scores; families without router scores over all experts write topk,
and the table says so); optional: tokenizer (a folder or hub name instead of each checkpoint's
own; local checkpoints), device_map (auto: accelerate spreads the model over every visible GPU).
"""

from pathlib import Path

import torch

from grokpath.entry import as_list, corpus_dir, log, run
from grokpath.errors import GrokpathError
from grokpath.routing.extract import default_dtype, extract_pathways, select_samples
from grokpath.routing.routers import WEIGHT_KINDS, find_routers, write_router_table
from grokpath.sources.checkpoints import checkpoint_steps
from grokpath.tableio import atomic_dir, read_jsonl, step_table_name
from grokpath.tokens import resolve_device

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str | None):
    if name in (None, "", "auto"):
        return None
    if name not in DTYPES:
        raise GrokpathError(f"dtype {name!r}: expected auto or one of {', '.join(DTYPES)}")
    return DTYPES[name]


def load_train_rows(corpus_dir: Path, domains) -> dict[str, list[dict]]:
    rows = {}
    for domain in domains:
        path = corpus_dir / domain / "train.jsonl"
        if not path.exists():
            raise GrokpathError(f"{path}: training corpus of domain {domain!r} not found")
        rows[domain] = read_jsonl(path)
        if not rows[domain]:
            raise GrokpathError(f"{path}: empty sample set (expected one JSON row per training sample)")
    return rows


def main(args: dict) -> None:
    weights = str(args.get("weights") or "scores")
    if weights not in WEIGHT_KINDS:
        raise GrokpathError(f"weights {weights!r}: expected one of {', '.join(WEIGHT_KINDS)}")
    torch.set_num_threads(max(1, int(args.get("threads") or 1)))
    train_rows = load_train_rows(Path(corpus_dir(args)), sorted(args["domains"]))
    cap = args.get("max_per_domain")
    cap = None if cap in (None, "") else int(cap)
    samples = select_samples(train_rows, cap, int(args.get("seed", 0)))
    del train_rows  # the texts we need live in `samples` now

    checkpoints = [Path(path) for path in as_list(args["checkpoints"])]
    steps = checkpoint_steps(checkpoints, args.get("steps"))
    device = resolve_device(args.get("device") or "auto")
    dtype = resolve_dtype(args.get("dtype")) or default_dtype(device)
    with atomic_dir(args["pathways"]) as folder:
        for step, checkpoint in zip(steps, checkpoints):
            extract_checkpoint(args, checkpoint, step, samples, folder, device, dtype, weights)


def extract_checkpoint(args: dict, checkpoint: Path, step: int, samples, folder: Path, device, dtype,
                       weights: str) -> None:  # fmt: skip
    from grokpath.sources.checkpoints import load_model, load_tokenizer

    log.info("loading %s (step %d) on %s", checkpoint, step, device)
    tokenizer = load_tokenizer(checkpoint, args.get("tokenizer") or None)
    # load straight in the compute dtype: a 7B model in fp32 first would need twice the memory
    model = load_model(checkpoint, device, dtype, args.get("device_map") or None)
    if args.get("device_map"):
        devices = sorted({str(p.device) for p in model.parameters()})
        log.info("device_map %s: the model lies on %s", args["device_map"], ", ".join(devices))
    write_router_table(find_routers(model), folder / step_table_name(step, ".routers.parquet"))
    extract_pathways(
        model,
        tokenizer,
        samples,
        folder / step_table_name(step),
        step=step,
        batch_size=int(args.get("batch_size", 16)),
        max_length=int(args.get("max_length", 512)),
        device=device,
        dtype=dtype,
        weights=weights,
    )


run(main, globals())
