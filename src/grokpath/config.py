"""Config validation: the JSON schema first, then the rules a schema cannot say.

Every error is one line that names the key path (`domains.math.eps`) and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from grokpath.errors import GrokpathError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schemas" / "config.schema.yaml"


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


def validate_config(config: dict, schema: dict | None = None) -> dict:
    schema = schema or load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise GrokpathError(_describe(best))
    check_semantics(config)
    return config


def check_semantics(config: dict) -> None:
    steps = config["checkpoints"]["steps"]
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
    if source == "hub" and "hub" not in config["checkpoints"]:
        raise GrokpathError("config key checkpoints.hub: required because checkpoints.source is 'hub'")


def load_config(path: str | Path) -> dict:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise GrokpathError(f"{path}: cannot read config ({exc})") from None
    if not isinstance(config, dict):
        raise GrokpathError(f"{path}: expected a mapping at the top level")
    return validate_config(config)
