# Per-sample loss at every checkpoint (in chunks of loss.checkpoints_per_job), then the
# memorization step of every training sample.


localrules:
    memorization,


rule sample_loss:
    input:
        checkpoints=chunk_checkpoints("loss"),
        corpus=corpus_files(),
        manifest=f"{RUN}/corpus/manifest.json",
    output:
        loss=directory(f"{RUN}/loss/steps{{chunk}}"),
    log:
        f"{RUN}/logs/sample_loss/steps{{chunk}}.log",
    benchmark:
        f"{RUN}/benchmarks/sample_loss/steps{{chunk}}.tsv"
    conda:
        TORCH_ENV
    threads: model_threads(2)
    resources:
        gpu=gpus(),
        mem_mb=8000,
        runtime=60,
    params:
        **checkpoint_params(steps=chunk_steps("loss")),
        domains=DOMAINS,
        batch_size=config["loss"]["batch_size"],
        max_length=config["loss"]["max_length"],
        append_eos=config["loss"]["append_eos"],
        span=config["loss"]["span"],
        device=config["device"],
    script:
        "../workflow_scripts/sample_loss.py"


rule memorization:
    input:
        losses=loss_tables(),
    output:
        samples=f"{RUN}/memorization/samples.parquet",
        groups=f"{RUN}/memorization/groups.parquet",
        eps_report=f"{RUN}/memorization/eps.json",
    log:
        f"{RUN}/logs/memorization.log",
    benchmark:
        f"{RUN}/benchmarks/memorization.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        eps=eps_by_domain(),
        delta=config["memorization"]["delta"],
        eps_step=config["memorization"]["eps_step"],
        target_fraction=config["memorization"]["target_fraction"],
    script:
        "../workflow_scripts/memorization.py"
