# grokpath: memorization -> generalization in MoE pretraining, monitored through router pathways.
# Table of contents only; the rules live in rules/, their logic in src/grokpath/.
from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


# The embedded default, unless --configfile names another: a paper-scale config must not
# inherit the lab's keys through Snakemake's merge of config files.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/checkpoints.smk"
include: "rules/loss.smk"
include: "rules/pathways.smk"
include: "rules/evaluation.smk"
include: "rules/analysis.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
