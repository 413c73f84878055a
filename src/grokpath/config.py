"""Config validation: the JSON schema first, then the rules a schema cannot say.

Every error is one line that names the key path (`domains.math.eps`) and what was expected.

Defaults: every optional key's `default` in config/schemas/config.schema.yaml is filled in while
the schema validates (`DefaultFillingValidator`), nested objects included, so a config names only
what differs. `validate_config` returns a filled copy and leaves the caller's dict alone; the
workflow (rules/common.smk, rules/seeds_common.smk) puts that copy into Snakemake's `config`. A
default is taken only from a subschema that applies to the value: `oneOf`/`anyOf` branches and
`if`/`then`/`else` are tried on copies, and only the branch that matched fills the real config.
A few defaults depend on other keys and are filled after the schema (`fill_derived`).
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

from grokpath.errors import GrokpathError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "config" / "schemas" / "config.schema.yaml"


def key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        where = key_path(error)
        keys = ", ".join(f"{where}.{k}" if where != "<top level>" else k for k in extra)
        return f"unknown config key {keys}; allowed here: {allowed}"
    return f"config key {key_path(error)}: {error.message}"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


_BASE = jsonschema.Draft202012Validator
_KEYWORDS = _BASE.VALIDATORS


def _valid_on_copy(validator, instance, subschema, schema_path) -> bool:
    """Whether `instance` is valid under `subschema`, judged on a copy: defaults a branch would
    fill never reach the real config unless that branch is the one that applies."""
    trial = copy.deepcopy(instance)
    return next(iter(validator.descend(trial, subschema, schema_path=schema_path)), None) is None


def _fill_properties(validator, properties, instance, schema):
    """`properties`, which first sets each absent key that has a `default` (a copy of it), then
    validates every key as usual, so the defaults of nested objects are filled in turn."""
    if validator.is_type(instance, "object"):
        for name, subschema in properties.items():
            if name not in instance and isinstance(subschema, dict) and "default" in subschema:
                instance[name] = copy.deepcopy(subschema["default"])
    yield from _KEYWORDS["properties"](validator, properties, instance, schema)


def _fill_one_of(validator, branches, instance, schema):
    matching = [i for i, branch in enumerate(branches) if _valid_on_copy(validator, instance, branch, i)]
    if len(matching) == 1:  # the one branch that applies fills its defaults
        yield from validator.descend(instance, branches[matching[0]], schema_path=matching[0])
    else:  # none or several: the standard errors, computed on a copy
        yield from _KEYWORDS["oneOf"](validator, branches, copy.deepcopy(instance), schema)


def _fill_any_of(validator, branches, instance, schema):
    for i, branch in enumerate(branches):
        if _valid_on_copy(validator, instance, branch, i):  # the first branch that applies
            yield from validator.descend(instance, branch, schema_path=i)
            return
    yield from _KEYWORDS["anyOf"](validator, branches, copy.deepcopy(instance), schema)


def _fill_if(validator, if_schema, instance, schema):
    if _valid_on_copy(validator, instance, if_schema, "if"):
        if "then" in schema:
            yield from validator.descend(instance, schema["then"], schema_path="then")
    elif "else" in schema:
        yield from validator.descend(instance, schema["else"], schema_path="else")


def _on_copy(keyword):
    """A keyword that only tests subschemas (`not`, `contains`, ...): run it on a copy, so no
    default of a subschema it merely tries is filled."""

    def validate(validator, value, instance, schema):
        yield from _KEYWORDS[keyword](validator, value, copy.deepcopy(instance), schema)

    return validate


DefaultFillingValidator = jsonschema.validators.extend(
    _BASE,
    {
        "properties": _fill_properties,
        "oneOf": _fill_one_of,
        "anyOf": _fill_any_of,
        "if": _fill_if,
        **{k: _on_copy(k) for k in ("not", "contains", "unevaluatedProperties", "unevaluatedItems")},
    },
)


def fill_defaults(config: dict, schema: dict | None = None) -> tuple[dict, list[jsonschema.ValidationError]]:
    """A copy of `config` with the schema's defaults filled in, and the schema's errors."""
    schema = schema or load_schema()
    filled = copy.deepcopy(config)
    return filled, list(DefaultFillingValidator(schema).iter_errors(filled))


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """The validated config with every default filled in, as a new dict (`config` is unchanged).

    Raises GrokpathError (one line naming the key) when the config breaks the schema or a rule
    the schema cannot say (`check_semantics`).
    """
    filled, errors = fill_defaults(config, schema)
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise GrokpathError(_describe(best))
    check_semantics(filled)
    fill_derived(filled)
    return filled


LAB_TASK_DIR = "config/lm_eval_tasks/lab"
PAPER_TASK_DIR = "config/lm_eval_tasks/paper"


def fill_derived(config: dict) -> None:
    """Defaults that depend on other keys, so the schema cannot hold them (in place, on the copy
    `validate_config` made): evaluation.task_dir and evaluation.tasks follow corpus.source."""
    lab = config["corpus"]["source"] == "lab"
    evaluation = config["evaluation"]
    evaluation.setdefault("task_dir", LAB_TASK_DIR if lab else PAPER_TASK_DIR)
    if "tasks" in evaluation:
        return
    if not lab:
        raise GrokpathError(
            "config key evaluation.tasks: required because corpus.source is 'hub' "
            "(domain -> lm-eval task name)"
        )
    tuning = config["instruction_tuning"]
    suffix = "_instruct" if tuning["enabled"] and tuning["format"] == "lab" else ""
    tasks = {name: f"lab_{name}{suffix}" for name in config["domains"]}
    folder = ROOT / evaluation["task_dir"]
    missing = [task for task in tasks.values() if not (folder / f"{task}.yaml").is_file()]
    if missing:
        raise GrokpathError(
            f"config key evaluation.tasks: required, since {evaluation['task_dir']} has no lab task "
            f"{', '.join(missing)} (lab tasks exist for the domains math, code, commonsense and "
            "domain_specific); name each domain's lm-eval task"
        )
    evaluation["tasks"] = tasks


def check_semantics(config: dict) -> None:
    check_seeds(config)
    check_checkpoint_source(config)
    steps = config["checkpoints"].get("steps") or []
    for i, (a, b) in enumerate(zip(steps, steps[1:])):
        if b <= a:
            raise GrokpathError(
                f"config key checkpoints.steps: steps must increase strictly, got {a} then {b} (position {i + 1})"
            )
    corpus = config["corpus"]["source"]
    for name, domain in config["domains"].items():
        if corpus not in domain:
            raise GrokpathError(
                f"config key domains.{name}.{corpus}: required because corpus.source is {corpus!r}"
            )
    if corpus == "hub" and "counts" not in config["corpus"]:
        raise GrokpathError("config key corpus.counts: required because corpus.source is 'hub'")
    source = config["checkpoints"]["source"]
    if source == "lab":
        for key in ("model", "pretrain"):
            if key not in config:
                raise GrokpathError(f"config key {key}: required because checkpoints.source is 'lab'")
        if corpus != "lab":
            raise GrokpathError("config key checkpoints.source: 'lab' pretraining needs corpus.source 'lab'")
        model = config["model"]
        if model["top_k"] > model["num_experts"]:
            raise GrokpathError("config key model.top_k: must not exceed model.num_experts")
        train = config["pretrain"]
        if train["monitor_every"] % train["log_every"]:
            raise GrokpathError(
                f"config key pretrain.monitor_every: must be a multiple of pretrain.log_every "
                f"({train['log_every']}), got {train['monitor_every']}: the monitor runs at the "
                "accuracy probe's steps"
            )
    if source == "hub" and "hub" not in config["checkpoints"]:
        raise GrokpathError("config key checkpoints.hub: required because checkpoints.source is 'hub'")
    check_instruction_tuning(config)
    check_analysis_domains(config)


def check_checkpoint_source(config: dict) -> None:
    """steps may be left out only for local checkpoints (found on disk); local needs its folders.
    The folders themselves are checked when the DAG is built (grokpath.sources.local_checkpoints)."""
    checkpoints = config["checkpoints"]
    source = checkpoints["source"]
    if source != "local" and "steps" not in checkpoints:
        raise GrokpathError(
            f"config key checkpoints.steps: required because checkpoints.source is {source!r}"
        )
    if source == "local":
        local = checkpoints.get("local") or {}
        if not local.get("path") and not local.get("folders"):
            raise GrokpathError(
                "config key checkpoints.local: required because checkpoints.source is 'local' "
                "(path: the folder of checkpoint-{step} folders, or folders: step -> folder)"
            )


def check_instruction_tuning(config: dict) -> None:
    tuning = config.get("instruction_tuning") or {}
    if not tuning.get("enabled"):
        return
    if tuning.get("format") == "alpaca" and not tuning.get("datasets"):
        raise GrokpathError(
            "config key instruction_tuning.datasets: required because instruction tuning is enabled "
            "with format 'alpaca' (name -> dataset, e.g. math: {path: meta-math/MetaMathQA, split: train})"
        )
    if tuning.get("format") == "lab" and config["corpus"]["source"] != "lab":
        raise GrokpathError(
            "config key instruction_tuning.format: 'lab' tunes on the lab corpus's prompt/answer "
            "samples, so it needs corpus.source 'lab'; use 'alpaca' with instruction_tuning.datasets"
        )


def check_analysis_domains(config: dict) -> None:
    """The analysis' figure domains must be configured domains (their defaults are math, code)."""
    figures = (config.get("analysis") or {}).get("figures")
    if not figures:
        return
    domains = list(config["domains"])
    named = [("analysis.figures.fig2_domain", figures.get("fig2_domain"))]
    named += [("analysis.figures.cross_domains", d) for d in figures.get("cross_domains") or []]
    for key, domain in named:
        if domain is not None and domain not in domains:
            raise GrokpathError(
                f"config key {key}: {domain!r} is not a configured domain ({', '.join(domains)}); "
                "set it to one (or `analysis: null` for no analysis)"
            )


def seeds_from_command_line(config: dict) -> None:
    """`--config seeds=[1,2]` hands Snakemake's YAML base loader's strings ('1', '2'): make the
    items that are whole numbers integers, in place, so that the schema checks the numbers."""
    seeds = config.get("seeds")
    if isinstance(seeds, list):
        config["seeds"] = [
            int(s) if isinstance(s, str) and s.strip().isdigit() else s for s in seeds
        ]


def analysis_from_command_line(config: dict) -> None:
    """`--config analysis=null` hands Snakemake's YAML base loader's string 'null': make it the
    null that turns the analysis off, in place."""
    if config.get("analysis") in ("null", "Null", "NULL", "~"):
        config["analysis"] = None


def seed_list(config: dict) -> list[int]:
    """The config's seeds: `seeds`, or `[seed]` without the key (the Snakefile's SEEDS)."""
    return [int(s) for s in config.get("seeds") or [config["seed"]]]


def seed_run(run: str, seed: int) -> str:
    """A seed's run name within a run of several seeds: its results are results/{run}/seed{N}/."""
    return f"{run}/seed{seed}"


def seed_run_config(config: dict, seed: int) -> dict:
    """The config one seed's module runs with: that seed alone, under results/{run}/seed{N}/."""
    single = copy.deepcopy(config)
    single.update(seed=int(seed), seeds=[int(seed)], run=seed_run(config["run"], seed))
    return single


def check_seeds(config: dict) -> None:
    """A run named {run}/seed{N} is one seed's part of a run of several (the workflow names it so):
    it runs seed N alone."""
    run, _, suffix = config["run"].partition("/")
    if not suffix:
        return
    seed = int(suffix.removeprefix("seed"))
    if config.get("seeds", [config["seed"]]) != [seed] or config["seed"] != seed:
        raise GrokpathError(
            f"config key run: {config['run']!r} names seed {seed}'s part of run {run!r}, so seed "
            f"must be {seed} and seeds [{seed}] (or absent); name the run {run!r} and list the "
            "seeds in `seeds` instead"
        )


def load_config(path: str | Path) -> dict:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise GrokpathError(f"{path}: cannot read config ({exc})") from None
    if not isinstance(config, dict):
        raise GrokpathError(f"{path}: expected a mapping at the top level")
    return validate_config(config)
