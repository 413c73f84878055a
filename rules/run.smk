# One run of the workflow, for one seed: every rule from the corpus to summary.md, under
# results/{run}/ (RUN). The Snakefile includes it once (one seed) or loads it as one module per
# seed (several seeds: results/{run}/seed{N}/, rules named seed{N}_*).


include: "common.smk"
include: "corpus.smk"
include: "checkpoints.smk"
include: "loss.smk"
include: "pathways.smk"
include: "evaluation.smk"
include: "analysis.smk"
include: "provenance.smk"
