# The seeds of the run (config `seeds`, default [seed]) and the paths of the aggregation over
# them (rules/seeds.smk). One seed: the run as always (results/{run}/). Several: the Snakefile
# loads rules/run.smk as one module per seed (results/{run}/seed{N}/, rules seed{N}_*).
from grokpath.config import (
    analysis_from_command_line,
    seed_list,
    seed_run,
    seed_run_config,
    seeds_from_command_line,
    validate_config,
)
from grokpath.errors import GrokpathError

seeds_from_command_line(config)
analysis_from_command_line(config)
try:
    config.update(validate_config(config))  # every optional key filled with its default
except GrokpathError as exc:
    raise WorkflowError(str(exc)) from None

SEEDS = seed_list(config)
if len(SEEDS) == 1:
    config["seed"] = SEEDS[0]  # `seeds: [N]` is the run of seed N, in results/{run}/
SEEDS_DIR = f"results/{config['run']}/seeds"


def seed_results(seed):
    return f"results/{seed_run(config['run'], seed)}"


def seed_tables(name):
    """One analysis table (analysis/{name}) of every seed, in the order of `seeds`."""
    return [f"{seed_results(seed)}/analysis/{name}" for seed in SEEDS]


def seed_grokking_tables():
    """analysis/grokking.parquet of every seed: lab checkpoints only (the probe it reads)."""
    if config["checkpoints"]["source"] != "lab":
        return []
    return seed_tables("grokking.parquet")


def seed_final_outputs():
    """Every seed's final outputs, as its module (namespace seed{N}) lists them."""
    return [path for seed in SEEDS for path in globals()[f"seed{seed}"].final_outputs()]


def seeds_outputs():
    """The aggregation's outputs (rules/seeds.smk); none with `analysis: null`."""
    if not config.get("analysis"):
        return []
    tables = ["table1_per_seed", "table1_across_seeds", "claims_across_seeds"]
    tables.append("grokking_across_seeds")
    names = [f"{table}.parquet" for table in tables] + ["summary.md"]
    names += ["fig7_across_seeds.png", "fig7_across_seeds.pdf"]
    return [f"{SEEDS_DIR}/{name}" for name in names]


def prefix_module_localrules(prefix):
    """Make a module's `localrules:` name its rules as imported (`versions` -> `seed1_versions`).

    Snakemake adds the names a module's `localrules:` lists unchanged, while `use rule *` with
    `as seed1_*` renames the rules (snakemake/snakemake#945 and #2061). The names would then
    match nothing, the rules would go to a cluster and each run would warn. Called right after
    each module's import, this declares the prefixed names and drops the bare ones.
    """
    names = {rule.name for rule in workflow.rules}
    bare = {
        name
        for name in workflow._localrules
        if name not in names and f"{prefix}{name}" in names
    }
    workflow._localrules.difference_update(bare)
    workflow.localrules(*sorted(f"{prefix}{name}" for name in bare))


def inherit_rule_settings(prefixes):
    """Give each module's rules the per-rule settings of their bare names.

    `--set-resources` and `--set-threads` (a profile's `set-resources:`, e.g. profiles/slurm's GPU
    partition for `pretrain_lab`) name the rules of a one-seed run; Snakemake looks them up by
    the full name (`seed1_pretrain_lab`) when it creates a rule. Call before the modules load:
    every bare name's settings are copied to each prefixed name that has none of its own.
    """
    settings = workflow.resource_settings
    for parsed in (
        settings._parsed_overwrite_resources,
        settings._parsed_overwrite_threads,
    ):
        bare = [name for name in parsed if not name.startswith(tuple(prefixes))]
        for name in bare:
            for prefix in prefixes:
                parsed.setdefault(f"{prefix}{name}", parsed[name])
