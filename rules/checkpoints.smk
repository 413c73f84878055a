# Checkpoints: pretrained in the lab, or downloaded revision by revision from the hub.

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
        log:
            f"{RUN}/logs/pretrain_lab.log",
        benchmark:
            f"{RUN}/benchmarks/pretrain_lab.tsv"
        conda:
            "../envs/torch.yaml"
        threads: 2
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
        script:
            "../workflow_scripts/pretrain_lab.py"

else:

    rule download_checkpoint:
        output:
            checkpoint=(
                temp(directory(f"{RUN}/checkpoints/step{{step}}"))
                if config["checkpoints"]["hub"].get("temp", False)
                else directory(f"{RUN}/checkpoints/step{{step}}")
            ),
        log:
            f"{RUN}/logs/download_checkpoint/step{{step}}.log",
        benchmark:
            f"{RUN}/benchmarks/download_checkpoint/step{{step}}.tsv"
        conda:
            "../envs/torch.yaml"
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
