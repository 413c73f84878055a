"""Rule sample_loss: mean next-token NLL of every training and validation sample at a chunk of
checkpoints, in one process (`loss.checkpoints_per_job`: at lab scale start-up dominates).

Inputs: checkpoints (HF dirs, one or a list), manifest (corpus/manifest.json). Params: domains,
batch_size, max_length, append_eos, span, device; optional: steps (one per checkpoint, in order;
default: each checkpoint's grokpath_checkpoint.json; local checkpoints pass them), tokenizer (a
folder or hub name instead of each checkpoint's own), device_map (auto: the model over every
visible GPU). Output: loss, a folder with `step{S}.parquet` per checkpoint, written whole or not
at all.
"""

from grokpath.entry import as_list, corpus_dir, run
from grokpath.loss.sample_loss import sample_loss_table
from grokpath.sources.checkpoints import checkpoint_steps
from grokpath.tableio import atomic_dir, step_table_name, write_parquet


def main(args: dict) -> None:
    import torch

    torch.set_num_threads(max(1, int(args.get("threads", 1))))
    checkpoints = as_list(args["checkpoints"])
    steps = checkpoint_steps(checkpoints, args.get("steps"))
    with atomic_dir(args["loss"]) as folder:
        for step, checkpoint in zip(steps, checkpoints):
            table = sample_loss_table(
                checkpoint_dir=checkpoint,
                corpus_dir=corpus_dir(args),
                domains=list(args["domains"]),
                step=step,
                batch_size=args["batch_size"],
                max_length=args["max_length"],
                append_eos=args["append_eos"],
                span=args["span"],
                device=args.get("device", "auto"),
                tokenizer=args.get("tokenizer") or None,
                device_map=args.get("device_map") or None,
            )
            write_parquet(table, folder / step_table_name(step))


run(main, globals())
