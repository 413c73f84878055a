"""What a run was made with: software versions, this repo's git state, the checkpoints' sources.

`results/{run}/versions.json` (rule `versions`, shown in the report) is the only place these go:
tables and summary.md stay byte-identical across reruns, so they never carry a date or a commit.
Columns of the record:
- python, platform, packages ({name: version or null when not installed}), snakemake;
- cuda (torch's CUDA build, null on a CPU build), gpu (name of device 0, null without one);
- git: {commit, dirty} of the grokpath checkout (null outside a git checkout);
- checkpoints: per step, where its weights came from ({step, source, repo_id, revision, commit}
  for the hub; {step, source: "lab"} for the lab's own pretraining; {step, source: "local", path,
  tokenizer} for the folders of your own run, tokenizer null when each folder's own was used).
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Mapping

PACKAGES = (
    "grokpath", "torch", "transformers", "tokenizers", "huggingface-hub", "lm_eval", "peft",
    "accelerate", "pytorch-optimizer", "numpy", "pandas", "pyarrow", "scipy", "statsmodels",
    "rapidfuzz", "scikit-learn", "matplotlib",
)  # fmt: skip


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def accelerator() -> dict[str, str | None]:
    """torch's CUDA build and the GPU's name; nulls where torch or a GPU is absent."""
    try:
        import torch
    except ImportError:
        return {"cuda": None, "gpu": None}
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cuda": torch.version.cuda, "gpu": gpu}


def git_state(repo: str | Path) -> dict[str, object] | None:
    """{commit, dirty} of the checkout at `repo`; None when it is not a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "dirty": dirty}


def checkpoint_sources(
    metas: Iterable[Mapping], lab_steps: Iterable[int] = (), local: Iterable[Mapping] = ()
) -> list[dict]:
    """One entry per checkpoint step, sorted: hub metadata as written by the download, lab steps
    as pretrained here, local folders as grokpath.sources.local_checkpoints found them."""
    entries = [{k: meta.get(k) for k in ("step", "source", "repo_id", "revision", "commit")} for meta in metas]
    entries += [{"step": int(step), "source": "lab"} for step in lab_steps]
    entries += [
        {"step": int(entry["step"]), "source": "local", "path": str(entry["path"]),
         "tokenizer": entry.get("tokenizer")}
        for entry in local
    ]  # fmt: skip
    return sorted(entries, key=lambda entry: entry["step"])


def versions_record(repo: str | Path, snakemake_version: str | None, checkpoints: list[dict]) -> dict:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "snakemake": snakemake_version,
        "packages": package_versions(),
        **accelerator(),
        "git": git_state(repo),
        "checkpoints": checkpoints,
    }
