# Paths and input functions of rules/analysis.smk (kept apart: a .smk file holds rules or helpers).

FIGURES = f"{RUN}/figures"
ANALYSIS_DIR = f"{RUN}/analysis"
ABLATION_DIR = f"{RUN}/ablation"


def metric_table(kind, threshold=None):
    """edit_distance | consistency | routing at a routing threshold (default: the config's)."""
    return f"{metrics_dir(threshold)}/{kind}.parquet"


def figure_png(name):
    return f"{FIGURES}/{name}.png"


def figure_pdf(name):
    return f"{FIGURES}/{name}.pdf"


def caption(name):
    return f"../report/{name}.rst"


def ablation_memorization_path(eps_factor, delta):
    return f"{ABLATION_DIR}/memorization/eps{eps_factor}_delta{delta}.parquet"


def ablation_distance_path(eps_factor, delta):
    return f"{ABLATION_DIR}/thr{config['pathways']['threshold']}/eps{eps_factor}_delta{delta}/edit_distance.parquet"


def eps_settings():
    """(eps factor, delta) of the eps sweep: delta stays at the config's."""
    delta = config["memorization"]["delta"]
    return [
        (factor, delta) for factor in config["analysis"]["ablations"]["eps_factors"]
    ]


def delta_settings():
    """(eps factor, delta) of the delta sweep: each domain keeps its eps (factor 1.0)."""
    return [(1.0, delta) for delta in config["analysis"]["ablations"]["deltas"]]


def ablation_tables(settings):
    return [ablation_distance_path(eps_factor, delta) for eps_factor, delta in settings]


def ablation_memorizations(settings):
    return [
        ablation_memorization_path(eps_factor, delta) for eps_factor, delta in settings
    ]


def eps_values():
    return [eps_factor for eps_factor, _ in eps_settings()]


def delta_values():
    return [delta for _, delta in delta_settings()]


def threshold_ablation_tables():
    return [
        metric_table("edit_distance", t)
        for t in config["analysis"]["ablations"]["thresholds"]
    ]


def eps_factor_of(wildcards):
    return float(wildcards.eps_factor)


def delta_of(wildcards):
    return float(wildcards.delta)


def corpus_test_files():
    return expand(f"{RUN}/corpus/{{domain}}/test.jsonl", domain=DOMAINS)


def grokking_verdicts():
    """analysis/grokking.parquet, or nothing: the lab verdict needs the pretraining probe, which
    hub checkpoints (paper scale) lack."""
    return [f"{ANALYSIS_DIR}/grokking.parquet"] if is_lab("checkpoints") else []


FIGURE_NAMES = [
    "fig1_memorization_generalization",
    "fig2_matched_pairs",
    "fig4_edit_distance",
    "fig5_layer_edit_distance",
    "fig6_consistency",
    "table1_correlations",
    "fig7_metric_vs_accuracy",
    "fig8_theory_toy",
    "fig9_threshold_ablation",
    "fig10_eps_ablation",
    "fig11_delta_ablation",
    "fig12_cross_domain",
    "fig13_entropy_vs_distance",
]


# figures of the lab verdict (analysis/grokking.parquet) and of the pretraining's pathway monitor
# (train/monitor.parquet): lab checkpoints only
LAB_FIGURE_NAMES = ["lab_grokking", "fig_monitor"]


def dense_correlations_path():
    return f"{ANALYSIS_DIR}/dense_correlations.parquet"


def dense_correlation_tables():
    """analysis/dense_correlations.parquet (each monitor metric vs test accuracy over the monitor's
    steps after the fit), or nothing: only the lab pretraining runs the monitor."""
    return [dense_correlations_path()] if is_lab("checkpoints") else []


def figure_names():
    return FIGURE_NAMES + (LAB_FIGURE_NAMES if is_lab("checkpoints") else [])


def analysis_outputs():
    """Every figure (PNG + PDF), Table 1 as CSV, the summary and (lab) the dense correlations;
    empty with `analysis: null`."""
    if not config.get("analysis"):
        return []
    outputs = [figure_png(name) for name in figure_names()]
    outputs += [figure_pdf(name) for name in figure_names()]
    outputs += [f"{FIGURES}/table1_correlations.csv", f"{RUN}/summary.md"]
    outputs += dense_correlation_tables()
    return outputs
