# Across seeds (config `seeds` lists several): every seed's analysis tables
# (results/{run}/seed{N}/analysis/) -> results/{run}/seeds/: Table 1 and the paper claims counted
# over seeds, the lab verdict over seeds, summary.md and Fig 7 over every seed. Logic:
# grokpath.analysis.seeds, grokpath.figures.seeds. Runs unless the config says `analysis: null`.


if config.get("analysis"):

    # Seconds each: on a cluster they run on the submit host instead of waiting in the queue.
    localrules:
        seeds_summary,
        fig7_across_seeds,

    rule seeds_summary:
        input:
            correlations=seed_tables("table1_correlations.parquet"),
            claims=seed_tables("claims.parquet"),
            grokking=seed_grokking_tables(),
        output:
            table1_per_seed=f"{SEEDS_DIR}/table1_per_seed.parquet",
            table1_across=f"{SEEDS_DIR}/table1_across_seeds.parquet",
            claims_across=f"{SEEDS_DIR}/claims_across_seeds.parquet",
            grokking_across=f"{SEEDS_DIR}/grokking_across_seeds.parquet",
            summary=report(
                f"{SEEDS_DIR}/summary.md",
                caption="../report/seeds_summary.rst",
                category="Seeds",
                labels={"document": "paper claims across seeds"},
            ),
        log:
            f"{SEEDS_DIR}/logs/seeds_summary.log",
        benchmark:
            f"{SEEDS_DIR}/benchmarks/seeds_summary.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            seeds=SEEDS,
            run=config["run"],
        script:
            "../workflow_scripts/seeds_summary.py"

    rule fig7_across_seeds:
        input:
            points=seed_tables("correlation_points.parquet"),
            correlations=seed_tables("table1_correlations.parquet"),
        output:
            png=report(
                f"{SEEDS_DIR}/fig7_across_seeds.png",
                caption="../report/seeds_fig7.rst",
                category="Seeds",
                labels={"figure": "Fig 7 over seeds"},
            ),
            pdf=f"{SEEDS_DIR}/fig7_across_seeds.pdf",
        log:
            f"{SEEDS_DIR}/logs/fig7_across_seeds.log",
        benchmark:
            f"{SEEDS_DIR}/benchmarks/fig7_across_seeds.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            seeds=SEEDS,
        script:
            "../workflow_scripts/fig7_across_seeds.py"
