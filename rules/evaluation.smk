# Test performance: optional LoRA instruction tuning, lm-eval on every checkpoint, the
# contamination filter, each test item's generalization step, and the group matching.


localrules:
    collect_evaluation,
    generalization,


if (
    config["instruction_tuning"]["enabled"]
    and config["instruction_tuning"]["format"] == "alpaca"
):

    rule instruction_data:
        output:
            instructions=f"{RUN}/instructions/instructions.jsonl",
        log:
            f"{RUN}/logs/instruction_data.log",
        benchmark:
            f"{RUN}/benchmarks/instruction_data.tsv"
        conda:
            LMEVAL_ENV
        resources:
            mem_mb=8000,
            runtime=60,
        params:
            datasets=config["instruction_tuning"]["datasets"],
            subsample=config["instruction_tuning"]["subsample"],
            seed=config["seed"],
        script:
            "../workflow_scripts/instruction_data.py"


rule instruction_tune:
    input:
        checkpoint=checkpoint_for_step,
        instructions=instruction_inputs(),
    output:
        adapter=directory(f"{RUN}/adapters/step{{step}}"),
    log:
        f"{RUN}/logs/instruction_tune/step{{step}}.log",
    benchmark:
        f"{RUN}/benchmarks/instruction_tune/step{{step}}.tsv"
    conda:
        LMEVAL_ENV
    threads: 2
    resources:
        gpu=gpus(),
        mem_mb=32000,
        runtime=720,
    params:
        **checkpoint_params(),
        format=config["instruction_tuning"]["format"],
        rank=config["instruction_tuning"]["rank"],
        alpha=config["instruction_tuning"]["alpha"],
        dropout=config["instruction_tuning"]["dropout"],
        lr=config["instruction_tuning"]["lr"],
        batch_size=config["instruction_tuning"]["batch_size"],
        max_length=config["instruction_tuning"]["max_length"],
        epochs=config["instruction_tuning"]["epochs"],
        target_modules=config["instruction_tuning"]["target_modules"],
        subsample=config["instruction_tuning"]["subsample"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/instruction_tune.py"


rule evaluate:
    input:
        checkpoints=chunk_checkpoints("evaluation"),
        adapters=eval_chunk_adapters,
        corpus=corpus_files(),
        manifest=f"{RUN}/corpus/manifest.json",
        task_templates=task_template_files(),
    output:
        per_item=f"{RUN}/eval/chunks/steps{{chunk}}.items.parquet",
        aggregate=f"{RUN}/eval/chunks/steps{{chunk}}.aggregate.parquet",
        tasks_dir=directory(f"{RUN}/eval/chunks/steps{{chunk}}.tasks"),
    log:
        f"{RUN}/logs/evaluate/steps{{chunk}}.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate/steps{{chunk}}.tsv"
    conda:
        LMEVAL_ENV
    threads: model_threads(2)
    resources:
        gpu=gpus(),
        mem_mb=16000,
        runtime=240,
    params:
        **checkpoint_params(steps=chunk_steps("evaluation")),
        task_dir=task_template_dir,
        tasks=config["evaluation"]["tasks"],
        max_length=config["evaluation"]["max_length"],
        dtype=config["evaluation"]["dtype"],
        batch_size=config["evaluation"]["batch_size"],
        limit=config["evaluation"]["limit"],
        confirm_unsafe=config["evaluation"]["confirm_unsafe_code"],
        device=config["device"],
    script:
        "../workflow_scripts/evaluate.py"


rule collect_evaluation:
    input:
        chunk_items=eval_chunk_tables("items"),
        chunk_aggregates=eval_chunk_tables("aggregate"),
    output:
        per_item=f"{RUN}/eval/items.parquet",
        aggregate=f"{RUN}/eval/aggregate.parquet",
    log:
        f"{RUN}/logs/collect_evaluation.log",
    benchmark:
        f"{RUN}/benchmarks/collect_evaluation.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        "../workflow_scripts/collect_evaluation.py"


rule contamination:
    input:
        checkpoint=final_step_checkpoint(),
        corpus=corpus_files(),
        manifest=f"{RUN}/corpus/manifest.json",
    output:
        contamination=f"{RUN}/eval/contamination.parquet",
    log:
        f"{RUN}/logs/contamination.log",
    benchmark:
        f"{RUN}/benchmarks/contamination.tsv"
    conda:
        LMEVAL_ENV
    threads: model_threads(2)
    resources:
        gpu=gpus(),
        mem_mb=16000,
        runtime=120,
    params:
        **checkpoint_params(),
        tasks=config["evaluation"]["tasks"],
        min_k=config["evaluation"]["contamination"]["min_k"],
        fraction=config["evaluation"]["contamination"]["fraction"],
        batch_size=config["evaluation"]["batch_size"],
        max_length=config["evaluation"]["max_length"],
        dtype=config["evaluation"]["dtype"],
        device=config["device"],
    script:
        "../workflow_scripts/contamination.py"


rule generalization:
    input:
        per_item=f"{RUN}/eval/items.parquet",
        contamination=f"{RUN}/eval/contamination.parquet",
    output:
        generalization=f"{RUN}/eval/generalization.parquet",
    log:
        f"{RUN}/logs/generalization.log",
    benchmark:
        f"{RUN}/benchmarks/generalization.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        min_mean_acc=config["evaluation"]["generalization"]["min_mean_acc"],
        max_misses=config["evaluation"]["generalization"]["max_misses"],
    script:
        "../workflow_scripts/generalization.py"


rule match_groups:
    input:
        memorization=f"{RUN}/memorization/samples.parquet",
        generalization=f"{RUN}/eval/generalization.parquet",
        corpus=corpus_files(),
        manifest=f"{RUN}/corpus/manifest.json",
    output:
        matches=f"{RUN}/eval/matches.parquet",
    log:
        f"{RUN}/logs/match_groups.log",
    benchmark:
        f"{RUN}/benchmarks/match_groups.tsv"
    conda:
        LMEVAL_ENV
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        embedding=config["evaluation"]["matching"]["embedding"],
        device=config["device"],
    script:
        "../workflow_scripts/match_groups.py"
