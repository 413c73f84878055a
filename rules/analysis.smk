# Analysis: correlations with test accuracy, every paper figure and table, the theory toy,
# the ablations and results/{run}/summary.md. One rule and one output per figure (PNG + PDF);
# the PNG goes into `snakemake --report`. Runs unless the config says `analysis: null` (an omitted
# `analysis:` block runs with the schema's defaults).
# Ablations are wildcards: routing thresholds reuse pathway_metrics (metrics/thr{threshold}/),
# eps/delta settings recompute memorization from the cached loss tables and distances from the
# cached pathway tables, so neither training, loss, extraction nor evaluation reruns.


include: "analysis_common.smk"


if config.get("analysis"):
    ANALYSIS = config["analysis"]

    wildcard_constraints:
        eps_factor=r"[0-9.]+",
        delta=r"[0-9.]+",

    # Seconds each: on a cluster they run on the submit host instead of waiting in the queue.
    localrules:
        correlations,
        theory_toy,
        ablation_memorization,
        fig1_memorization_generalization,
        fig2_matched_pairs,
        fig4_edit_distance,
        fig5_layer_edit_distance,
        fig6_consistency,
        table1_correlations,
        fig7_metric_vs_accuracy,
        fig8_theory_toy,
        fig9_threshold_ablation,
        fig10_eps_ablation,
        fig11_delta_ablation,
        fig12_cross_domain,
        fig13_entropy_vs_distance,
        summary,

    rule correlations:
        input:
            eval_items=f"{RUN}/eval/items.parquet",
            contamination=f"{RUN}/eval/contamination.parquet",
            edit_distance=metric_table("edit_distance"),
            consistency=metric_table("consistency"),
            routing=metric_table("routing"),
            loss_baselines=f"{RUN}/metrics/loss_baselines.parquet",
        output:
            accuracy=f"{ANALYSIS_DIR}/accuracy.parquet",
            points=f"{ANALYSIS_DIR}/correlation_points.parquet",
            correlations=f"{ANALYSIS_DIR}/table1_correlations.parquet",
            nested=f"{ANALYSIS_DIR}/nested_f_tests.parquet",
            fits=f"{ANALYSIS_DIR}/fig7_fits.parquet",
        log:
            f"{RUN}/logs/analysis/correlations.log",
        benchmark:
            f"{RUN}/benchmarks/analysis/correlations.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            window=ANALYSIS["correlation"]["window"],
            group=ANALYSIS["correlation"]["group"],
            rise_fraction=ANALYSIS["correlation"]["rise_fraction"],
            min_gain=ANALYSIS["correlation"]["min_gain"],
            min_checkpoints=ANALYSIS["correlation"]["min_checkpoints"],
            n_resamples=ANALYSIS["correlation"]["bootstrap_resamples"],
            confidence=ANALYSIS["correlation"]["confidence"],
            nested_loss=ANALYSIS["correlation"]["nested_loss"],
            seed=config["seed"],
        script:
            "../workflow_scripts/stats.py"

    # lab checkpoints only: the verdict reads the pretraining probe (train/probe.parquet)
    if is_lab("checkpoints"):

        localrules:
            grokking,
            lab_grokking,
            fig_monitor,
            dense_correlations,

        rule grokking:
            input:
                aggregate=f"{RUN}/eval/aggregate.parquet",
                probe=f"{RUN}/train/probe.parquet",
                samples=f"{RUN}/memorization/samples.parquet",
                manifest=f"{RUN}/corpus/manifest.json",
                test_items=corpus_test_files(),
            output:
                grokking=f"{ANALYSIS_DIR}/grokking.parquet",
            log:
                f"{RUN}/logs/analysis/grokking.log",
            benchmark:
                f"{RUN}/benchmarks/analysis/grokking.tsv"
            conda:
                "../envs/stats.yaml"
            resources:
                mem_mb=2000,
                runtime=5,
            script:
                "../workflow_scripts/grokking.py"

        rule lab_grokking:
            input:
                probe=f"{RUN}/train/probe.parquet",
                aggregate=f"{RUN}/eval/aggregate.parquet",
                grokking=f"{ANALYSIS_DIR}/grokking.parquet",
            output:
                png=report(
                    figure_png("lab_grokking"),
                    caption=caption("lab_grokking"),
                    category="Grokking",
                    labels={"figure": "lab verdict"},
                ),
                pdf=figure_pdf("lab_grokking"),
            log:
                f"{RUN}/logs/figures/lab_grokking.log",
            benchmark:
                f"{RUN}/benchmarks/figures/lab_grokking.tsv"
            conda:
                "../envs/stats.yaml"
            resources:
                mem_mb=2000,
                runtime=5,
            params:
                figure="lab_grokking",
            script:
                "../workflow_scripts/figure.py"

        # the pathway monitor of the pretraining (train/monitor.parquet, every
        # pretrain.monitor_every steps) beside the dense accuracy probe
        rule fig_monitor:
            input:
                probe=f"{RUN}/train/probe.parquet",
                monitor=f"{RUN}/train/monitor.parquet",
                samples=f"{RUN}/memorization/samples.parquet",
            output:
                png=report(
                    figure_png("fig_monitor"),
                    caption=caption("fig_monitor"),
                    category="Grokking",
                    labels={"figure": "pathway monitor"},
                ),
                pdf=figure_pdf("fig_monitor"),
            log:
                f"{RUN}/logs/figures/fig_monitor.log",
            benchmark:
                f"{RUN}/benchmarks/figures/fig_monitor.tsv"
            conda:
                "../envs/stats.yaml"
            resources:
                mem_mb=2000,
                runtime=5,
            params:
                figure="monitor",
            script:
                "../workflow_scripts/figure.py"

        rule dense_correlations:
            input:
                monitor=f"{RUN}/train/monitor.parquet",
                probe=f"{RUN}/train/probe.parquet",
            output:
                dense_correlations=dense_correlations_path(),
            log:
                f"{RUN}/logs/analysis/dense_correlations.log",
            benchmark:
                f"{RUN}/benchmarks/analysis/dense_correlations.tsv"
            conda:
                "../envs/stats.yaml"
            resources:
                mem_mb=2000,
                runtime=5,
            script:
                "../workflow_scripts/dense_correlations.py"

    rule theory_toy:
        output:
            toy=f"{RUN}/theory/toy.parquet",
        log:
            f"{RUN}/logs/analysis/theory_toy.log",
        benchmark:
            f"{RUN}/benchmarks/analysis/theory_toy.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            **ANALYSIS["theory"],
            seed=config["seed"],
        script:
            "../workflow_scripts/theory_toy.py"

    rule ablation_memorization:
        input:
            losses=loss_tables(),
            eps_report=f"{RUN}/memorization/eps.json",
        output:
            memorization=f"{ABLATION_DIR}/memorization/eps{{eps_factor}}_delta{{delta}}.parquet",
        log:
            f"{RUN}/logs/analysis/ablation_memorization/eps{{eps_factor}}_delta{{delta}}.log",
        benchmark:
            f"{RUN}/benchmarks/analysis/ablation_memorization/eps{{eps_factor}}_delta{{delta}}.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=4000,
            runtime=10,
        params:
            eps_factor=eps_factor_of,
            delta=delta_of,
        script:
            "../workflow_scripts/ablation_memorization.py"

    rule ablation_edit_distance:
        input:
            pathways=pathway_tables(),
            memorization=f"{ABLATION_DIR}/memorization/eps{{eps_factor}}_delta{{delta}}.parquet",
        output:
            edit_distance=f"{ABLATION_DIR}/thr{{threshold}}/eps{{eps_factor}}_delta{{delta}}/edit_distance.parquet",
        log:
            f"{RUN}/logs/analysis/ablation_edit_distance/thr{{threshold}}_eps{{eps_factor}}_delta{{delta}}.log",
        benchmark:
            f"{RUN}/benchmarks/analysis/ablation_edit_distance/thr{{threshold}}_eps{{eps_factor}}_delta{{delta}}.tsv"
        conda:
            "../envs/stats.yaml"
        threads: model_threads(2)
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            threshold=threshold_of,
            max_pairs=config["pathways"]["max_pairs"],
            seed=config["seed"],
        script:
            "../workflow_scripts/ablation_edit_distance.py"

    rule fig1_memorization_generalization:
        input:
            groups=f"{RUN}/memorization/groups.parquet",
            generalization=f"{RUN}/eval/generalization.parquet",
            contamination=f"{RUN}/eval/contamination.parquet",
        output:
            png=report(
                figure_png("fig1_memorization_generalization"),
                caption=caption("fig1_memorization_generalization"),
                category="Grokking",
                labels={"figure": "Fig 1"},
            ),
            pdf=figure_pdf("fig1_memorization_generalization"),
        log:
            f"{RUN}/logs/figures/fig1_memorization_generalization.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig1_memorization_generalization.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig1",
            steps=STEPS,
        script:
            "../workflow_scripts/figure.py"

    rule fig2_matched_pairs:
        input:
            loss_baselines=f"{RUN}/metrics/loss_baselines.parquet",
            matches=f"{RUN}/eval/matches.parquet",
            eval_items=f"{RUN}/eval/items.parquet",
            generalization=f"{RUN}/eval/generalization.parquet",
            contamination=f"{RUN}/eval/contamination.parquet",
        output:
            png=report(
                figure_png("fig2_matched_pairs"),
                caption=caption("fig2_matched_pairs"),
                category="Grokking",
                labels={"figure": "Fig 2"},
            ),
            pdf=figure_pdf("fig2_matched_pairs"),
        log:
            f"{RUN}/logs/figures/fig2_matched_pairs.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig2_matched_pairs.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig2",
            domain=ANALYSIS["figures"]["fig2_domain"],
            max_pairs=ANALYSIS["figures"]["fig2_max_pairs"],
        script:
            "../workflow_scripts/figure.py"

    rule fig4_edit_distance:
        input:
            edit_distance=metric_table("edit_distance"),
            loss_baselines=f"{RUN}/metrics/loss_baselines.parquet",
            groups=f"{RUN}/memorization/groups.parquet",
        output:
            png=report(
                figure_png("fig4_edit_distance"),
                caption=caption("fig4_edit_distance"),
                category="Pathways",
                labels={"figure": "Fig 4"},
            ),
            pdf=figure_pdf("fig4_edit_distance"),
        log:
            f"{RUN}/logs/figures/fig4_edit_distance.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig4_edit_distance.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig4",
            show_groups=ANALYSIS["figures"]["fig4_groups"],
        script:
            "../workflow_scripts/figure.py"

    rule fig5_layer_edit_distance:
        input:
            edit_distance=metric_table("edit_distance"),
            groups=f"{RUN}/memorization/groups.parquet",
        output:
            png=report(
                figure_png("fig5_layer_edit_distance"),
                caption=caption("fig5_layer_edit_distance"),
                category="Pathways",
                labels={"figure": "Fig 5"},
            ),
            pdf=figure_pdf("fig5_layer_edit_distance"),
        log:
            f"{RUN}/logs/figures/fig5_layer_edit_distance.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig5_layer_edit_distance.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig5",
            show_group=ANALYSIS["figures"]["fig5_group"],
        script:
            "../workflow_scripts/figure.py"

    rule fig6_consistency:
        input:
            consistency=metric_table("consistency"),
            loss_baselines=f"{RUN}/metrics/loss_baselines.parquet",
            groups=f"{RUN}/memorization/groups.parquet",
        output:
            png=report(
                figure_png("fig6_consistency"),
                caption=caption("fig6_consistency"),
                category="Pathways",
                labels={"figure": "Fig 6"},
            ),
            pdf=figure_pdf("fig6_consistency"),
        log:
            f"{RUN}/logs/figures/fig6_consistency.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig6_consistency.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig6",
            show_groups=ANALYSIS["figures"]["fig6_groups"],
        script:
            "../workflow_scripts/figure.py"

    rule table1_correlations:
        input:
            correlations=f"{ANALYSIS_DIR}/table1_correlations.parquet",
        output:
            csv=report(
                f"{FIGURES}/table1_correlations.csv",
                caption=caption("table1_correlations"),
                category="Prediction",
                labels={"table": "Table 1", "format": "csv"},
            ),
            png=report(
                figure_png("table1_correlations"),
                caption=caption("table1_correlations"),
                category="Prediction",
                labels={"table": "Table 1", "format": "rendered"},
            ),
            pdf=figure_pdf("table1_correlations"),
        log:
            f"{RUN}/logs/figures/table1_correlations.log",
        benchmark:
            f"{RUN}/benchmarks/figures/table1_correlations.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="table1",
        script:
            "../workflow_scripts/figure.py"

    rule fig7_metric_vs_accuracy:
        input:
            points=f"{ANALYSIS_DIR}/correlation_points.parquet",
            fits=f"{ANALYSIS_DIR}/fig7_fits.parquet",
            correlations=f"{ANALYSIS_DIR}/table1_correlations.parquet",
        output:
            png=report(
                figure_png("fig7_metric_vs_accuracy"),
                caption=caption("fig7_metric_vs_accuracy"),
                category="Prediction",
                labels={"figure": "Fig 7"},
            ),
            pdf=figure_pdf("fig7_metric_vs_accuracy"),
        log:
            f"{RUN}/logs/figures/fig7_metric_vs_accuracy.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig7_metric_vs_accuracy.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig7",
        script:
            "../workflow_scripts/figure.py"

    rule fig8_theory_toy:
        input:
            toy=f"{RUN}/theory/toy.parquet",
        output:
            png=report(
                figure_png("fig8_theory_toy"),
                caption=caption("fig8_theory_toy"),
                category="Theory",
                labels={"figure": "Fig 8"},
            ),
            pdf=figure_pdf("fig8_theory_toy"),
        log:
            f"{RUN}/logs/figures/fig8_theory_toy.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig8_theory_toy.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig8",
        script:
            "../workflow_scripts/figure.py"

    rule fig9_threshold_ablation:
        input:
            edit_distances=threshold_ablation_tables(),
        output:
            png=report(
                figure_png("fig9_threshold_ablation"),
                caption=caption("fig9_threshold_ablation"),
                category="Ablations",
                labels={"figure": "Fig 9"},
            ),
            pdf=figure_pdf("fig9_threshold_ablation"),
        log:
            f"{RUN}/logs/figures/fig9_threshold_ablation.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig9_threshold_ablation.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig9",
            thresholds=ANALYSIS["ablations"]["thresholds"],
        script:
            "../workflow_scripts/figure.py"

    rule fig10_eps_ablation:
        input:
            edit_distances=ablation_tables(eps_settings()),
            memorizations=ablation_memorizations(eps_settings()),
        output:
            png=report(
                figure_png("fig10_eps_ablation"),
                caption=caption("fig10_eps_ablation"),
                category="Ablations",
                labels={"figure": "Fig 10"},
            ),
            pdf=figure_pdf("fig10_eps_ablation"),
        log:
            f"{RUN}/logs/figures/fig10_eps_ablation.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig10_eps_ablation.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig10",
            values=eps_values(),
        script:
            "../workflow_scripts/figure.py"

    rule fig11_delta_ablation:
        input:
            edit_distances=ablation_tables(delta_settings()),
            memorizations=ablation_memorizations(delta_settings()),
        output:
            png=report(
                figure_png("fig11_delta_ablation"),
                caption=caption("fig11_delta_ablation"),
                category="Ablations",
                labels={"figure": "Fig 11"},
            ),
            pdf=figure_pdf("fig11_delta_ablation"),
        log:
            f"{RUN}/logs/figures/fig11_delta_ablation.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig11_delta_ablation.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig11",
            values=delta_values(),
        script:
            "../workflow_scripts/figure.py"

    rule fig12_cross_domain:
        input:
            edit_distance=metric_table("edit_distance"),
        output:
            png=report(
                figure_png("fig12_cross_domain"),
                caption=caption("fig12_cross_domain"),
                category="Ablations",
                labels={"figure": "Fig 12"},
            ),
            pdf=figure_pdf("fig12_cross_domain"),
        log:
            f"{RUN}/logs/figures/fig12_cross_domain.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig12_cross_domain.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig12",
            domain_a=ANALYSIS["figures"]["cross_domains"][0],
            domain_b=ANALYSIS["figures"]["cross_domains"][1],
        script:
            "../workflow_scripts/figure.py"

    rule fig13_entropy_vs_distance:
        input:
            edit_distance=metric_table("edit_distance"),
            routing=metric_table("routing"),
        output:
            png=report(
                figure_png("fig13_entropy_vs_distance"),
                caption=caption("fig13_entropy_vs_distance"),
                category="Ablations",
                labels={"figure": "Fig 13"},
            ),
            pdf=figure_pdf("fig13_entropy_vs_distance"),
        log:
            f"{RUN}/logs/figures/fig13_entropy_vs_distance.log",
        benchmark:
            f"{RUN}/benchmarks/figures/fig13_entropy_vs_distance.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            figure="fig13",
        script:
            "../workflow_scripts/figure.py"

    rule summary:
        input:
            correlations=f"{ANALYSIS_DIR}/table1_correlations.parquet",
            nested=f"{ANALYSIS_DIR}/nested_f_tests.parquet",
            accuracy=f"{ANALYSIS_DIR}/accuracy.parquet",
            groups=f"{RUN}/memorization/groups.parquet",
            generalization=f"{RUN}/eval/generalization.parquet",
            contamination=f"{RUN}/eval/contamination.parquet",
            matches=f"{RUN}/eval/matches.parquet",
            edit_distance=metric_table("edit_distance"),
            consistency=metric_table("consistency"),
            routing=metric_table("routing"),
            loss_baselines=f"{RUN}/metrics/loss_baselines.parquet",
            toy=f"{RUN}/theory/toy.parquet",
            threshold_tables=threshold_ablation_tables(),
            eps_tables=ablation_tables(eps_settings()),
            delta_tables=ablation_tables(delta_settings()),
            grokking=grokking_verdicts(),
            dense=dense_correlation_tables(),
        output:
            summary=report(
                f"{RUN}/summary.md",
                caption=caption("summary"),
                category="Summary",
                labels={"document": "paper claims vs this run"},
            ),
            claims=f"{ANALYSIS_DIR}/claims.parquet",
        log:
            f"{RUN}/logs/analysis/summary.log",
        benchmark:
            f"{RUN}/benchmarks/analysis/summary.tsv"
        conda:
            "../envs/stats.yaml"
        resources:
            mem_mb=2000,
            runtime=5,
        params:
            **ANALYSIS["summary"],
            run=config["run"],
            delta=config["memorization"]["delta"],
            fig2_domain=ANALYSIS["figures"]["fig2_domain"],
            cross_domains=ANALYSIS["figures"]["cross_domains"],
            fig4_groups=ANALYSIS["figures"]["fig4_groups"],
            fig5_group=ANALYSIS["figures"]["fig5_group"],
            fig6_groups=ANALYSIS["figures"]["fig6_groups"],
            thresholds=ANALYSIS["ablations"]["thresholds"],
            eps_factors=eps_values(),
            deltas=delta_values(),
            rise_fraction=ANALYSIS["correlation"]["rise_fraction"],
            min_gain=ANALYSIS["correlation"]["min_gain"],
            min_checkpoints=ANALYSIS["correlation"]["min_checkpoints"],
        script:
            "../workflow_scripts/summary.py"
