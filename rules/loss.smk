# Per-sample loss at every checkpoint, then the memorization step of every training sample.


localrules:
    memorization,


rule sample_loss:
    input:
        checkpoint=checkpoint_for_step,
        corpus=corpus_files(),
        manifest=f"{RUN}/corpus/manifest.json",
    output:
        loss=f"{RUN}/loss/step{{step}}.parquet",
    log:
        f"{RUN}/logs/sample_loss/step{{step}}.log",
    benchmark:
        f"{RUN}/benchmarks/sample_loss/step{{step}}.tsv"
    conda:
        TORCH_ENV
    threads: model_threads(2)
    resources:
        gpu=gpus(),
        mem_mb=8000,
        runtime=60,
    params:
        **checkpoint_params(step=step_of),
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
