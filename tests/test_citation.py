"""CITATION.cff is valid Citation File Format 1.2.0 and names the paper as the preferred citation.

The schema is the CFF project's own (schema.json of CFF 1.2.0, as shipped by cffconvert 2.0.0),
stored in tests/data so the check runs offline with the jsonschema the repo already pins.
"""

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "data" / "citation-cff-1.2.0.schema.json").read_text())


def load_citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_validates_against_the_cff_schema():
    citation = load_citation()
    jsonschema.validate(citation, SCHEMA, cls=jsonschema.Draft7Validator)


def test_the_paper_is_the_preferred_citation():
    preferred = load_citation()["preferred-citation"]
    assert "arXiv:2506.21551" in json.dumps(preferred)
    assert [a["family-names"] for a in preferred["authors"]] == ["Li", "Fan", "Zhou"]


def test_an_invalid_citation_is_refused():
    citation = load_citation()
    del citation["title"]
    try:
        jsonschema.validate(citation, SCHEMA, cls=jsonschema.Draft7Validator)
    except jsonschema.ValidationError as exc:
        assert "title" in str(exc)
    else:
        raise AssertionError("a CITATION.cff without a title passed the schema")
