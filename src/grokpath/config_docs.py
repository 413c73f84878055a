"""config/README.md, generated from config/schemas/config.schema.yaml: every key, documented.

    python -m grokpath.config_docs > config/README.md      # regenerate after a schema change
    python -m grokpath.config_docs --check                  # exit 1 when config/README.md is stale

tests/test_config_docs.py fails when a key has no description or the file is stale, so the
reference cannot drift from the schema the workflow validates against.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "config" / "schemas" / "config.schema.yaml"
README = ROOT / "config" / "README.md"
HEADER = """# Configuration reference

Generated from `config/schemas/config.schema.yaml` by `python -m grokpath.config_docs`; do not
edit by hand. Every config is validated against that schema when the workflow starts, and an
unknown key is rejected. `config/config.yaml` (quick lab), `config/lab.yaml` (full lab) and
`config/olmoe.yaml` (paper scale) are complete examples; `config/examples/` holds short ones that
name only what differs from the defaults. A key with a default may be left out (the validator fills
it in, nested blocks included). `<domain>` stands for a domain name (a key under `domains`),
`<step>` for a checkpoint step and `<name>` for a name of your choosing.

| key | required | allowed values | default | description |
|---|---|---|---|---|
"""


@dataclass(frozen=True)
class Key:
    path: str
    required: bool
    allowed: str
    default: str
    description: str | None


def resolve(node: dict, schema: dict) -> dict:
    """Follow `$ref: "#/$defs/name"`, keeping the referring node's own description/default."""
    while "$ref" in node:
        target = schema["$defs"][node["$ref"].split("/")[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def allowed_values(node: dict, schema: dict) -> str:
    node = resolve(node, schema)
    if "enum" in node:
        return " | ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    for combinator in ("oneOf", "anyOf"):
        if combinator in node:
            return " or ".join(allowed_values(option, schema) for option in node[combinator])
    kind = node.get("type", "object" if "properties" in node else "any")
    text = " or ".join(kind) if isinstance(kind, list) else str(kind)
    bounds = [f"{op} {node[key]}" for key, op in
              (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
              if key in node]  # fmt: skip
    if kind == "array" and "items" in node:
        text = f"list of {allowed_values(node['items'], schema)}"
    return text + (f" ({', '.join(bounds)})" if bounds else "")


# What a key of a free-form mapping (`additionalProperties`) stands for, where it is not a domain.
KEY_NAMES = {
    "checkpoints.hub.revisions": "<step>",
    "checkpoints.local.folders": "<step>",
    "instruction_tuning.datasets": "<name>",
}


def walk(node: dict, schema: dict, prefix: str = "", required: bool = True) -> list[Key]:
    node = resolve(node, schema)
    keys = []
    if prefix:
        default = json.dumps(node["default"]) if "default" in node else ""
        keys.append(Key(prefix, required, allowed_values(node, schema), default and f"`{default}`",
                        node.get("description")))  # fmt: skip
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        keys += walk(child, schema, path, name in node.get("required", []))
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        name = KEY_NAMES.get(prefix, "<domain>")
        keys += walk(extra, schema, f"{prefix}.{name}" if prefix else name, False)
    return keys


def schema_keys(schema: dict | None = None) -> list[Key]:
    schema = schema or yaml.safe_load(SCHEMA.read_text())
    return walk(schema, schema)


def undocumented(keys: list[Key]) -> list[str]:
    return [key.path for key in keys if not (key.description or "").strip()]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown(keys: list[Key]) -> str:
    rows = [f"| `{k.path}` | {'yes' if k.required else 'no'} | {_cell(k.allowed)} | {k.default} | "
            f"{_cell(k.description or '')} |" for k in keys]  # fmt: skip
    return HEADER + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when config/README.md is stale")
    args = parser.parse_args(argv)
    text = markdown(schema_keys())
    if args.check:
        stale = not README.exists() or README.read_text() != text
        print(f"{README}: {'stale, regenerate it' if stale else 'up to date'}")
        return int(stale)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
