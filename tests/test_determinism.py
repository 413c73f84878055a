"""Same config, same numbers; a killed job is never trusted; bad inputs stop in one line.

- Two runs of the tiny config in separate directories give byte-identical Parquet tables (and
  checkpoints); only wall-clock columns (tiny_runs.WALL_CLOCK_COLUMNS) are left out.
- SIGKILL to the whole snakemake process group while a job is writing its outputs: Snakemake
  refuses the leftovers, and `--rerun-incomplete` finishes with the reference run's tables.
  Also inside an atomic write, held open by the write-delay hook (grokpath.tableio,
  GROKPATH_WRITE_DELAY_S): pretraining's middle checkpoint folder, complete under its temporary
  name, and extraction's pathway table, every row group streamed into its temporary file; the
  rerun redoes that one job and ends with the reference run's bytes (checkpoint files included).
- Corrupt inputs the other tests do not cover (tests/test_workflow.py has the checkpoint without
  weights, truncated weights and an empty sample set for sample_loss): each stops with one line
  on stderr that names the file, and writes nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from tiny_runs import (
    RUN,
    TINY,
    UNTIL_CORE,
    copy_run,
    fresh_run,
    parquet_tables,
    planned_jobs,
    reference_run,
    results,
    table_differences,
)
from workflow_utils import script, snakemake, snakemake_command, snakemake_env

pytestmark = pytest.mark.slow

CONFIG = yaml.safe_load(TINY.read_text())
STEPS = CONFIG["checkpoints"]["steps"]
DOMAINS = list(CONFIG["domains"])
CHUNK = f"steps{STEPS[0]}-{STEPS[-1]}"  # the one chunk of each per-checkpoint rule: all steps in one job
# The kill test reruns evaluate and what depends on it up to the analysis (whose inputs are the same
# bytes again, which the comparison with the reference shows): a minute less than with the figures.
UNTIL = ("--until", *UNTIL_CORE)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_run(tmp_path_factory)


# --- determinism -----------------------------------------------------------------------------


def test_a_run_writes_the_tables_we_compare(reference):
    tables = set(parquet_tables(reference))
    expected = {"memorization/samples.parquet", "memorization/groups.parquet", "metrics/loss_baselines.parquet"}
    expected |= {f"loss/{CHUNK}/step{s}.parquet" for s in STEPS} | {f"pathways/{CHUNK}/step{s}.parquet" for s in STEPS}
    threshold = CONFIG["pathways"]["threshold"]
    expected |= {f"metrics/thr{threshold}/{m}.parquet" for m in ("edit_distance", "consistency", "routing")}
    expected |= {"eval/items.parquet", "eval/generalization.parquet", "eval/matches.parquet"}
    assert expected <= tables, sorted(expected - tables)


def test_two_runs_give_byte_identical_tables(reference, tmp_path_factory):
    second = fresh_run(tmp_path_factory, "second")
    assert table_differences(reference, second, byte_identical=True) == []
    for step in STEPS:
        weights = Path("checkpoints") / f"step{step}" / "model.safetensors"
        assert (results(reference) / weights).read_bytes() == (results(second) / weights).read_bytes(), weights


# --- a job killed with SIGKILL ---------------------------------------------------------------


def wait_for(condition, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def killed(reference, tmp_path_factory):
    """A copy of the reference run in which `evaluate` was SIGKILLed after writing part of its output.

    evaluate writes its per-run task folder (an output) first, then runs lm-eval for seconds
    before writing its tables: the kill lands in between, with one output on disk and two missing.
    """
    workdir = copy_run(reference, tmp_path_factory.mktemp("killed") / "run")
    chunk = results(workdir) / "eval" / "chunks"
    tasks, items = chunk / f"{CHUNK}.tasks", chunk / f"{CHUNK}.items.parquet"
    log = (workdir.parent / "killed.log").open("w")
    command = snakemake_command(workdir, TINY, "--forcerun", "evaluate", *UNTIL)
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=snakemake_env(), start_new_session=True)
    try:
        wait_for(lambda: not items.exists() and not tasks.exists(), proc, 120, "evaluate removed its old outputs")
        wait_for(tasks.exists, proc, 120, "evaluate wrote its task folder")
        time.sleep(1.0)  # inside lm-eval now
        assert not items.exists(), "evaluate finished before the kill: nothing to test"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its job: the whole process group
        proc.wait()
        log.close()
    return workdir


def test_killed_job_leaves_no_output_snakemake_accepts(killed):
    tasks = results(killed) / "eval" / "chunks" / f"{CHUNK}.tasks"
    assert tasks.is_dir()  # the partial output is there ...
    plain = snakemake(killed, TINY, "-n", timeout=300)
    output = plain.stdout + plain.stderr
    # ... and Snakemake will not build on it: without --rerun-incomplete it stops and names it.
    assert plain.returncode != 0 and "incomplete" in output.lower(), output[-3000:]
    assert f"{CHUNK}.tasks" in output
    rerun = snakemake(killed, TINY, "-n", "--rerun-incomplete", *UNTIL, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # --rerun-incomplete forces the killed job (reason "Forced execution") and what depends on it.
    planned = {job.rule for job in planned_jobs(rerun.stdout)}
    assert {"evaluate", "collect_evaluation", "generalization", "match_groups"} <= planned, planned
    assert "pretrain_lab" not in planned and "sample_loss" not in planned


def test_rerun_incomplete_finishes_with_the_reference_tables(killed, reference):
    unlock = snakemake(killed, TINY, "--unlock", timeout=300)  # SIGKILL left the lock behind
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    result = snakemake(killed, TINY, "--rerun-incomplete", *UNTIL)
    assert result.returncode == 0, result.stderr[-4000:]
    assert table_differences(reference, killed, byte_identical=True) == []
    done = snakemake(killed, TINY, "-n", *UNTIL, timeout=300)
    assert "Nothing to be done" in done.stdout + done.stderr


# --- SIGKILL inside an atomic write (the write-delay hook of grokpath.tableio) -----------------

# The hook holds the finished temporary output this long before renaming it: the test kills well
# inside the window, so the kill never races the rename.
WRITE_DELAY_S = 600


def temporaries(dest: Path) -> list[Path]:
    """The temporary siblings atomic_path/atomic_dir made for `dest` (`.{name}.*.tmp`)."""
    return sorted(dest.parent.glob(f".{dest.name}.*.tmp"))


def kill_inside_write(workdir: Path, dest: Path, job_log: Path, *args: str) -> Path:
    """Run snakemake with `args`, hold the write of `dest` open with the hook, SIGKILL the whole
    process group once the job has logged that its temporary output is complete; return that
    temporary (left behind by the kill)."""
    relative = dest.relative_to(workdir).as_posix()  # as the rule names it (a job may see it absolute)
    env = {"GROKPATH_WRITE_DELAY_S": str(WRITE_DELAY_S), "GROKPATH_WRITE_DELAY_GLOB": f"*{relative}"}
    log = (workdir.parent / "killed.log").open("w")
    command = snakemake_command(workdir, TINY, *args)
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=snakemake_env(env), start_new_session=True)
    try:
        # the job's log starts empty (opened "w"); the hook logs this line just before it waits
        held = f"{relative} in {WRITE_DELAY_S:g} s"
        wait_for(lambda: job_log.exists() and held in job_log.read_text(), proc, 300, "write of the held output")
        assert not dest.exists(), f"{dest} was renamed before the kill: nothing to test"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its job: the whole process group
        proc.wait()
        log.close()
    (tmp,) = temporaries(dest)
    return tmp


def assert_rerun_redoes_only(workdir: Path, reference: Path, expected: list[str], *target: str,
                             refused: bool = True) -> None:  # fmt: skip
    """The killed job's output is refused (`refused`: part of it is on disk, marked incomplete;
    else none of it is, and a plain dry run plans exactly `expected` again); after --unlock,
    --rerun-incomplete plans exactly `expected` (rule[wildcards]), runs it, and the run's tables
    are the reference's bytes."""
    plain = snakemake(workdir, TINY, "-n", *target, timeout=300)
    if refused:
        assert plain.returncode != 0 and "incomplete" in (plain.stdout + plain.stderr).lower(), plain.stderr[-3000:]
    else:
        assert plain.returncode == 0, plain.stderr[-3000:]
        assert sorted(map(str, planned_jobs(plain.stdout))) == expected, plain.stdout[-3000:]
    unlock = snakemake(workdir, TINY, "--unlock", timeout=300)  # SIGKILL left the lock behind
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    planned = snakemake(workdir, TINY, "-n", "--rerun-incomplete", *target, timeout=300)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert sorted(map(str, planned_jobs(planned.stdout))) == expected, planned.stdout[-3000:]
    result = snakemake(workdir, TINY, "--rerun-incomplete", *target)
    assert result.returncode == 0, result.stderr[-4000:]
    assert table_differences(reference, workdir, byte_identical=True) == []
    done = snakemake(workdir, TINY, "-n", *target, timeout=300)  # with --until: "total 0", no message
    assert done.returncode == 0 and planned_jobs(done.stdout) == [], done.stdout[-3000:]


def checkpoint_differences(a: Path, b: Path) -> list[str]:
    """Files of the checkpoint folders (weights, config, tokenizer) that differ between two runs."""
    problems = []
    for step in STEPS:
        folder_a, folder_b = results(a) / "checkpoints" / f"step{step}", results(b) / "checkpoints" / f"step{step}"
        names = sorted(p.name for p in folder_a.iterdir())
        if names != sorted(p.name for p in folder_b.iterdir()):
            problems.append(f"step{step}: files differ")
            continue
        problems += [f"step{step}/{n}" for n in names if (folder_a / n).read_bytes() != (folder_b / n).read_bytes()]
    return problems


def test_killed_while_pretraining_writes_a_checkpoint_the_rerun_redoes_it(reference, tmp_path):
    """SIGKILL with the middle checkpoint folder complete under its temporary name: the first one
    is on disk, the rest and the training tables are not. `--rerun-incomplete` redoes
    pretrain_lab (alone: `--until pretrain_lab`; what depends on it reads the same bytes again)."""
    workdir = copy_run(reference, tmp_path / "run")
    checkpoints = results(workdir) / "checkpoints"
    tmp = kill_inside_write(
        workdir, checkpoints / f"step{STEPS[1]}", results(workdir) / "logs" / "pretrain_lab.log",
        "--forcerun", "pretrain_lab", "--until", "pretrain_lab",
    )  # fmt: skip
    assert (tmp / "model.safetensors").is_file()  # the folder was written, only the rename is missing
    assert (checkpoints / f"step{STEPS[0]}" / "model.safetensors").is_file()
    assert not (checkpoints / f"step{STEPS[-1]}").exists()
    assert_rerun_redoes_only(workdir, reference, ["pretrain_lab"], "--until", "pretrain_lab")
    assert checkpoint_differences(reference, workdir) == []


def test_killed_before_an_extraction_chunk_is_renamed_the_rerun_redoes_it(reference, tmp_path):
    """SIGKILL with every step's pathway and router table of the chunk in its temporary folder
    (the pathway tables streamed in full): nothing of the chunk is on disk, so the next run plans
    that one extraction job again, and redoes it."""
    workdir = copy_run(reference, tmp_path / "run")
    folder = Path("results") / RUN / "pathways" / CHUNK
    tmp = kill_inside_write(
        workdir, workdir / folder, results(workdir) / "logs" / "extract_pathways" / f"{CHUNK}.log",
        str(folder), "--forcerun", "extract_pathways",
    )  # fmt: skip
    for step in STEPS:  # written in full, only the folder's rename is missing
        rows = pq.read_metadata(results(reference) / "pathways" / CHUNK / f"step{step}.parquet").num_rows
        assert pq.read_metadata(tmp / f"step{step}.parquet").num_rows == rows
        assert (tmp / f"step{step}.routers.parquet").is_file()
    chunk = CHUNK.removeprefix("steps")
    assert_rerun_redoes_only(workdir, reference, [f"extract_pathways[chunk={chunk}]"], str(folder), refused=False)


# --- corrupt inputs --------------------------------------------------------------------------


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def assert_stopped(result: subprocess.CompletedProcess, error: str, out: Path) -> None:
    """Exit 1, `error` as the last line of stderr, nothing left in `out`."""
    assert result.returncode == 1
    assert last_line(result).startswith(error), result.stderr[-2000:]
    assert not out.exists() or not any(out.iterdir())


def memorization(losses: list[Path], out: Path) -> subprocess.CompletedProcess:
    eps = "{" + ", ".join(f"{d}: auto" for d in DOMAINS) + "}"
    return script(
        "memorization", f"losses=[{', '.join(map(str, losses))}]", f"samples={out / 'samples.parquet'}",
        f"groups={out / 'groups.parquet'}", f"eps_report={out / 'eps.json'}", f"eps={eps}",
        "delta=0.05", "eps_step=0.1", "target_fraction=0.2",
    )  # fmt: skip


def extract(run: Path, out: Path, manifest: Path | None = None):
    return script(
        "extract_pathways", f"checkpoints={run / 'checkpoints' / f'step{STEPS[0]}'}",
        f"manifest={manifest or run / 'corpus' / 'manifest.json'}", f"domains=[{', '.join(DOMAINS)}]",
        f"pathways={out}", "max_per_domain=20",
        "seed=1", "batch_size=64", "max_length=32", "device=cpu", "dtype=auto",
    )  # fmt: skip


def pathway_metrics(run: Path, out: Path, memorization_table: Path):
    pathways = ", ".join(str(run / "pathways" / CHUNK / f"step{s}.parquet") for s in STEPS)
    routers = ", ".join(str(run / "pathways" / CHUNK / f"step{s}.routers.parquet") for s in STEPS)
    return script(
        "pathway_metrics", f"pathways=[{pathways}]", f"routers=[{routers}]", f"memorization={memorization_table}",
        f"edit_distance={out / 'edit_distance.parquet'}", f"consistency={out / 'consistency.parquet'}",
        f"routing={out / 'routing.parquet'}", "threshold=0.7", "max_pairs=1000", "seed=1",
    )  # fmt: skip


def test_loss_table_missing_a_column_names_the_file(reference, tmp_path):
    run = results(reference)
    bad = tmp_path / f"step{STEPS[0]}.parquet"
    pd.read_parquet(run / "loss" / CHUNK / f"step{STEPS[0]}.parquet").drop(columns=["loss"]).to_parquet(bad)
    out = tmp_path / "memorization"
    result = memorization([bad] + [run / "loss" / CHUNK / f"step{s}.parquet" for s in STEPS[1:]], out)
    assert_stopped(result, f"error: {bad}: missing column(s) loss", out)


def test_truncated_parquet_names_the_file(reference, tmp_path):
    run = results(reference)
    bad = tmp_path / f"step{STEPS[-1]}.parquet"
    bad.write_bytes((run / "loss" / CHUNK / f"step{STEPS[-1]}.parquet").read_bytes()[:200])
    out = tmp_path / "memorization"
    result = memorization([run / "loss" / CHUNK / f"step{s}.parquet" for s in STEPS[:-1]] + [bad], out)
    assert_stopped(result, f"error: {bad}: not a readable Parquet file", out)


def test_memorization_table_missing_a_column_stops_the_metrics(reference, tmp_path):
    run = results(reference)
    bad = tmp_path / "samples.parquet"
    pd.read_parquet(run / "memorization" / "samples.parquet").drop(columns=["t_star"]).to_parquet(bad)
    out = tmp_path / "metrics"
    result = pathway_metrics(run, out, bad)
    assert_stopped(result, f"error: {bad}: missing column(s) t_star", out)


def test_empty_sample_set_stops_extraction_naming_the_file(reference, tmp_path):
    run = results(reference)
    corpus = tmp_path / "corpus"
    shutil.copytree(run / "corpus", corpus)
    (corpus / "math" / "train.jsonl").write_text("")
    out = tmp_path / "pathways"
    result = extract(run, out, manifest=corpus / "manifest.json")
    assert_stopped(result, f"error: {corpus / 'math' / 'train.jsonl'}: empty sample set", out)


def test_corrupt_checkpoint_stops_the_workflow_and_drops_the_stale_table(reference, tmp_path):
    """Through Snakemake: sample_loss rerun on truncated weights fails naming the dir, and its old
    chunk folder does not survive. (A file changed inside a directory output does not change the
    directory's timestamp for Snakemake, hence --forcerun.)"""
    workdir = copy_run(reference, tmp_path / "run")
    run = results(workdir)
    weights = run / "checkpoints" / f"step{STEPS[1]}" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    table = f"results/{CONFIG['run']}/loss/{CHUNK}"
    result = snakemake(workdir, TINY, table, "--forcerun", "sample_loss")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert errors and all(f"step{STEPS[1]}" in line for line in errors), output[-3000:]
    assert not (workdir / table).exists(), "the failed job's stale output was left in place"
