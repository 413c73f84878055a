"""LoRA instruction tuning of one checkpoint; writes an adapter dir.

Inputs:  checkpoint    checkpoint dir
         instructions  JSONL file(s): lab corpus train rows (format "lab") or hub records,
                       alpaca-style instruction/input/output or MetaMathQA query/response
                       (format "alpaca")
Params:  format ("lab"), rank (32), alpha (64), dropout (0.1), lr (5e-5), batch_size (4),
         max_length (2048), epochs (3), target_modules (["q_proj","k_proj","v_proj"]),
         subsample (null | count | fraction), seed (0), device ("auto"), dtype ("auto": bf16 on
         CUDA, fp32 on CPU); optional: tokenizer (a folder or hub name instead of the
         checkpoint's own), device_map (auto: the model over every visible GPU)
Outputs: adapter       adapter dir (peft files + grokpath_adapter.json)
"""

from grokpath.entry import as_list, run
from grokpath.errors import GrokpathError


def instruction_rows(paths, row_format: str) -> list[dict]:
    from grokpath.evaluation import instruction_tuning as it
    from grokpath.tableio import read_jsonl

    records = [row for path in as_list(paths) for row in read_jsonl(path)]
    if row_format == "lab":
        return it.lab_instruction_rows(records)
    if row_format == "alpaca":
        return it.alpaca_rows(records)
    raise GrokpathError(f"instruction format {row_format!r}: expected 'lab' or 'alpaca'")


def main(args):
    import torch

    from grokpath.evaluation.instruction_tuning import instruction_tune

    torch.set_num_threads(int(args.get("threads") or 1))
    rows = instruction_rows(args["instructions"], args.get("format", "lab"))
    instruction_tune(
        str(args["checkpoint"]),
        rows,
        args["adapter"],
        rank=int(args.get("rank", 32)),
        alpha=int(args.get("alpha", 64)),
        dropout=float(args.get("dropout", 0.1)),
        lr=float(args.get("lr", 5e-5)),
        batch_size=int(args.get("batch_size", 4)),
        max_length=int(args.get("max_length", 2048)),
        epochs=int(args.get("epochs", 3)),
        target_modules=list(args.get("target_modules", ["q_proj", "k_proj", "v_proj"])),
        subsample=args.get("subsample"),
        seed=int(args.get("seed", 0)),
        device=args.get("device", "auto"),
        dtype=args.get("dtype") or "auto",
        tokenizer=args.get("tokenizer") or None,
        device_map=args.get("device_map") or None,
    )


run(main, globals())
