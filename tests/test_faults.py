"""Bad data stops a job with one line that says where: a malformed corpus line, a NaN loss.

Also the write-delay hook (grokpath.tableio) that the SIGKILL tests of test_determinism.py use,
and how a job finds its per-step tables and checkpoint steps (chunk folders, params).
"""

import json

import pytest

from grokpath.errors import GrokpathError
from grokpath.sources.checkpoints import checkpoint_steps
from grokpath.tableio import read_jsonl, step_tables


def write_corpus_file(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def test_a_malformed_jsonl_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "math" / "train.jsonl"
    write_corpus_file(path, ['{"sample_id": "a", "text": "1 + 1 = 2"}', "", '{"sample_id": "b", "text": '])
    with pytest.raises(GrokpathError, match=rf"^{path}:3: not valid JSON"):
        read_jsonl(path)


def test_the_lab_pretraining_corpus_reader_reports_the_same_line(tmp_path):
    from grokpath.lab.pretrain import load_corpus

    good = '{"sample_id": "a", "domain": "math", "text": "1 + 1 = 2", "prompt": "1 + 1 =", "answer": "2"}'
    write_corpus_file(tmp_path / "math" / "train.jsonl", [good, good.replace('"a"', '"b"')[:-5]])
    write_corpus_file(tmp_path / "math" / "test.jsonl", [good])
    with pytest.raises(GrokpathError, match=r"math/train.jsonl:2: not valid JSON"):
        load_corpus(tmp_path, ["math"])


# --- the write-delay hook the SIGKILL tests use (tests/test_determinism.py) -------------------


def held_writes(monkeypatch, folder, env: dict) -> dict[str, float]:
    """Write a JSON file, a checkpoint folder and a streamed Parquet table (two row groups) with `env` set;
    return {destination name: seconds held}. While held, the temporary output must be complete
    and the destination absent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from grokpath import tableio

    folder.mkdir()
    for key in (tableio.WRITE_DELAY_ENV, tableio.WRITE_DELAY_GLOB_ENV):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    complete = {
        "a.json": lambda tmp: json.loads(tmp.read_text()) == {"a": 1},
        "checkpoint": lambda tmp: (tmp / "weights").read_bytes() == b"w",
        "stream.parquet": lambda tmp: pq.read_metadata(tmp).num_rows == 3,
    }
    held = {}

    def sleep(seconds):
        (tmp,) = folder.glob(".*.tmp")
        name = next(n for n in complete if tmp.name.startswith(f".{n}."))
        assert complete[name](tmp) and not (folder / name).exists()
        held[name] = seconds

    monkeypatch.setattr(tableio.time, "sleep", sleep)
    tableio.write_json({"a": 1}, folder / "a.json")
    with tableio.atomic_dir(folder / "checkpoint") as tmp:
        (tmp / "weights").write_bytes(b"w")
    with tableio.ParquetStream(folder / "stream.parquet", pa.schema([("x", pa.int64())])) as stream:
        stream.write({"x": [1, 2]})
        stream.write({"x": [3]})
    assert all(check(folder / name) for name, check in complete.items())
    assert not list(folder.glob(".*.tmp"))
    return held


def test_the_write_delay_hook_holds_complete_temporaries_before_the_rename(monkeypatch, tmp_path):
    assert held_writes(monkeypatch, tmp_path / "unset", {}) == {}
    everything = held_writes(monkeypatch, tmp_path / "all", {"GROKPATH_WRITE_DELAY_S": "2.5"})
    assert everything == {"a.json": 2.5, "checkpoint": 2.5, "stream.parquet": 2.5}
    only = held_writes(monkeypatch, tmp_path / "glob", {"GROKPATH_WRITE_DELAY_S": "3", "GROKPATH_WRITE_DELAY_GLOB": "*/checkpoint"})
    assert only == {"checkpoint": 3.0}


def test_a_bad_write_delay_is_one_line_and_writes_nothing(monkeypatch, tmp_path):
    from grokpath.tableio import write_json

    monkeypatch.setenv("GROKPATH_WRITE_DELAY_S", "soon")
    with pytest.raises(GrokpathError, match=r"^GROKPATH_WRITE_DELAY_S='soon': expected a number of seconds$"):
        write_json({"a": 1}, tmp_path / "a.json")
    assert not list(tmp_path.iterdir())


def test_step_tables_expand_chunk_folders_in_step_order_and_keep_files(tmp_path):
    chunk = tmp_path / "steps5-100"
    chunk.mkdir()
    for name in ("step100.parquet", "step5.parquet", "step20.parquet", "step20.routers.parquet", "notes.txt"):
        (chunk / name).write_text("")
    single = tmp_path / "elsewhere.parquet"
    assert step_tables([chunk, single]) == [chunk / "step5.parquet", chunk / "step20.parquet",
                                            chunk / "step100.parquet", single]  # fmt: skip
    assert step_tables([str(chunk)], ".routers.parquet") == [chunk / "step20.routers.parquet"]
    empty = tmp_path / "steps7"
    empty.mkdir()
    with pytest.raises(GrokpathError, match=r"steps7: no step<S>\.parquet table in this folder"):
        step_tables([empty])


def test_checkpoint_steps_come_from_the_params_or_each_folders_metadata(tmp_path):
    folders = []
    for step in (30, 10):
        folder = tmp_path / f"ck{step}"
        folder.mkdir()
        (folder / "grokpath_checkpoint.json").write_text(json.dumps({"step": step, "source": "lab"}))
        folders.append(folder)
    assert checkpoint_steps(folders) == [30, 10]
    assert checkpoint_steps(folders, [3, "1"]) == [3, 1]
    assert checkpoint_steps(folders[:1], 7) == [7]
    with pytest.raises(GrokpathError, match="1 steps for 2 checkpoints: give one per checkpoint"):
        checkpoint_steps(folders, [3])
