"""Whole-workflow runs of the tiny config, shared by the slow test modules, and their comparison.

`reference_run` runs tests/configs/tiny.yaml once per pytest process (whichever module asks first)
and hands every caller the same finished working directory: treat it as read-only (copy before
changing anything). The helpers below compare two runs' tables and parse a dry run's job plan.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from workflow_utils import ROOT, snakemake

TINY = ROOT / "tests" / "configs" / "tiny.yaml"
RUN = yaml.safe_load(TINY.read_text())["run"]

# Columns that hold wall-clock measurements: equal across runs only by accident. Every other
# column of every Parquet table must be identical, and files without these columns byte-identical.
WALL_CLOCK_COLUMNS = {"train/log.parquet": ["elapsed_s"]}

# `--until` these rules: the DAG without the analysis (stats, figures, summary), which reads the
# tables these write. Used where a test needs real jobs but not the analysis on top of them.
UNTIL_CORE = ("pathway_metrics", "loss_baselines", "match_groups")

_runs: dict[str, Path] = {}


def reference_run(tmp_path_factory) -> Path:
    """The working directory of one finished run of the tiny config (run once per process)."""
    if "reference" not in _runs:
        _runs["reference"] = fresh_run(tmp_path_factory, "reference")
    return _runs["reference"]


def fresh_run(tmp_path_factory, name: str, configfile: Path = TINY, *args: str, env: dict | None = None) -> Path:
    workdir = tmp_path_factory.mktemp(name)
    result = snakemake(workdir, configfile, *args, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def variant(config_changes: dict, dest: Path, base: Path = TINY) -> Path:
    """A copy of the `base` config with `config_changes` ({"a.b": value}) applied, written to dest."""
    config = yaml.safe_load(base.read_text())
    for dotted, value in config_changes.items():
        *parents, key = dotted.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[key] = value
    dest.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def results(workdir: Path) -> Path:
    return workdir / "results" / RUN


def parquet_tables(workdir: Path) -> dict[str, Path]:
    """Every Parquet table of a run, by path relative to results/{run}/. Not those inside a
    hidden folder: a killed job's temporary (`.{name}.*.tmp`, grokpath.tableio), never read."""
    root = results(workdir)
    tables = sorted(p.relative_to(root) for p in root.rglob("*.parquet"))
    return {p.as_posix(): root / p for p in tables if not any(part.startswith(".") for part in p.parts)}


def table_differences(a: Path, b: Path, *, byte_identical: bool, subset: bool = False) -> list[str]:
    """What differs between the Parquet tables of two runs (working dirs); [] if nothing does.

    byte_identical: the files must be equal byte for byte (apart from the tables with wall-clock
    columns, compared without them); otherwise their contents (columns, dtypes, values) must be.
    subset: run b made only part of the DAG (`--until`): compare its tables, which a must have too.
    """
    tables_a, tables_b = parquet_tables(a), parquet_tables(b)
    if subset:
        tables_a = {name: path for name, path in tables_a.items() if name in tables_b}
    problems = [f"only in one run: {name}" for name in sorted(set(tables_a) ^ set(tables_b))]
    for name in sorted(set(tables_a) & set(tables_b)):
        pa, pb = tables_a[name], tables_b[name]
        wall_clock = WALL_CLOCK_COLUMNS.get(name)
        if byte_identical and not wall_clock:
            if pa.read_bytes() != pb.read_bytes():
                problems.append(f"{name}: bytes differ ({content_difference(pa, pb) or 'same contents'})")
            continue
        difference = content_difference(pa, pb, drop=wall_clock or [])
        if difference:
            problems.append(f"{name}: {difference}")
    return problems


def content_difference(pa: Path, pb: Path, drop: list[str] = ()) -> str:
    da, db = pd.read_parquet(pa).drop(columns=list(drop)), pd.read_parquet(pb).drop(columns=list(drop))
    try:
        pd.testing.assert_frame_equal(da, db, check_exact=True)
    except AssertionError as exc:
        return " ".join(str(exc).split())[:300]
    return ""


def copy_run(workdir: Path, dest: Path) -> Path:
    """A private copy of a run (results and Snakemake's metadata) that a test may change."""
    shutil.copytree(workdir, dest, symlinks=True)
    return dest


@dataclass
class PlannedJob:
    rule: str
    wildcards: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    def __str__(self) -> str:
        wildcards = ",".join(f"{k}={v}" for k, v in self.wildcards.items())
        return f"{self.rule}[{wildcards}]" if wildcards else self.rule


_JOB_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")


def planned_jobs(dry_run_output: str) -> list[PlannedJob]:
    """The jobs a `snakemake -n` run would execute, parsed from its per-job blocks."""
    jobs: list[PlannedJob] = []
    for line in dry_run_output.splitlines():
        header = _JOB_HEADER.match(line.strip())
        if header and not line.startswith(" "):
            jobs.append(PlannedJob(header.group(1)))
        elif jobs and line.startswith("    wildcards: "):
            pairs = line.split(": ", 1)[1].split(", ")
            jobs[-1].wildcards = dict(pair.split("=", 1) for pair in pairs)
        elif jobs and line.startswith("    reason: "):
            jobs[-1].reason = line.split(": ", 1)[1]
    return jobs


def job_stats(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table (rule -> job count), without the total."""
    lines = output.splitlines()
    start = lines.index("Job stats:")
    stats = {}
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        stats[parts[0]] = int(parts[1])
    return stats


def rules_in(path: Path) -> set[str]:
    """Rule names defined in a .smk file (empty if the file does not exist yet)."""
    if not path.exists():
        return set()
    return set(re.findall(r"^\s*(?:rule|checkpoint) (\w+):", path.read_text(), flags=re.M))


ANALYSIS_RULES = rules_in(ROOT / "rules" / "analysis.smk")
