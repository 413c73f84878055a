"""Evaluate checkpoints (optionally with LoRA adapters) on lm-eval tasks, in one process.

Inputs:  checkpoints   checkpoint dirs (one or a list); the step comes from each dir's
                       grokpath_checkpoint.json unless `steps` names them
         adapters      optional: adapter dirs, one per checkpoint, in the same order
         manifest      results/{run}/corpus/manifest.json: the lab YAMLs' data_files are
                       relative to results/{run}/, two levels above it
Params:  task_dir      folder of our task YAMLs (config/lm_eval_tasks/lab or .../paper)
         tasks         {domain: lm-eval task name}
         max_length, dtype ("float32"), batch_size (8), device ("auto"), limit (null),
         confirm_unsafe (false: tasks that execute model-written code are refused);
         optional: steps (one per checkpoint, in order; local checkpoints), tokenizer (a
         folder or hub name instead of each checkpoint's own), device_map (auto: lm-eval's
         parallelize over every visible GPU)
Outputs: per_item      per-item Parquet (grokpath.evaluation.harness.ITEM_COLUMNS)
         aggregate     aggregate Parquet (grokpath.evaluation.harness.AGGREGATE_COLUMNS)
         tasks_dir     the per-run copy of the task YAMLs that was evaluated
"""

from pathlib import Path

from grokpath.entry import as_list, run
from grokpath.errors import GrokpathError


def main(args):
    import torch

    from grokpath.evaluation import harness as evaluation
    from grokpath.sources.checkpoints import checkpoint_steps
    from grokpath.tableio import write_parquet

    torch.set_num_threads(int(args.get("threads") or 1))
    checkpoint_dirs = as_list(args["checkpoints"])
    adapters = as_list(args.get("adapters")) or [None] * len(checkpoint_dirs)
    if len(adapters) != len(checkpoint_dirs):
        raise GrokpathError(
            f"{len(adapters)} adapters for {len(checkpoint_dirs)} checkpoints: "
            "give one per checkpoint"
        )
    # Templates name corpus files relative to results/{run}/, two levels above the manifest.
    run_dir = Path(args["manifest"]).resolve().parents[1]
    task_dir = evaluation.write_run_tasks(args["task_dir"], run_dir, args["tasks_dir"])
    steps = checkpoint_steps(checkpoint_dirs, args.get("steps"))
    checkpoints = [
        (step, str(path), str(adapter) if adapter else None)
        for step, path, adapter in zip(steps, checkpoint_dirs, adapters)
    ]
    items, aggregate = evaluation.evaluate_checkpoints(
        sorted(checkpoints, key=lambda checkpoint: checkpoint[0]),
        dict(args["tasks"]),
        task_dir,
        max_length=args.get("max_length"),
        dtype=args.get("dtype", "float32"),
        batch_size=args.get("batch_size", 8),
        device=args.get("device", "auto"),
        limit=args.get("limit"),
        confirm_unsafe=bool(args.get("confirm_unsafe", False)),
        tokenizer=args.get("tokenizer") or None,
        device_map=args.get("device_map") or None,
    )
    write_parquet(items, args["per_item"])
    write_parquet(aggregate, args["aggregate"])


run(main, globals())
