"""Sample the paper-scale corpus from configured datasets (rule `sample_hub_corpus`).

For each domain, a seeded sample of pretraining data ("train": text the model saw), held-out
data ("valid": same kind of text, not trained on) and test items ("test") is drawn with
`datasets.load_dataset` and written in the layout of docs/tables.md:
`{outdir}/{domain}/{train,valid,test}.jsonl` and `{outdir}/manifest.json`.

Config shape, `domains` (one entry per domain):

    chemistry:
      output_type: multiple_choice   # optional: derived from test.choices_field when absent
      train:                         # a text source
        path: allenai/olmoe-mix-0924 # any load_dataset `path` ("json" for local files)
        name: null                   # dataset config name
        split: train                 # split (slicing such as "train[:10%]" works non-streaming)
        data_files: null             # str | list | dict, passed to load_dataset
        data_dir: null
        revision: null               # dataset repo revision; pin it for a reproducible sample
        streaming: false             # true: stream with a buffered shuffle instead of downloading
        buffer_size: 10000           # streaming shuffle buffer (rows)
        filter_contains: null        # keep only rows whose filter_field contains this substring
        filter_field: null           # default: text_field (train/valid), prompt_field (test)
        text_field: text             # the sample as the LM sees it
      valid: {same keys as train}
      test:                          # a test source: same source keys as train, plus
        prompt_field: question       # context given to the model
        answer_field: answer         # gold answer string; may be null when label_field is set
        choices_field: null          # multiple choice: a field holding a list of choices,
                                     #   or a list of fields holding one choice each
        label_field: null            # multiple choice: index of the answer in the choices
                                     #   (an int, or a letter A, B, ...); without it the label is
                                     #   the position of the answer_field value among the choices

Field names may be dotted to reach into nested records ("choices.text"). Only the keys above are
accepted, so a misspelt key fails instead of being silently ignored.

`counts` = {n_train, n_valid, n_test}: rows wanted per domain and split. A dataset with fewer
(matching) rows gives all it has (logged, and the manifest records the real counts); one with
none is an error.

Sampling: each (domain, split) gets its own seed derived from the run seed, the rows are shuffled
(non-streaming: a full permutation; streaming: shard order plus a `buffer_size` buffer, so only
approximately uniform) and the first n that pass the filter are kept, which is a uniform sample of
the matching rows. Empty texts and repeated texts are skipped; valid rows never repeat a train text,
so a domain whose train and valid read the same source still gets disjoint samples.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Iterable, Iterator

from tqdm import tqdm

from grokpath.errors import GrokpathError
from grokpath.tableio import write_json, write_jsonl

log = logging.getLogger("grokpath.sources.hub_corpus")

SPLITS = ("train", "valid", "test")
COUNT_KEYS = {"train": "n_train", "valid": "n_valid", "test": "n_test"}
OUTPUT_TYPES = ("generate_until", "multiple_choice")

SOURCE_DEFAULTS = {
    "name": None,
    "data_files": None,
    "data_dir": None,
    "revision": None,
    "streaming": False,
    "buffer_size": 10_000,
    "filter_contains": None,
    "filter_field": None,
}
TEXT_DEFAULTS = {**SOURCE_DEFAULTS, "text_field": "text"}
TEST_DEFAULTS = {
    **SOURCE_DEFAULTS,
    "answer_field": None,
    "choices_field": None,
    "label_field": None,
}
REQUIRED = {"text": ("path", "split"), "test": ("path", "split", "prompt_field")}


# --- config -------------------------------------------------------------------------------


def normalize_source(spec, split_name: str, where: str) -> dict:
    """Fill in defaults; unknown or missing keys fail naming `where` (e.g. domains.math.train)."""
    if not isinstance(spec, dict):
        raise GrokpathError(f"{where}: expected a mapping, got {type(spec).__name__}")
    kind = "test" if split_name == "test" else "text"
    defaults = TEST_DEFAULTS if kind == "test" else TEXT_DEFAULTS
    allowed = set(defaults) | set(REQUIRED[kind])
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise GrokpathError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(allowed))}"
        )
    missing = [key for key in REQUIRED[kind] if spec.get(key) in (None, "")]
    if missing:
        raise GrokpathError(f"{where}: missing key(s) {', '.join(missing)}")
    spec = {**defaults, **spec}
    if kind == "test" and spec["answer_field"] is None and spec["label_field"] is None:
        raise GrokpathError(f"{where}: set answer_field or label_field")
    if kind == "test" and spec["label_field"] is not None and spec["choices_field"] is None:
        raise GrokpathError(f"{where}: label_field needs choices_field")
    if spec["filter_field"] is None:
        spec["filter_field"] = spec["prompt_field"] if kind == "test" else spec["text_field"]
    if not isinstance(spec["buffer_size"], int) or spec["buffer_size"] < 1:
        raise GrokpathError(f"{where}.buffer_size: expected a positive integer")
    if not isinstance(spec["streaming"], bool):
        raise GrokpathError(f"{where}.streaming: expected true or false")
    if spec["filter_contains"] is not None and not isinstance(spec["filter_contains"], str):
        raise GrokpathError(f"{where}.filter_contains: expected a string")
    return spec


def domain_output_type(domain_spec: dict, where: str) -> str:
    """`multiple_choice` when the test source names choices; an explicit output_type must agree."""
    derived = "multiple_choice" if domain_spec["test"].get("choices_field") else "generate_until"
    given = domain_spec.get("output_type")
    if given is None:
        return derived
    if given not in OUTPUT_TYPES:
        raise GrokpathError(
            f"{where}.output_type: {given!r} is not one of {', '.join(OUTPUT_TYPES)}"
        )
    if given != derived:
        raise GrokpathError(
            f"{where}.output_type: {given!r} disagrees with test.choices_field "
            f"({'set' if derived == 'multiple_choice' else 'unset'})"
        )
    return given


def check_domain(domain_spec, where: str) -> None:
    if not isinstance(domain_spec, dict):
        raise GrokpathError(f"{where}: expected a mapping with train, valid and test")
    missing = [split for split in SPLITS if split not in domain_spec]
    if missing:
        raise GrokpathError(f"{where}: missing key(s) {', '.join(missing)}")
    unknown = sorted(set(domain_spec) - set(SPLITS) - {"output_type"})
    if unknown:
        raise GrokpathError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            "expected output_type, train, valid, test"
        )


def check_counts(counts) -> dict[str, int]:
    if not isinstance(counts, dict):
        raise GrokpathError(f"counts: expected a mapping with {', '.join(COUNT_KEYS.values())}")
    checked = {}
    for key in COUNT_KEYS.values():
        value = counts.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GrokpathError(f"counts.{key}: expected a positive integer, got {value!r}")
        checked[key] = value
    return checked


# --- sampling -------------------------------------------------------------------------------


def derive_seed(seed: int, domain: str, split_name: str) -> int:
    """A seed per (domain, split): two splits read from one source get different shuffles."""
    digest = hashlib.sha256(f"{seed}/{domain}/{split_name}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def describe_source(spec: dict) -> str:
    parts = [repr(spec["path"])]
    if spec["name"]:
        parts.append(f"name={spec['name']!r}")
    parts.append(f"split={spec['split']!r}")
    if spec["data_files"]:
        parts.append(f"data_files={spec['data_files']!r}")
    return "dataset " + " ".join(parts)


def load_source(spec: dict, where: str, cache_dir: str | os.PathLike | None):
    # Imported here: datasets takes seconds to import and only sampling needs it.
    import datasets

    try:
        return datasets.load_dataset(
            spec["path"],
            name=spec["name"],
            split=spec["split"],
            data_files=spec["data_files"],
            data_dir=spec["data_dir"],
            revision=spec["revision"],
            streaming=spec["streaming"],
            cache_dir=str(cache_dir) if cache_dir is not None else None,
        )
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0] if lines else type(exc).__name__
        raise GrokpathError(f"{where}: cannot load {describe_source(spec)}: {reason}") from None


def shuffled_rows(dataset, spec: dict, seed: int) -> Iterator[dict]:
    if spec["streaming"]:
        return iter(dataset.shuffle(seed=seed, buffer_size=spec["buffer_size"]))
    # In memory: only the index permutation is built, and nothing is written next to the data.
    return iter(dataset.shuffle(seed=seed, keep_in_memory=True))


def field_value(row: dict, field: str, where: str):
    value = row
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            available = ", ".join(sorted(row)) if isinstance(row, dict) else "none"
            raise GrokpathError(f"{where}: row has no field {field!r} (fields: {available})")
        value = value[part]
    return value


def text_of(row: dict, field: str, where: str) -> str:
    value = field_value(row, field, where)
    if not isinstance(value, str):
        raise GrokpathError(f"{where}: field {field!r} holds {type(value).__name__}, expected text")
    return value


def choices_of(row: dict, choices_field, where: str) -> list[str]:
    if isinstance(choices_field, list):
        return [str(field_value(row, field, where)) for field in choices_field]
    value = field_value(row, choices_field, where)
    if not isinstance(value, list) or not value:
        raise GrokpathError(
            f"{where}: field {choices_field!r} holds {value!r}, expected a list of choices"
        )
    return [str(choice) for choice in value]


def label_of(row: dict, spec: dict, choices: list[str], where: str) -> int:
    if spec["label_field"] is None:
        answer = str(field_value(row, spec["answer_field"], where))
        if answer not in choices:
            raise GrokpathError(
                f"{where}: answer {answer!r} (field {spec['answer_field']!r}) "
                f"is not among the choices {choices!r}"
            )
        return choices.index(answer)
    raw = field_value(row, spec["label_field"], where)
    if isinstance(raw, int) and not isinstance(raw, bool):
        label = raw
    elif isinstance(raw, str) and len(raw) == 1 and raw.isalpha():
        label = ord(raw.upper()) - ord("A")
    else:
        label = -1
    if not 0 <= label < len(choices):
        raise GrokpathError(
            f"{where}: label {raw!r} (field {spec['label_field']!r}) "
            f"is not an index into {len(choices)} choices"
        )
    return label


def text_row(row: dict, spec: dict, where: str) -> str | None:
    """The text of a train/valid row, or None for a row to skip (empty)."""
    text = text_of(row, spec["text_field"], where)
    return text if text.strip() else None


def build_test_item(row: dict, spec: dict, where: str) -> dict:
    item = {"prompt": text_of(row, spec["prompt_field"], where)}
    if spec["choices_field"] is None:
        item["answer"] = str(field_value(row, spec["answer_field"], where))
        return item
    choices = choices_of(row, spec["choices_field"], where)
    label = label_of(row, spec, choices, where)
    item.update(choices=choices, label=label, answer=choices[label])
    return item


def passes_filter(row: dict, spec: dict, where: str) -> bool:
    if spec["filter_contains"] is None:
        return True
    return spec["filter_contains"] in str(field_value(row, spec["filter_field"], where))


def sample_domain(
    spec: dict,
    n: int,
    seed: int,
    split_name: str,
    *,
    domain: str,
    exclude_texts: Iterable[str] = (),
    cache_dir: str | os.PathLike | None = None,
) -> list[dict]:
    """Draw up to `n` rows of one domain's split ("train", "valid" or "test") in the corpus layout.

    train/valid rows: {sample_id, domain, text}; test rows: {doc_id, domain, prompt, answer} plus
    {choices, label} for multiple choice. `exclude_texts` are texts not to draw (the train
    sample, when drawing valid). `seed` is the run seed; the split's own seed is derived from it.
    """
    if split_name not in SPLITS:
        raise GrokpathError(f"split {split_name!r}: expected one of {', '.join(SPLITS)}")
    where = f"domains.{domain}.{split_name}"
    spec = normalize_source(spec, split_name, where)
    dataset = load_source(spec, where, cache_dir)
    rows = shuffled_rows(dataset, spec, derive_seed(seed, domain, split_name))

    if split_name == "test":
        items = take_test_items(rows, spec, n, where)
        out = [{"doc_id": i, "domain": domain, **item} for i, item in enumerate(items)]
    else:
        texts = take_texts(rows, spec, n, set(exclude_texts), where)
        out = [
            {"sample_id": f"{domain}-{split_name}-{i:05d}", "domain": domain, "text": text}
            for i, text in enumerate(texts)
        ]

    if not out:
        filtered = (
            f" containing {spec['filter_contains']!r} in {spec['filter_field']!r}"
            if spec["filter_contains"] is not None
            else ""
        )
        raise GrokpathError(
            f"{where}: no rows{filtered} in {describe_source(spec)} for domain {domain}"
        )
    if len(out) < n:
        log.warning(
            "%s: %s has only %d usable rows of %d wanted", where, describe_source(spec), len(out), n
        )
    return out


def take_texts(
    rows: Iterator[dict], spec: dict, n: int, exclude: set[str], where: str
) -> list[str]:
    texts: list[str] = []
    seen = set(exclude)
    with tqdm(total=n, desc=where, unit="row", mininterval=5) as progress:
        for row in rows:
            if not passes_filter(row, spec, where):
                continue
            text = text_row(row, spec, where)
            if text is None or text in seen:
                continue
            seen.add(text)
            texts.append(text)
            progress.update()
            if len(texts) == n:
                break
    return texts


def take_test_items(rows: Iterator[dict], spec: dict, n: int, where: str) -> list[dict]:
    items: list[dict] = []
    with tqdm(total=n, desc=where, unit="item", mininterval=5) as progress:
        for row in rows:
            if not passes_filter(row, spec, where):
                continue
            items.append(build_test_item(row, spec, where))
            progress.update()
            if len(items) == n:
                break
    return items


# --- corpus ---------------------------------------------------------------------------------


def write_hub_corpus(
    domains: dict,
    counts: dict,
    seed: int,
    outdir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    """Sample every domain and write `{outdir}/{domain}/{split}.jsonl`, then the manifest (last,
    so its presence means the corpus is complete). Returns the manifest."""
    if not isinstance(domains, dict) or not domains:
        raise GrokpathError("domains: expected a non-empty mapping of domain name to sources")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise GrokpathError(f"seed: expected an integer, got {seed!r}")
    counts = check_counts(counts)
    outdir = Path(outdir)
    # Checked all at once up front, so a typo in the last domain fails before hours of sampling.
    output_types = {}
    for domain, domain_spec in domains.items():
        where = f"domains.{domain}"
        check_domain(domain_spec, where)
        for split_name in SPLITS:
            normalize_source(domain_spec[split_name], split_name, f"{where}.{split_name}")
        output_types[domain] = domain_output_type(domain_spec, where)

    manifest = {"domains": {}, "seed": seed, "source": "hub"}
    for domain, domain_spec in domains.items():
        sampled = sample_splits(domain, domain_spec, counts, seed, cache_dir)
        for split_name, rows in sampled.items():
            write_jsonl(rows, outdir / domain / f"{split_name}.jsonl")
        manifest["domains"][domain] = {
            "output_type": output_types[domain],
            **{COUNT_KEYS[s]: len(rows) for s, rows in sampled.items()},
            "sources": {s: domain_spec[s] for s in SPLITS},
        }
        log.info("%s: %s", domain, ", ".join(f"{len(r)} {s}" for s, r in sampled.items()))
    write_json(manifest, outdir / "manifest.json")
    return manifest


def sample_splits(
    domain: str, domain_spec: dict, counts: dict, seed: int, cache_dir
) -> dict[str, list[dict]]:
    train = sample_domain(
        domain_spec["train"], counts["n_train"], seed, "train", domain=domain, cache_dir=cache_dir
    )
    valid = sample_domain(
        domain_spec["valid"],
        counts["n_valid"],
        seed,
        "valid",
        domain=domain,
        exclude_texts={row["text"] for row in train},
        cache_dir=cache_dir,
    )
    test = sample_domain(
        domain_spec["test"], counts["n_test"], seed, "test", domain=domain, cache_dir=cache_dir
    )
    return {"train": train, "valid": valid, "test": test}
