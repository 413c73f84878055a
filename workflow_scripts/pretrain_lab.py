"""Rule pretrain_lab: pretrain the tiny OLMoE on the lab corpus, saving every checkpoint step.

Outputs: checkpoints, train_log (train/log.parquet), probe (train/probe.parquet, the dense
accuracy probe) and monitor (train/monitor.parquet: the pathway monitor every
pretrain.monitor_every steps; params.monitor_settings are its pathway settings, from the config's
`pathways:` block).
"""

from transformers import AutoTokenizer

from grokpath.entry import corpus_dir, run
from grokpath.lab.pretrain import pretrain, write_logs


def main(args: dict) -> None:
    steps = list(args["steps"])
    checkpoints = args["checkpoints"]
    if isinstance(checkpoints, str):
        checkpoints = [checkpoints]
    if len(checkpoints) != len(steps):
        raise SystemExit(f"pretrain_lab: {len(checkpoints)} checkpoint dirs for {len(steps)} steps")
    tokenizer = AutoTokenizer.from_pretrained(args["tokenizer"])
    log_df, probe_df = pretrain(
        corpus_dir=corpus_dir(args),
        tokenizer=tokenizer,
        domains=list(args["domains"]),
        model_cfg=args["model"],
        train_cfg=args["pretrain"],
        save_steps=steps,
        checkpoint_dirs=dict(zip(steps, checkpoints)),
        seed=args["seed"],
        device=args.get("device", "auto"),
        threads=args.get("threads", 1),
        monitor_output=args["monitor"],
        monitor_settings=dict(args["monitor_settings"]),
    )
    write_logs(log_df, probe_df, args["train_log"], args["probe"])


run(main, globals())
