"""Schema defaults: every optional key has one, grokpath.config fills them in (nested objects, the
lab/hub branches, only from a oneOf/anyOf/if branch that applies), never over a given value and
never in the caller's dict; the example configs name only what differs, validate and dry-run."""

from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml

from grokpath.config import (
    DefaultFillingValidator,
    analysis_from_command_line,
    fill_defaults,
    load_config,
    load_schema,
    validate_config,
)
from grokpath.config_docs import resolve
from grokpath.errors import GrokpathError
from grokpath.sources.hub_corpus import normalize_source
from workflow_utils import ROOT, snakemake

EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))
QWEN3 = ROOT / "config" / "examples" / "qwen3_moe.yaml"
SHIPPED = [ROOT / "config" / n for n in ("config.yaml", "lab.yaml", "olmoe.yaml")] + [
    ROOT / "tests" / "configs" / "tiny.yaml"
]
LAB_DOMAINS = {
    "math": {"lab": {"generator": "modular_sum"}},
    "code": {"lab": {"generator": "traced_program"}},
    "commonsense": {"lab": {"generator": "ring_walk"}},
    "domain_specific": {"lab": {"generator": "element_product"}},
}


def minimal(**extra) -> dict:
    """A config that names only run, checkpoints and domains."""
    return {
        "run": "mini",
        "checkpoints": {"source": "lab", "steps": [10, 20]},
        "domains": copy.deepcopy(LAB_DOMAINS),
        **extra,
    }


def error_of(config) -> str:
    with pytest.raises(GrokpathError) as info:
        validate_config(config)
    assert "\n" not in str(info.value)
    return str(info.value)


def missing_defaults(node: dict, instance, schema: dict, where: str = "") -> list[str]:
    """Keys with a schema default that the filled `instance` lacks, wherever it has the parent."""
    node = resolve(node, schema)
    if not isinstance(instance, dict):
        return []
    missing = []
    for name, child in node.get("properties", {}).items():
        path = f"{where}.{name}" if where else name
        if name not in instance:
            if "default" in resolve(child, schema):
                missing.append(path)
            continue
        missing += missing_defaults(child, instance[name], schema, path)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for name, value in instance.items():
            if name not in node.get("properties", {}):
                missing += missing_defaults(extra, value, schema, f"{where}.{name}")
    return missing


def schema_nodes(node, path="$"):
    """Every subschema of the schema with its path (properties, items, branches, $defs, ...)."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for name, child in value.items():
                    yield from schema_nodes(child, f"{path}.{name}")
            elif key in ("items", "additionalProperties", "then", "else", "if", "not"):
                yield from schema_nodes(value, f"{path}.{key}")
            elif key in ("oneOf", "anyOf", "allOf"):
                for i, child in enumerate(value):
                    yield from schema_nodes(child, f"{path}.{key}[{i}]")


def is_subset(given, filled) -> bool:
    """Every value `given` names is in `filled` unchanged (filled may add keys)."""
    if isinstance(given, dict):
        return isinstance(filled, dict) and all(
            k in filled and is_subset(v, filled[k]) for k, v in given.items()
        )
    return given == filled and type(given) is type(filled)


# ---------------------------------------------------------------- the schema's defaults


def test_a_config_naming_only_run_checkpoints_and_domains_gets_every_default():
    config = validate_config(minimal())
    schema = load_schema()
    assert missing_defaults(schema, config, schema) == []
    assert (config["seed"], config["device"], config["corpus"]["source"]) == (20261127, "auto", "lab")
    assert config["domains"]["math"]["eps"] == "auto"
    assert config["domains"]["code"]["lab"]["params"] == {
        "modulus": 47, "n_choices": 4, "variables": ["x", "y", "z", "w"], "shuffle_statements": True,
    }  # fmt: skip
    assert config["domains"]["commonsense"]["lab"]["train_fraction"] == 0.5
    assert config["model"]["num_experts"] == 8 and config["model"]["init_scale"] == 1.0
    assert config["pretrain"]["grokfast"] == {"alpha": 0.98, "lamb": 2.0}
    assert config["pretrain"]["weight_decay_schedule"] is None and config["pretrain"]["compile"] is False
    assert config["loss"] == {"batch_size": 16, "max_length": 2048, "append_eos": False, "span": "all",
                              "checkpoints_per_job": 1}
    assert config["memorization"] == {"delta": 0.05, "eps_step": 0.1, "target_fraction": 0.2}
    assert config["pathways"]["threshold"] == 0.7 and config["pathways"]["weights"] == "scores"
    assert config["evaluation"]["contamination"] == {"min_k": 0.2, "fraction": 0.1}
    assert config["evaluation"]["generalization"]["max_misses"] == 1
    assert config["evaluation"]["matching"]["embedding"] == "tfidf"
    assert config["instruction_tuning"]["enabled"] is False
    assert config["instruction_tuning"]["target_modules"] == ["q_proj", "k_proj", "v_proj"]
    assert config["analysis"]["theory"]["routing_specificity"] == [0.0, 1.0]
    assert config["analysis"]["figures"]["fig4_groups"] == "auto"
    assert config["analysis"]["summary"] == {"strong_r": 0.8, "weak_r": 0.5, "alpha": 0.05}
    # derived from corpus.source lab (grokpath.config.fill_derived)
    assert config["evaluation"]["task_dir"] == "config/lm_eval_tasks/lab"
    assert config["evaluation"]["tasks"] == {d: f"lab_{d}" for d in LAB_DOMAINS}


def test_hub_branch_defaults_fill_train_and_test_sources_as_the_corpus_code_reads_them():
    source = {"path": "some/texts", "split": "train"}
    test = {"path": "some/questions", "split": "test", "prompt_field": "q", "answer_field": "a"}
    config = minimal(corpus={"source": "hub"}, evaluation={"tasks": {"math": "t"}})
    config["domains"] = {
        "math": {"hub": {"train": source, "valid": {**source, "streaming": True}, "test": test}}
    }
    config["checkpoints"] = {"source": "hub", "steps": [1, 2], "hub": {"repo_id": "allenai/OLMoE-1B-7B-0924"}}
    config["analysis"] = None
    filled = validate_config(config)
    hub = filled["domains"]["math"]["hub"]
    assert hub["output_type"] is None
    assert hub["train"]["text_field"] == "text" and hub["train"]["buffer_size"] == 10000
    assert hub["valid"]["streaming"] is True and hub["train"]["streaming"] is False
    assert "text_field" not in hub["test"] and hub["test"]["choices_field"] is None
    assert filled["corpus"]["counts"] == {"n_train": 10000, "n_valid": 1000, "n_test": 1000}
    assert filled["evaluation"]["task_dir"] == "config/lm_eval_tasks/paper"
    assert filled["checkpoints"]["hub"] == {
        "repo_id": "allenai/OLMoE-1B-7B-0924", "revisions": {}, "temp": False, "allow_patterns": None,
    }  # fmt: skip
    # the schema's defaults are grokpath.sources.hub_corpus's own: the filled sources pass its check (no key
    # it does not know) and come out as the sources as written do
    given = config["domains"]["math"]["hub"]
    for split in ("train", "valid", "test"):
        where = f"domains.math.{split}"
        assert normalize_source(hub[split], split, where) == normalize_source(given[split], split, where)


def test_no_key_is_both_required_and_defaulted_and_every_default_is_valid():
    schema = load_schema()
    for path, node in schema_nodes(schema):
        for name in node.get("required", []):
            child = node.get("properties", {}).get(name, {})
            assert "default" not in child, f"{path}.{name} is required and has a default"
        if "default" in node:
            bare = {k: v for k, v in node.items() if k != "default"}
            errors = list(
                jsonschema.Draft202012Validator({"$defs": schema["$defs"], **bare}).iter_errors(
                    node["default"]
                )
            )
            assert not errors, f"{path}: default {node['default']!r} is invalid: {errors[0].message}"


# ---------------------------------------------------------------- given values, the caller's dict


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_defaults_never_override_a_value_the_config_gives(path):
    raw = yaml.safe_load(path.read_text())
    before = copy.deepcopy(raw)
    filled = validate_config(raw)
    assert raw == before, "the caller's dict is left alone"
    assert is_subset(raw, filled)


def test_falsy_and_partial_values_are_kept_and_only_the_rest_is_filled():
    config = minimal(
        pretrain={"warmup_steps": 0, "grad_clip": 0, "grokfast": None, "compile": True},
        loss={"batch_size": 512},
        pathways={"max_per_domain": 10},
        analysis={"figures": {"fig4_groups": [10], "fig5_group": 20}, "theory": {"n_seeds": 3}},
    )
    config["domains"]["math"]["lab"]["params"] = {"modulus": 11}
    config["domains"]["code"]["eps"] = 1.5
    filled = validate_config(config)
    assert filled["pretrain"]["warmup_steps"] == 0 and filled["pretrain"]["grad_clip"] == 0
    assert filled["pretrain"]["grokfast"] is None  # the null branch: no alpha/lamb filled in
    assert filled["pretrain"]["compile"] is True and filled["pretrain"]["lr"] == 0.002
    assert filled["loss"] == {"batch_size": 512, "max_length": 2048, "append_eos": False, "span": "all",
                              "checkpoints_per_job": 1}
    assert filled["pathways"]["max_per_domain"] == 10
    assert (
        filled["analysis"]["figures"]["fig4_groups"] == [10]
        and filled["analysis"]["figures"]["fig5_group"] == 20
    )
    assert filled["analysis"]["figures"]["fig6_groups"] == "auto"
    assert filled["analysis"]["theory"]["n_seeds"] == 3 and filled["analysis"]["theory"]["dim"] == 100
    assert filled["domains"]["math"]["lab"]["params"]["modulus"] == 11
    assert filled["domains"]["code"]["eps"] == 1.5


def test_the_filled_config_is_a_copy_that_shares_nothing_with_the_schema():
    config = minimal()
    first = validate_config(config)
    assert "seed" not in config and first is not config
    first["analysis"]["figures"]["cross_domains"].append("commonsense")
    first["pretrain"]["grokfast"]["alpha"] = 0.5
    second = validate_config(config)
    assert second["analysis"]["figures"]["cross_domains"] == ["math", "code"]
    assert second["pretrain"]["grokfast"]["alpha"] == 0.98


def test_grokfast_object_branch_fills_its_own_defaults():
    filled = validate_config(minimal(pretrain={"grokfast": {"alpha": 0.9}}))
    assert filled["pretrain"]["grokfast"] == {"alpha": 0.9, "lamb": 2.0}


# ---------------------------------------------------------------- branches


SHAPES = {
    "$defs": {
        "circle": {
            "type": "object", "additionalProperties": False, "required": ["kind"],
            "properties": {"kind": {"const": "circle"}, "radius": {"type": "number", "default": 1}},
        },
        "square": {
            "type": "object", "additionalProperties": False, "required": ["kind"],
            "properties": {"kind": {"const": "square"}, "side": {"type": "number", "default": 2}},
        },
    },
    "type": "object",
    "properties": {
        "one": {"oneOf": [{"$ref": "#/$defs/circle"}, {"$ref": "#/$defs/square"}]},
        "any": {"anyOf": [{"$ref": "#/$defs/circle"}, {"$ref": "#/$defs/square"}]},
        "cond": {
            "type": "object",
            "if": {"properties": {"kind": {"const": "a"}, "probe": {"default": "from if"}}, "required": ["kind"]},
            "then": {"properties": {"a_only": {"default": "then"}}},
            "else": {"properties": {"other": {"default": "else"}}},
        },
    },
}  # fmt: skip


def filled_shapes(instance: dict) -> tuple[dict, list]:
    return fill_defaults(instance, SHAPES)


def test_a_oneof_branch_that_does_not_match_fills_nothing():
    filled, errors = filled_shapes({"one": {"kind": "square"}, "any": {"kind": "square"}})
    assert errors == []
    assert filled["one"] == {"kind": "square", "side": 2}  # no radius from the circle branch
    assert filled["any"] == {"kind": "square", "side": 2}
    filled, errors = filled_shapes({"one": {"kind": "circle"}})
    assert errors == [] and filled["one"] == {"kind": "circle", "radius": 1}


def test_the_naive_properties_only_filler_gets_the_same_case_wrong():
    """Why branches are tried on copies: the textbook extension (only `properties` overridden)
    fills the circle branch's radius into a square, which the square branch then rejects."""
    base = jsonschema.Draft202012Validator

    def naive_properties(validator, properties, instance, schema):
        if validator.is_type(instance, "object"):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    naive = jsonschema.validators.extend(base, {"properties": naive_properties})
    instance = {"one": {"kind": "square"}}
    errors = list(naive(SHAPES).iter_errors(instance))
    assert errors or "radius" in instance["one"]
    assert not list(DefaultFillingValidator(SHAPES).iter_errors({"one": {"kind": "square"}}))


def test_if_fills_only_then_or_else_never_the_if_schema_itself():
    filled, errors = filled_shapes({"cond": {"kind": "a"}})
    assert errors == [] and filled["cond"] == {"kind": "a", "a_only": "then"}
    filled, errors = filled_shapes({"cond": {"kind": "b"}})
    assert errors == [] and filled["cond"] == {"kind": "b", "other": "else"}


def test_a_config_matching_no_branch_gets_the_usual_error_and_no_defaults():
    instance = {"one": {"kind": "triangle"}}
    filled, errors = filled_shapes(instance)
    assert errors and "is not valid under any of the given schemas" in errors[0].message
    assert filled["one"] == {"kind": "triangle"} and instance == {"one": {"kind": "triangle"}}


# ---------------------------------------------------------------- analysis, derived defaults, checks


def test_analysis_runs_with_defaults_when_omitted_and_null_turns_it_off():
    assert validate_config(minimal())["analysis"]["correlation"]["window"] == "paper"
    assert validate_config(minimal(analysis=None))["analysis"] is None
    command_line = minimal(analysis="null")  # Snakemake's --config analysis=null
    analysis_from_command_line(command_line)
    assert validate_config(command_line)["analysis"] is None


def test_analysis_figure_domains_must_be_configured_domains():
    config = minimal()
    config["domains"] = {"web": LAB_DOMAINS["math"], "code": LAB_DOMAINS["code"]}
    config["evaluation"] = {"tasks": {"web": "lab_math", "code": "lab_code"}}
    assert "analysis.figures.fig2_domain: 'math' is not a configured domain (web, code)" in error_of(config)
    config["analysis"] = {"figures": {"fig2_domain": "web", "cross_domains": ["web", "code"]}}
    validate_config(config)


def test_lab_tasks_follow_the_domains_and_instruction_tuning():
    tuned = validate_config(minimal(instruction_tuning={"enabled": True, "format": "lab"}))
    assert tuned["evaluation"]["tasks"]["math"] == "lab_math_instruct"
    config = minimal(analysis=None)
    config["domains"]["physics"] = LAB_DOMAINS["math"]  # no lab task YAML for it
    message = error_of(config)
    assert "evaluation.tasks: required" in message and "lab_physics" in message


def test_hub_corpus_needs_its_tasks_named():
    source = {"path": "p", "split": "s"}
    config = minimal(corpus={"source": "hub"}, analysis=None)
    config["checkpoints"] = {"source": "hub", "steps": [1, 2], "hub": {"repo_id": "r"}}
    config["domains"] = {
        "math": {
            "hub": {
                "train": source,
                "valid": source,
                "test": {**source, "prompt_field": "q", "answer_field": "a"},
            }
        }
    }
    assert "evaluation.tasks: required because corpus.source is 'hub'" in error_of(config)


def test_instruction_tuning_settings_that_cannot_run_stop_at_validation():
    assert "instruction_tuning.datasets: required" in error_of(minimal(instruction_tuning={"enabled": True}))
    config = minimal(
        instruction_tuning={
            "enabled": True,
            "format": "alpaca",
            "datasets": {"m": {"path": "p", "split": "train"}},
        }
    )
    assert validate_config(config)["instruction_tuning"]["datasets"]["m"]["streaming"] is False
    source = {"path": "p", "split": "s"}
    hub = minimal(
        corpus={"source": "hub"},
        instruction_tuning={"enabled": True, "format": "lab"},
        evaluation={"tasks": {"math": "t"}},
        analysis=None,
    )
    hub["checkpoints"] = {"source": "hub", "steps": [1, 2], "hub": {"repo_id": "r"}}
    hub["domains"] = {
        "math": {
            "hub": {
                "train": source,
                "valid": source,
                "test": {**source, "prompt_field": "q", "answer_field": "a"},
            }
        }
    }
    assert "instruction_tuning.format: 'lab'" in error_of(hub)


# ---------------------------------------------------------------- example configs


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_are_valid(path):
    load_config(path)


def test_qwen3_example_is_short_and_names_only_what_differs():
    text = QWEN3.read_text()
    assert len(text.splitlines()) <= 30
    raw = yaml.safe_load(text)
    config = load_config(QWEN3)
    assert config["checkpoints"]["hub"]["repo_id"] == "Qwen/Qwen3-30B-A3B"
    assert (
        config["corpus"]["source"] == "hub"
        and config["evaluation"]["task_dir"] == "config/lm_eval_tasks/paper"
    )
    schema = load_schema()
    for block in ("pathways", "memorization", "instruction_tuning", "analysis"):
        assert block not in raw, f"{block} is all defaults: the example should not repeat it"
    assert missing_defaults(schema, config, schema) == []


def test_qwen3_example_dry_runs_offline(tmp_path):
    result = snakemake(tmp_path, QWEN3, "-n", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    steps = yaml.safe_load(QWEN3.read_text())["checkpoints"]["steps"]
    assert out.count("rule download_checkpoint:") == len(steps)
    assert out.count("rule sample_loss:") == len(steps) and out.count("rule extract_pathways:") == len(steps)
    assert "rule summary:" in out and "rule sample_hub_corpus:" in out


def test_readme_configuration_example_is_valid():
    section = (ROOT / "README.md").read_text().split("## Configuration\n", 1)[1].split("\n## ", 1)[0]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = validate_config(yaml.safe_load(example))
    assert config["loss"]["span"] == "answer" and config["evaluation"]["tasks"] == {
        "math": "lab_math",
        "code": "lab_code",
    }
