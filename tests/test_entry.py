"""Workflow scripts copy everything they print into the rule's log and end it with one error line."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def run_script(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, cwd=ROOT)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error: ")]


def test_a_failing_workflow_script_ends_its_log_with_the_error_line(tmp_path):
    bad = tmp_path / "step10.parquet"
    pd.DataFrame({"sample_id": ["a"], "domain": ["math"], "step": [10]}).to_parquet(bad)
    log = tmp_path / "memorization.log"
    result = run_script(
        ROOT / "workflow_scripts" / "memorization.py", f"losses=[{bad}]", f"samples={tmp_path / 's.parquet'}",
        f"groups={tmp_path / 'g.parquet'}", f"eps_report={tmp_path / 'e.json'}", "eps={math: auto}",
        "delta=0.05", "eps_step=0.1", "target_fraction=0.2", f"log={log}",
    )  # fmt: skip
    assert result.returncode == 1
    expected = f"error: {bad}: missing column(s)"
    assert log.read_text().strip().splitlines()[-1].startswith(expected)
    assert len(error_lines(result.stderr)) == 1, "the error is printed once"
    assert error_lines(result.stderr)[0].startswith(expected)


def write_job(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import logging, warnings
        from tqdm import tqdm
        from grokpath.entry import run

        def main(args):
            logging.getLogger("grokpath.job").info("started")
            for _ in tqdm(range(3), desc="work"):
                pass
            warnings.warn("a library warning")
            print("plain print")
        """) + textwrap.indent(textwrap.dedent(body), "    ") + "\nrun(main, globals())\n")
    return script


def test_progress_warnings_prints_and_a_traceback_reach_the_log(tmp_path):
    log = tmp_path / "job.log"
    result = run_script(write_job(tmp_path, 'raise RuntimeError("CUDA out of memory.\\nTried to allocate")'),
                        f"log={log}")
    text = log.read_text()
    assert result.returncode == 1
    for piece in ("grokpath.job started", "work: 100%", "a library warning", "plain print",
                  "Traceback (most recent call last)"):
        assert piece in text, piece
    assert text.strip().splitlines()[-1] == "error: RuntimeError: CUDA out of memory."
    assert error_lines(result.stderr) == ["error: RuntimeError: CUDA out of memory."]


def test_a_job_that_succeeds_keeps_its_output_in_the_log_and_on_the_terminal(tmp_path):
    log = tmp_path / "job.log"
    result = run_script(write_job(tmp_path, "pass"), f"log={log}")
    assert result.returncode == 0, result.stderr
    assert "grokpath.job started" in log.read_text() and "grokpath.job started" in result.stderr
    assert "plain print" in result.stdout and not error_lines(log.read_text())


def test_without_a_log_a_bad_argument_is_one_line(tmp_path):
    result = run_script(write_job(tmp_path, "pass"), "not-a-key-value")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: argument 'not-a-key-value': expected key=value"]
