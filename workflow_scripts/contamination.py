"""Min-K%++ contamination score of every test item under one (the final) checkpoint.

Inputs:  checkpoint     checkpoint dir
         corpus_dir     results/{run}/corpus (reads {domain}/test.jsonl)
Params:  tasks          {domain: lm-eval task name}; its domains are the ones scored
         min_k (0.2), fraction (0.1: share flagged per domain), batch_size (16),
         max_length (null), device ("auto"), dtype ("auto": bf16 on CUDA, fp32 on CPU);
         optional: tokenizer (a folder or hub name instead of the checkpoint's own),
         device_map (auto: the model over every visible GPU)
Outputs: contamination  Parquet (grokpath.evaluation.contamination.CONTAMINATION_COLUMNS)
"""

from pathlib import Path

from grokpath.entry import corpus_dir, run


def main(args):
    import torch

    from grokpath.evaluation import contamination
    from grokpath.tableio import read_jsonl, write_parquet

    torch.set_num_threads(int(args.get("threads") or 1))
    tasks = dict(args["tasks"])
    corpus = Path(corpus_dir(args))
    test_items = {domain: read_jsonl(corpus / domain / "test.jsonl") for domain in tasks}
    table = contamination.contamination_table(
        str(args["checkpoint"]),
        test_items,
        tasks,
        k=float(args.get("min_k", 0.2)),
        fraction=float(args.get("fraction", 0.1)),
        batch_size=int(args.get("batch_size", 16)),
        max_length=args.get("max_length"),
        device=args.get("device", "auto"),
        dtype=args.get("dtype") or "auto",
        tokenizer=args.get("tokenizer") or None,
        device_map=args.get("device_map") or None,
    )
    write_parquet(table, args["contamination"])


run(main, globals())
