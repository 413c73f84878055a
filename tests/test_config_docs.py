"""Every config key is documented, and config/README.md is the reference generated from the schema."""

from grokpath.config_docs import README, Key, markdown, schema_keys, undocumented, walk


def test_every_schema_key_has_a_description():
    assert undocumented(schema_keys()) == []


def test_config_readme_is_generated_from_the_current_schema():
    assert README.read_text() == markdown(schema_keys()), (
        "config/README.md is stale: run `python -m grokpath.config_docs > config/README.md`"
    )


def test_walk_resolves_refs_names_domain_keys_and_reports_undocumented_ones():
    schema = {
        "$defs": {"count": {"type": "integer", "minimum": 1, "description": "how many"}},
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"$ref": "#/$defs/count"},
            "b": {"enum": ["x", "y"], "default": "x"},
            "domains": {"type": "object", "additionalProperties": {"type": "object", "description": "one domain"}},
        },
    }
    keys = walk(schema, schema)
    assert keys[0] == Key("a", True, "integer (>= 1)", "", "how many")
    assert keys[1] == Key("b", False, '`"x"` | `"y"`', '`"x"`', None)
    assert [k.path for k in keys] == ["a", "b", "domains", "domains.<domain>"]
    assert undocumented(keys) == ["b", "domains"]
    assert '`"x"` \\| `"y"`' in markdown(keys), "a | inside a cell is escaped"
