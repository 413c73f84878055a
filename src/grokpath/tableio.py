"""Atomic writes and checked reads for the files passed between rules.

Every writer goes to a temporary name in the destination folder and renames at the end, so a
killed job never leaves a file that Snakemake (or a reader) would take for a finished one.

Test hook (tests/test_determinism.py, the SIGKILL tests): with the environment variable
GROKPATH_WRITE_DELAY_S set to a number of seconds, `atomic_path` and `atomic_dir` (and so every
writer here, `ParquetStream` included, whose row groups are then all in the temporary file) wait
that long after the temporary output is complete and before renaming it onto its destination, and
log `write delay: <tmp> complete, renaming onto <dest> in <s> s` just before they wait.
GROKPATH_WRITE_DELAY_GLOB (an fnmatch pattern, default `*`) limits the delay to destinations whose
path matches it, e.g. `*/checkpoints/step20`. A test waits for that log line, then kills the job
inside the window. Unset (as in every normal run) it costs one environment lookup per write.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from grokpath.errors import GrokpathError

log = logging.getLogger("grokpath.tableio")

WRITE_DELAY_ENV = "GROKPATH_WRITE_DELAY_S"
WRITE_DELAY_GLOB_ENV = "GROKPATH_WRITE_DELAY_GLOB"


def write_delay(dest: Path) -> float:
    """Seconds the test hook holds a finished temporary output of `dest` (module docstring)."""
    value = os.environ.get(WRITE_DELAY_ENV)
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        raise GrokpathError(f"{WRITE_DELAY_ENV}={value!r}: expected a number of seconds") from None
    if not fnmatch.fnmatchcase(dest.as_posix(), os.environ.get(WRITE_DELAY_GLOB_ENV) or "*"):
        return 0.0
    return max(seconds, 0.0)


def _hold_before_rename(tmp: Path, dest: Path) -> None:
    seconds = write_delay(dest)
    if seconds:
        log.warning("write delay: %s complete, renaming onto %s in %g s", tmp, dest, seconds)
        time.sleep(seconds)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `dest` only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        _hold_before_rename(tmp, dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike) -> Iterator[Path]:
    """Like `atomic_path` for a directory: build it under a temporary name, then rename."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        _hold_before_rename(tmp, dest)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_parquet(df: pd.DataFrame, dest: str | os.PathLike) -> None:
    with atomic_path(dest) as tmp:
        df.to_parquet(tmp, index=False)


def write_json(obj, dest: str | os.PathLike) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl(rows: Iterable[dict], dest: str | os.PathLike) -> None:
    with atomic_path(dest) as tmp:
        with open(tmp, "w") as fh:
            for row in rows:
                fh.write(json.dumps(row, sort_keys=True) + "\n")


def step_table_name(step: int, suffix: str = ".parquet") -> str:
    """The name of a step's table inside a chunk folder (rules sample_loss, extract_pathways)."""
    return f"step{int(step)}{suffix}"


def step_tables(paths: Iterable[str | os.PathLike], suffix: str = ".parquet") -> list[Path]:
    """Per-step tables from files and chunk folders, in step order within each folder.

    The per-checkpoint rules write one folder per chunk of checkpoints (`checkpoints_per_job`),
    holding `step{S}{suffix}` per checkpoint; a file given as such is taken as it is, so scripts
    run from the command line on single tables too. Only names that are exactly step<S><suffix>
    count: `step40.routers.parquet` is not a `.parquet` pathway table.
    """
    pattern = re.compile(r"step(\d+)" + re.escape(suffix))
    tables = []
    for path in map(Path, paths):
        if not path.is_dir():
            tables.append(path)
            continue
        found = [(int(m.group(1)), p) for p in path.iterdir() if (m := pattern.fullmatch(p.name))]
        if not found:
            raise GrokpathError(f"{path}: no step<S>{suffix} table in this folder")
        tables.extend(p for _, p in sorted(found))
    return tables


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    rows = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise GrokpathError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return rows


def read_parquet(path: str | os.PathLike, columns: Iterable[str]) -> pd.DataFrame:
    """Read a Parquet table and fail with one line naming the file if a column is missing."""
    columns = list(columns)
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise GrokpathError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise GrokpathError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}"
        )
    return pd.read_parquet(path)


class ParquetStream:
    """Append record batches to a Parquet file without holding them all in memory."""

    def __init__(self, dest: str | os.PathLike, schema: pa.Schema):
        self._ctx = atomic_path(dest)
        self._tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, schema)
        self.schema = schema

    def write(self, columns: dict) -> None:
        self._writer.write_table(pa.Table.from_pydict(columns, schema=self.schema))

    def close(self, ok: bool = True) -> None:
        self._writer.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self._writer.close()
        return self._ctx.__exit__(exc_type, exc, tb)
