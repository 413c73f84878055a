# grokpath: memorization -> generalization in MoE pretraining, monitored through router pathways.
# Table of contents only; the rules live in rules/, their logic in src/grokpath/.
from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


# The embedded default, unless --configfile names another: a paper-scale config must not
# inherit the lab's keys through Snakemake's merge of config files.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/seeds_common.smk"


if len(SEEDS) == 1:

    # One seed (config `seeds` absent or one entry): the run's rules, results/{run}/.
    include: "rules/run.smk"

    TARGETS = final_outputs()

else:
    # Several seeds: the same rules once per seed, as a module with its own config (that seed,
    # run {run}/seed{N}: results/{run}/seed{N}/) and rule names (seed{N}_*); then the
    # aggregation over seeds (results/{run}/seeds/).
    inherit_rule_settings([f"seed{seed}_" for seed in SEEDS])
    for seed in SEEDS:
        seed_module = f"seed{seed}"
        seed_module_ = f"seed{seed}_"

        module:
            name: seed_module
            snakefile:
                "rules/run.smk"
            config:
                seed_run_config(config, seed)

        use rule * from seed_module as seed_module_*

        prefix_module_localrules(seed_module_)

    include: "rules/seeds.smk"

    TARGETS = seed_final_outputs() + seeds_outputs()


rule all:
    default_target: True
    input:
        TARGETS,
