"""versions.json: software, git state of the checkout and where each checkpoint came from."""

import subprocess
import sys
from pathlib import Path

from grokpath.provenance import checkpoint_sources, git_state, package_versions, versions_record

ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_git_state_gives_the_commit_and_sees_uncommitted_changes(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = git(tmp_path, "rev-parse", "HEAD").strip()
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "a.txt").write_text("2")
    assert git_state(tmp_path) == {"commit": head, "dirty": True}


def test_git_state_outside_a_checkout_is_none(tmp_path):
    assert git_state(tmp_path) is None


def test_package_versions_name_installed_and_missing_packages():
    import pandas

    versions = package_versions(["pandas", "surely-not-installed-package"])
    assert versions == {"pandas": pandas.__version__, "surely-not-installed-package": None}


def test_checkpoint_sources_are_sorted_by_step_and_keep_the_hub_commit():
    hub = [{"step": 20, "source": "hub", "repo_id": "r", "revision": "b20", "commit": "c" * 40, "extra": 1},
           {"step": 10, "source": "hub", "repo_id": "r", "revision": "b10", "commit": "d" * 40}]  # fmt: skip
    entries = checkpoint_sources(hub)
    assert [e["step"] for e in entries] == [10, 20]
    assert entries[1] == {"step": 20, "source": "hub", "repo_id": "r", "revision": "b20", "commit": "c" * 40}
    assert checkpoint_sources([], [300, 100]) == [{"step": 100, "source": "lab"}, {"step": 300, "source": "lab"}]


def test_versions_record_names_python_torch_and_the_checkout():
    record = versions_record(ROOT, "9.0.0", [{"step": 1, "source": "lab"}])
    assert record["python"] == sys.version.split()[0]
    assert record["packages"]["torch"] and record["packages"]["grokpath"]
    assert record["snakemake"] == "9.0.0" and set(record) >= {"cuda", "gpu", "git", "checkpoints"}
