"""grokpath.sources.hub_corpus on small local JSON datasets (loaded with path "json"), fully offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grokpath.errors import GrokpathError
from grokpath.sources.hub_corpus import sample_domain, write_hub_corpus
from grokpath.tableio import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
N_DOCS = 120
N_CHEMISTRY = 15  # docs whose text mentions "Organic Chemistry"


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network: the hub client and datasets both refuse to go online, caches live in tmp_path."""
    import datasets
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_home" / "datasets"))


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "datasets_cache"


def write_json_lines(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.fixture
def data(tmp_path) -> dict[str, str]:
    """Local stand-ins for a pretraining mix and three kinds of test set."""
    docs = [
        {
            "id": i,
            "text": f"Document {i}: "
            + ("Organic Chemistry of alkenes." if i % 8 == 0 else "plain prose."),
            "meta": {"source": "web" if i % 2 else "books"},
        }
        for i in range(N_DOCS)
    ]
    docs.append({"id": N_DOCS, "text": "   ", "meta": {"source": "web"}})  # empty: must be skipped
    half = N_DOCS // 2
    folder = tmp_path / "data"
    return {
        "mix": write_json_lines(folder / "mix.jsonl", docs),
        "mix_shard_a": write_json_lines(folder / "shards" / "a.jsonl", docs[:half]),
        "mix_shard_b": write_json_lines(folder / "shards" / "b.jsonl", docs[half:]),
        "heldout": write_json_lines(
            folder / "heldout.jsonl", [{"text": f"Held-out text {i}."} for i in range(40)]
        ),
        "gsm": write_json_lines(
            folder / "gsm.jsonl",
            [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(30)],
        ),
        "mmlu": write_json_lines(
            folder / "mmlu.jsonl",
            [
                {
                    "question": f"Q{i}: which element?",
                    "subject": "chemistry" if i % 2 else "physics",
                    "choices": ["H", "He", "Li", "Be"],
                    "answer": i % 4,
                }
                for i in range(20)
            ],
        ),
        "sciq": write_json_lines(
            folder / "sciq.jsonl",
            [
                {
                    "question": f"S{i}?",
                    "correct_answer": f"right{i}",
                    "distractor1": "w1",
                    "distractor2": "w2",
                }
                for i in range(10)
            ],
        ),
        "arc": write_json_lines(
            folder / "arc.jsonl",
            [
                {
                    "question": f"A{i}?",
                    "choices": {"text": ["a", "b", "c"], "label": ["A", "B", "C"]},
                    "answerKey": "ABC"[i % 3],
                }
                for i in range(10)
            ],
        ),
    }


def text_source(data_files, **extra) -> dict:
    return {"path": "json", "split": "train", "data_files": data_files, **extra}


def gsm_test(data) -> dict:
    return {
        "path": "json",
        "split": "train",
        "data_files": data["gsm"],
        "prompt_field": "question",
        "answer_field": "answer",
    }


def mmlu_test(data) -> dict:
    return {
        "path": "json",
        "split": "train",
        "data_files": data["mmlu"],
        "prompt_field": "question",
        "choices_field": "choices",
        "label_field": "answer",
    }


def test_train_sample_is_seeded_sized_and_in_layout(data, cache):
    spec = text_source(data["mix"])
    first = sample_domain(spec, 25, seed=7, split_name="train", domain="web", cache_dir=cache)
    again = sample_domain(spec, 25, seed=7, split_name="train", domain="web", cache_dir=cache)
    other = sample_domain(spec, 25, seed=8, split_name="train", domain="web", cache_dir=cache)

    assert first == again
    assert [r["text"] for r in first] != [r["text"] for r in other]
    assert len(first) == 25 and len({r["text"] for r in first}) == 25
    assert [r["sample_id"] for r in first[:2]] == ["web-train-00000", "web-train-00001"]
    assert all(set(r) == {"sample_id", "domain", "text"} and r["domain"] == "web" for r in first)
    assert all(r["text"].strip() for r in first)


def test_sample_is_not_the_file_order(data, cache):
    rows = sample_domain(
        text_source(data["mix"]), 25, seed=0, split_name="train", domain="web", cache_dir=cache
    )
    ids = [doc_id(r) for r in rows]
    assert ids != sorted(ids) and max(ids) >= 25


def doc_id(row: dict) -> int:
    return int(row["text"].split(":")[0].split()[1])


def test_filter_keeps_only_matching_rows_and_all_of_them_at_most(data, cache):
    spec = text_source(data["mix"], filter_contains="Organic Chemistry")
    rows = sample_domain(spec, 100, seed=1, split_name="train", domain="chem", cache_dir=cache)
    assert len(rows) == N_CHEMISTRY
    assert all("Organic Chemistry" in r["text"] for r in rows)


def test_filter_on_a_nested_field(data, cache):
    spec = text_source(data["mix"], filter_contains="books", filter_field="meta.source")
    rows = sample_domain(spec, 10, seed=1, split_name="train", domain="books", cache_dir=cache)
    assert len(rows) == 10
    assert all(doc_id(r) % 2 == 0 for r in rows)


def test_streaming_sample_is_seeded_and_sized(data, cache):
    spec = text_source([data["mix_shard_a"], data["mix_shard_b"]], streaming=True, buffer_size=16)
    first = sample_domain(spec, 20, seed=3, split_name="valid", domain="web", cache_dir=cache)
    again = sample_domain(spec, 20, seed=3, split_name="valid", domain="web", cache_dir=cache)
    assert first == again and len(first) == 20
    assert first[0]["sample_id"] == "web-valid-00000"
    filtered = dict(spec, filter_contains="Organic Chemistry")
    rows = sample_domain(filtered, 100, seed=3, split_name="train", domain="chem", cache_dir=cache)
    assert len(rows) == N_CHEMISTRY


def test_generate_until_test_rows(data, cache):
    rows = sample_domain(
        gsm_test(data), 12, seed=0, split_name="test", domain="math", cache_dir=cache
    )
    assert [r["doc_id"] for r in rows] == list(range(12))
    assert all(set(r) == {"doc_id", "domain", "prompt", "answer"} for r in rows)
    for r in rows:
        i = int(r["prompt"].split()[2])
        assert r["answer"] == str(2 * i)


def test_multiple_choice_with_a_list_field_and_index_label(data, cache):
    spec = dict(mmlu_test(data), filter_contains="chemistry", filter_field="subject")
    rows = sample_domain(spec, 50, seed=0, split_name="test", domain="chem", cache_dir=cache)
    assert len(rows) == 10
    for r in rows:
        assert set(r) == {"doc_id", "domain", "prompt", "answer", "choices", "label"}
        i = int(r["prompt"].split(":")[0][1:])
        assert i % 2 == 1 and r["label"] == i % 4 and r["answer"] == r["choices"][r["label"]]


def test_multiple_choice_from_separate_fields_labelled_by_answer(data, cache):
    spec = {
        "path": "json",
        "split": "train",
        "data_files": data["sciq"],
        "prompt_field": "question",
        "answer_field": "correct_answer",
        "choices_field": ["correct_answer", "distractor1", "distractor2"],
    }
    rows = sample_domain(spec, 5, seed=0, split_name="test", domain="sci", cache_dir=cache)
    for r in rows:
        assert r["label"] == 0 and r["answer"] == f"right{r['prompt'][1:-1]}"
        assert r["choices"] == [r["answer"], "w1", "w2"]


def test_multiple_choice_nested_choices_and_letter_label(data, cache):
    spec = {
        "path": "json",
        "split": "train",
        "data_files": data["arc"],
        "prompt_field": "question",
        "choices_field": "choices.text",
        "label_field": "answerKey",
    }
    rows = sample_domain(spec, 10, seed=0, split_name="test", domain="arc", cache_dir=cache)
    for r in rows:
        i = int(r["prompt"][1:-1])
        assert r["label"] == i % 3 and r["answer"] == "abc"[i % 3]


def test_empty_result_names_dataset_and_domain(data, cache):
    spec = text_source(data["mix"], filter_contains="Quantum Gravity")
    with pytest.raises(GrokpathError) as exc:
        sample_domain(spec, 5, seed=0, split_name="train", domain="physics", cache_dir=cache)
    message = str(exc.value)
    assert "\n" not in message
    assert "domain physics" in message and "'json'" in message and data["mix"] in message
    assert "'Quantum Gravity'" in message


def test_missing_field_names_it(data, cache):
    with pytest.raises(
        GrokpathError,
        match=r"domains\.web\.train: row has no field 'body' \(fields: id, meta, text\)",
    ):
        sample_domain(
            text_source(data["mix"], text_field="body"),
            5,
            seed=0,
            split_name="train",
            domain="web",
            cache_dir=cache,
        )


def test_unloadable_dataset_is_one_line(tmp_path, cache):
    spec = text_source(str(tmp_path / "nope.jsonl"))
    with pytest.raises(GrokpathError) as exc:
        sample_domain(spec, 5, seed=0, split_name="train", domain="web", cache_dir=cache)
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith("domains.web.train: cannot load dataset 'json'")


@pytest.mark.parametrize(
    "spec,split,message",
    [
        ({"path": "json", "split": "train", "txt_field": "x"}, "train", "unknown key(s) txt_field"),
        ({"path": "json"}, "valid", "missing key(s) split"),
        (
            {"path": "json", "split": "train", "prompt_field": "q"},
            "test",
            "set answer_field or label_field",
        ),
        (
            {"path": "json", "split": "train", "prompt_field": "q", "label_field": "l"},
            "test",
            "label_field needs choices_field",
        ),
    ],
)
def test_bad_source_specs(spec, split, message, cache):
    with pytest.raises(
        GrokpathError,
        match=rf"^domains\.d\.{split}: .*{message.replace('(', '[(]').replace(')', '[)]')}",
    ):
        sample_domain(spec, 5, seed=0, split_name=split, domain="d", cache_dir=cache)


def corpus_domains(data) -> dict:
    return {
        "math": {
            "train": text_source(data["mix"]),
            "valid": text_source(data["heldout"]),
            "test": gsm_test(data),
        },
        # train and valid read the same source: the samples must still be disjoint.
        "chem": {
            "output_type": "multiple_choice",
            "train": text_source(data["mix"], filter_contains="Organic Chemistry"),
            "valid": text_source(data["mix"], filter_contains="Organic Chemistry"),
            "test": mmlu_test(data),
        },
    }


COUNTS = {"n_train": 8, "n_valid": 5, "n_test": 6}


def test_write_hub_corpus_layout_and_manifest(data, cache, tmp_path):
    out = tmp_path / "results" / "corpus"
    manifest = write_hub_corpus(corpus_domains(data), COUNTS, seed=11, outdir=out, cache_dir=cache)

    assert sorted(p.name for p in out.iterdir()) == ["chem", "manifest.json", "math"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["seed"] == 11
    assert {
        d: {k: v for k, v in m.items() if k != "sources"} for d, m in manifest["domains"].items()
    } == {
        "math": {"output_type": "generate_until", "n_train": 8, "n_valid": 5, "n_test": 6},
        "chem": {"output_type": "multiple_choice", "n_train": 8, "n_valid": 5, "n_test": 6},
    }
    for domain in ("math", "chem"):
        train = read_jsonl(out / domain / "train.jsonl")
        valid = read_jsonl(out / domain / "valid.jsonl")
        test = read_jsonl(out / domain / "test.jsonl")
        assert (len(train), len(valid), len(test)) == (8, 5, 6)
        assert not {r["text"] for r in train} & {r["text"] for r in valid}
        assert {r["domain"] for r in train + valid + test} == {domain}
    chem_valid = read_jsonl(out / "chem" / "valid.jsonl")
    assert all("Organic Chemistry" in r["text"] for r in chem_valid)
    assert all("choices" in r and "label" in r for r in read_jsonl(out / "chem" / "test.jsonl"))
    assert leftover_temp_files(out) == []


def leftover_temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".")]


def test_write_hub_corpus_is_deterministic(data, cache, tmp_path):
    write_hub_corpus(corpus_domains(data), COUNTS, seed=5, outdir=tmp_path / "a", cache_dir=cache)
    write_hub_corpus(corpus_domains(data), COUNTS, seed=5, outdir=tmp_path / "b", cache_dir=cache)
    for name in ("math/train.jsonl", "math/valid.jsonl", "chem/test.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_config_errors_fail_before_any_sampling(data, cache, tmp_path):
    domains = corpus_domains(data)
    domains["zzz"] = {"train": text_source(data["mix"]), "valid": text_source(data["mix"])}
    with pytest.raises(GrokpathError, match=r"^domains\.zzz: missing key\(s\) test$"):
        write_hub_corpus(domains, COUNTS, seed=0, outdir=tmp_path / "c", cache_dir=cache)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    "counts,message",
    [
        ({"n_train": 8, "n_valid": 5}, r"counts\.n_test: expected a positive integer, got None"),
        (
            {"n_train": 0, "n_valid": 5, "n_test": 1},
            r"counts\.n_train: expected a positive integer, got 0",
        ),
    ],
)
def test_bad_counts(data, cache, tmp_path, counts, message):
    with pytest.raises(GrokpathError, match=message):
        write_hub_corpus(
            corpus_domains(data), counts, seed=0, outdir=tmp_path / "c", cache_dir=cache
        )


def test_output_type_must_agree_with_choices(data, cache, tmp_path):
    domains = corpus_domains(data)
    domains["math"]["output_type"] = "multiple_choice"
    with pytest.raises(
        GrokpathError, match=r"^domains\.math\.output_type: 'multiple_choice' disagrees"
    ):
        write_hub_corpus(domains, COUNTS, seed=0, outdir=tmp_path / "c", cache_dir=cache)


def test_workflow_script(data, tmp_path):
    out = tmp_path / "corpus"
    domains = {"math": corpus_domains(data)["math"]}
    argv = [
        f"domains={yaml.safe_dump(domains, default_flow_style=True, width=10**6).strip()}",
        f"counts={json.dumps(COUNTS)}",
        "seed=3",
        f"corpus_dir={out}",
        f"cache_dir={tmp_path / 'script_cache'}",
    ]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "workflow_scripts" / "sample_hub_corpus.py"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["domains"]["math"]["n_train"] == 8
    assert len(read_jsonl(out / "math" / "test.jsonl")) == 6
