# Router pathways of training samples at every checkpoint (in chunks of
# pathways.checkpoints_per_job), then Metric 1, Metric 2 and baselines.


rule extract_pathways:
    input:
        checkpoints=chunk_checkpoints("pathways"),
        corpus=corpus_files(),
        manifest=f"{RUN}/corpus/manifest.json",
    output:
        pathways=directory(f"{RUN}/pathways/steps{{chunk}}"),
    log:
        f"{RUN}/logs/extract_pathways/steps{{chunk}}.log",
    benchmark:
        f"{RUN}/benchmarks/extract_pathways/steps{{chunk}}.tsv"
    conda:
        TORCH_ENV
    threads: model_threads(2)
    resources:
        gpu=gpus(),
        mem_mb=8000,
        runtime=120,
    params:
        **checkpoint_params(steps=chunk_steps("pathways")),
        domains=DOMAINS,
        max_per_domain=config["pathways"]["max_per_domain"],
        seed=config["seed"],
        batch_size=config["pathways"]["batch_size"],
        max_length=config["pathways"]["max_length"],
        dtype=config["pathways"]["dtype"],
        weights=config["pathways"]["weights"],
        device=config["device"],
    script:
        "../workflow_scripts/extract_pathways.py"


rule pathway_metrics:
    input:
        pathways=pathway_tables(),
        memorization=f"{RUN}/memorization/samples.parquet",
        routers=pathway_tables(),
    output:
        edit_distance=f"{RUN}/metrics/thr{{threshold}}/edit_distance.parquet",
        consistency=f"{RUN}/metrics/thr{{threshold}}/consistency.parquet",
        routing=f"{RUN}/metrics/thr{{threshold}}/routing.parquet",
    log:
        f"{RUN}/logs/pathway_metrics/thr{{threshold}}.log",
    benchmark:
        f"{RUN}/benchmarks/pathway_metrics/thr{{threshold}}.tsv"
    conda:
        "../envs/stats.yaml"
    threads: model_threads(2)
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        threshold=threshold_of,
        max_pairs=config["pathways"]["max_pairs"],
        seed=config["seed"],
        consistency_min_cos=config["pathways"]["consistency_min_cos"],
    script:
        "../workflow_scripts/pathway_metrics.py"


rule loss_baselines:
    input:
        losses=loss_tables(),
        memorization=f"{RUN}/memorization/samples.parquet",
    output:
        baselines=f"{RUN}/metrics/loss_baselines.parquet",
    log:
        f"{RUN}/logs/loss_baselines.log",
    benchmark:
        f"{RUN}/benchmarks/loss_baselines.tsv"
    conda:
        "../envs/stats.yaml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        window=config["pathways"]["loss_ma_window"],
    script:
        "../workflow_scripts/loss_baselines.py"
