# Checkpoints: pretrained in the lab, or downloaded revision by revision from the hub. Local
# checkpoints (checkpoints.source local) have no rule: the jobs read the folders of your own run
# where they lie (rules/common.smk `checkpoint_dir`), and nothing writes or deletes them.

if is_lab("checkpoints"):

    rule pretrain_lab:
        input:
            corpus=corpus_files(),
            manifest=f"{RUN}/corpus/manifest.json",
            tokenizer=f"{RUN}/tokenizer",
        output:
            checkpoints=[directory(checkpoint_dir(step)) for step in STEPS],
            train_log=f"{RUN}/train/log.parquet",
            probe=f"{RUN}/train/probe.parquet",
            monitor=f"{RUN}/train/monitor.parquet",
        log:
            f"{RUN}/logs/pretrain_lab.log",
        benchmark:
            f"{RUN}/benchmarks/pretrain_lab.tsv"
        priority: 10
        conda:
            TORCH_ENV
        # One thread: torch's CPU reductions split differently with two, and the lab's training
        # then diverges from step ~100 on, so a run's numbers would depend on --cores (and
        # would not match the one-thread sweep tool, grokpath.lab.sweep).
        threads: 1
        resources:
            gpu=gpus(),
            mem_mb=4000,
            runtime=60,
        params:
            domains=DOMAINS,
            model=config.get("model"),
            pretrain=config.get("pretrain"),
            steps=STEPS,
            seed=config["seed"],
            device=config["device"],
            # the pathway monitor's own settings (pretrain.monitor_pathways): tied to `pathways:`
            # they would retrain the lab whenever an analysis setting such as the threshold changes
            monitor_settings=config["pretrain"]["monitor_pathways"],
        script:
            "../workflow_scripts/pretrain_lab.py"

elif config["checkpoints"]["source"] == "hub":

    rule download_checkpoint:
        output:
            checkpoint=(
                temp(directory(f"{RUN}/checkpoints/step{{step}}"))
                if config["checkpoints"]["hub"].get("temp", False)
                else directory(f"{RUN}/checkpoints/step{{step}}")
            ),
            provenance=f"{RUN}/checkpoints/step{{step}}.provenance.json",
        log:
            f"{RUN}/logs/download_checkpoint/step{{step}}.log",
        benchmark:
            f"{RUN}/benchmarks/download_checkpoint/step{{step}}.tsv"
        conda:
            TORCH_ENV
        resources:
            mem_mb=4000,
            runtime=120,
        params:
            repo_id=config["checkpoints"]["hub"]["repo_id"],
            step=step_of,
            revision=hub_revision,
            allow_patterns=config["checkpoints"]["hub"].get("allow_patterns"),
        script:
            "../workflow_scripts/download_checkpoint.py"
