"""Fetch OLMoE intermediate checkpoints from the Hugging Face Hub into `checkpoints/step{S}/`.

OLMoE publishes each intermediate checkpoint as a branch of the model repo, named
`step{S}-tokens{T}B` (see `revision_name`). `download_checkpoint` checks the revision against the
repo's branches and tags before fetching anything, so a typo fails in a second rather than after a
multi-gigabyte download, then downloads into a temporary sibling of the destination and renames
it at the end: an interrupted or failed download never leaves a directory that looks finished.

The Hub endpoint is huggingface_hub's own setting (HF_ENDPOINT) unless `endpoint` is given.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import shutil
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError

from grokpath.errors import GrokpathError
from grokpath.sources.checkpoints import CHECKPOINT_META, check_checkpoint_dir
from grokpath.tableio import atomic_dir, write_json

log = logging.getLogger("grokpath.sources.hub")

# OLMoE-1B-7B: 1024 sequences of 4096 tokens per optimizer step.
TOKENS_PER_STEP = 4_194_304
_COMMIT_HASH = re.compile(r"[0-9a-f]{40}")


def check_step(step) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise GrokpathError(f"step {step!r}: expected a non-negative integer")
    return step


def revision_name(step: int, tokens_per_step: int = TOKENS_PER_STEP) -> str:
    """The OLMoE branch name of a step: tokens seen, in billions, rounded down."""
    check_step(step)
    # Integer arithmetic: a float quotient just below a whole number can round up to it.
    return f"step{step}-tokens{step * tokens_per_step // 10**9}B"


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def list_revisions(repo_id: str, endpoint: str | None = None) -> list[str]:
    """Branch and tag names of a model repo."""
    api = HfApi(endpoint=endpoint)
    try:
        refs = api.list_repo_refs(repo_id)
    except RepositoryNotFoundError:
        raise GrokpathError(
            f"repo {repo_id} not found at {api.endpoint} (or private/gated and no token)"
        ) from None
    except (OSError, httpx2.HTTPError) as exc:
        raise GrokpathError(
            f"cannot list revisions of {repo_id} at {api.endpoint}: {first_line(exc)}"
        ) from None
    return [ref.name for ref in refs.branches + refs.tags]


def check_revision(repo_id: str, revision: str, endpoint: str | None = None) -> None:
    """Fail with the closest valid names if `revision` is neither a branch nor a tag of the repo.

    A full commit hash is let through: refs do not list commits, and the download itself will
    reject an unknown one.
    """
    if _COMMIT_HASH.fullmatch(revision):
        return
    names = list_revisions(repo_id, endpoint)
    if revision in names:
        return
    close = difflib.get_close_matches(revision, names, n=3, cutoff=0.6)
    hint = (
        f"closest: {', '.join(close)}"
        if close
        else f"no close match among {len(names)} branches/tags"
    )
    raise GrokpathError(f"revision {revision!r} not found in {repo_id}; {hint}")


def resolve_commit(repo_id: str, revision: str, endpoint: str | None = None) -> str:
    api = HfApi(endpoint=endpoint)
    try:
        return api.repo_info(repo_id, revision=revision).sha
    except (OSError, httpx2.HTTPError) as exc:
        raise GrokpathError(f"cannot resolve {repo_id}@{revision}: {first_line(exc)}") from None


def fetch_snapshot(
    repo_id: str,
    revision: str,
    commit: str,
    into: Path,
    allow_patterns: list[str] | str | None,
    endpoint: str | None,
    shown_as: str | os.PathLike,
) -> None:
    try:
        snapshot_download(
            repo_id,
            revision=commit,
            local_dir=into,
            allow_patterns=allow_patterns,
            endpoint=endpoint,
        )
    except (OSError, httpx2.HTTPError) as exc:
        raise GrokpathError(
            f"download of {repo_id}@{revision} into {shown_as} failed: {first_line(exc)}"
        ) from None
    # Download bookkeeping of huggingface_hub, meaningless once the directory is final.
    shutil.rmtree(into / ".cache", ignore_errors=True)


def download_checkpoint(
    repo_id: str,
    revision: str,
    dest: str | os.PathLike,
    step: int,
    allow_patterns: list[str] | str | None = None,
    endpoint: str | None = None,
) -> Path:
    """Download `repo_id` at `revision` into `dest` as a checkpoint dir of the given step.

    Writes `dest/grokpath_checkpoint.json` = {step, source: "hub", revision, repo_id, commit}.
    The commit is resolved once and downloaded by hash, so a branch moved mid-download cannot
    mix files of two commits.
    """
    dest = Path(dest)
    check_step(step)
    check_revision(repo_id, revision, endpoint)
    commit = resolve_commit(repo_id, revision, endpoint)
    log.info("downloading %s@%s (commit %s) into %s", repo_id, revision, commit, dest)
    with atomic_dir(dest) as tmp:
        fetch_snapshot(repo_id, revision, commit, tmp, allow_patterns, endpoint, shown_as=dest)
        check_checkpoint_dir(tmp, shown_as=dest)
        meta = {
            "step": step,
            "source": "hub",
            "revision": revision,
            "repo_id": repo_id,
            "commit": commit,
        }
        write_json(meta, tmp / CHECKPOINT_META)
    return dest
