"""Rule sample_loss: mean next-token NLL of every training and validation sample at one step.

Inputs: checkpoint (HF dir), manifest (corpus/manifest.json). Params: domains, batch_size,
max_length, append_eos, span, device; optional: step (default: the checkpoint's
grokpath_checkpoint.json; local checkpoints pass it), tokenizer (a folder or hub name instead of
the checkpoint's own), device_map (auto: the model over every visible GPU). Output: loss.
"""

from grokpath.entry import corpus_dir, run
from grokpath.loss.sample_loss import sample_loss_table
from grokpath.sources.checkpoints import checkpoint_step
from grokpath.tableio import write_parquet


def main(args: dict) -> None:
    import torch

    torch.set_num_threads(max(1, int(args.get("threads", 1))))
    table = sample_loss_table(
        checkpoint_dir=args["checkpoint"],
        corpus_dir=corpus_dir(args),
        domains=list(args["domains"]),
        step=int(args["step"]) if args.get("step") not in (None, "") else checkpoint_step(args["checkpoint"]),
        batch_size=args["batch_size"],
        max_length=args["max_length"],
        append_eos=args["append_eos"],
        span=args["span"],
        device=args.get("device", "auto"),
        tokenizer=args.get("tokenizer") or None,
        device_map=args.get("device_map") or None,
    )
    write_parquet(table, args["loss"])


run(main, globals())
