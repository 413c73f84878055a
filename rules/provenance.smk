# What the run was made with (report only; no table or summary.md carries it, so reruns stay
# byte-identical). Hub checkpoints leave a small provenance JSON that outlives temp() folders;
# local ones are recorded with their folders (source local, path, tokenizer).
from snakemake import __version__ as SNAKEMAKE_VERSION


localrules:
    versions,


rule versions:
    input:
        provenance=(
            []
            if config["checkpoints"]["source"] != "hub"
            else expand(f"{RUN}/checkpoints/step{{step}}.provenance.json", step=STEPS)
        ),
    output:
        versions=report(
            f"{RUN}/versions.json",
            caption="../report/versions.rst",
            category="Provenance",
        ),
    log:
        f"{RUN}/logs/versions.log",
    benchmark:
        f"{RUN}/benchmarks/versions.tsv"
    conda:
        TORCH_ENV
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        **({"local_checkpoints": LOCAL.provenance()} if LOCAL else {}),
        lab_steps=STEPS if is_lab("checkpoints") else [],
        snakemake_version=SNAKEMAKE_VERSION,
    script:
        "../workflow_scripts/versions.py"
