"""A loopback stand-in for the Hugging Face Hub: enough for `list_repo_refs`, `snapshot_download`.

Endpoints, as huggingface_hub 2.4.0 calls them (read from its source):
- GET  /api/models/{repo}/refs                 `list_repo_refs`: branches, tags, converts
- GET  /api/models/{repo}/revision/{rev}       `repo_info`: resolves a revision to its commit
- GET  /api/models/{repo}/tree/{rev}[/{dir}]   `list_repo_tree` (?recursive=): the files to fetch
- HEAD /{repo}/resolve/{rev}/{file}            file metadata: X-Repo-Commit, ETag, Content-Length
- GET  /{repo}/resolve/{rev}/{file}            file bytes
Errors carry the X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound) from which the
client picks its exception type. Revisions in URLs are percent-quoted, so they are unquoted here.

Xet is bypassed without touching client settings: the client only takes the Xet path when a HEAD
answer carries X-Xet-Hash or a tree entry has `xetHash`, and this server sends neither, so every
file comes over plain HTTP even with `hf_xet` installed.

Repo ids must have a namespace (`org/name`), as OLMoE's do. Each branch is a snapshot of a local
folder, read into memory when added, so what a test serves cannot change under it.

`loopback_client` points the client at the server for one test: it patches the endpoint and cache
constants that huggingface_hub reads at import time, and installs an HTTP client that refuses any
host but the loopback one, so a test can never reach the real Hub.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import httpx2
from huggingface_hub import constants
from huggingface_hub.utils import _http as hf_http

# Weights go through Git LFS on the real Hub, which changes how their ETag looks.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")

_REPO = r"(?P<repo>[^/]+/[^/]+)"
_REV = r"(?P<rev>[^/]+)"
_ROUTES = [
    ("refs", re.compile(rf"^/api/models/{_REPO}/refs$")),
    ("revision", re.compile(rf"^/api/models/{_REPO}/revision/{_REV}$")),
    ("tree", re.compile(rf"^/api/models/{_REPO}/tree/{_REV}(?:/(?P<path>.*))?$")),
    ("resolve", re.compile(rf"^/{_REPO}/resolve/{_REV}/(?P<path>.+)$")),
]


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeRepo:
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit
    tags: dict[str, str] = field(default_factory=dict)  # name -> commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit -> path -> bytes

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        return revision if revision in self.commits else None


def read_folder(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def commit_id(branch: str, files: dict[str, bytes]) -> str:
    # The branch name is part of the hash so that two branches with equal content still look like
    # distinct commits, as intermediate checkpoints do on the real Hub.
    h = hashlib.sha1(branch.encode())
    for path, data in sorted(files.items()):
        h.update(path.encode() + b"\0" + git_blob_sha1(data).encode())
    return h.hexdigest()


class FakeHub:
    """A threaded HTTP server on 127.0.0.1 serving model repos built from local folders."""

    def __init__(self):
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path), for tests to inspect
        self._cut_after: dict[tuple[str, str], int] = (
            {}
        )  # (repo, file) -> bytes sent before the cut
        self._cut_done: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeHub":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def add_repo(
        self, repo_id: str, branches: dict[str, str | Path], tags: dict[str, str] | None = None
    ) -> FakeRepo:
        """Serve `repo_id` with one branch per local folder; `tags` maps a tag name to a branch."""
        if repo_id.count("/") != 1:
            raise ValueError(f"repo id {repo_id!r}: expected 'namespace/name'")
        repo = FakeRepo()
        for name, folder in branches.items():
            files = read_folder(Path(folder))
            commit = commit_id(name, files)
            repo.branches[name] = commit
            repo.commits[commit] = files
        for tag, branch in (tags or {}).items():
            repo.tags[tag] = repo.branches[branch]
        self.repos[repo_id] = repo
        return repo

    def cut_download(self, repo_id: str, filename: str, after_bytes: int | None = None) -> None:
        """Drop the connection part-way through the next GET of `filename` (default: half-way).

        Later GETs of that file answer 503, as from a server that went away: the client resumes a
        dropped download and resets its retry budget whenever bytes arrive, so a server that kept
        sending part of the file would keep it retrying for ever.
        """
        self._cut_after[(repo_id, filename)] = -1 if after_bytes is None else after_bytes

    def downloads(self) -> list[str]:
        """Paths of the file GETs served so far."""
        return [path for method, path in self.requests if method == "GET" and "/resolve/" in path]

    def take_cut(self, repo_id: str, filename: str, size: int) -> tuple[str, int] | None:
        """For a file marked by `cut_download`: ("cut", n) on the first GET, then ("gone", 0)."""
        key = (repo_id, filename)
        with self._lock:
            if key not in self._cut_after:
                return None
            if key in self._cut_done:
                return ("gone", 0)
            self._cut_done.add(key)
            after = self._cut_after[key]
            return ("cut", size // 2 if after < 0 else min(after, size - 1))


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a cut connection cannot poison the next request.
    protocol_version = "HTTP/1.0"
    server_version = "FakeHub/1"

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format, *args):  # noqa: A002 - quiet: tests read `hub.requests` instead
        pass

    def do_HEAD(self):
        self._dispatch(head=True)

    def do_GET(self):
        self._dispatch(head=False)

    def _dispatch(self, head: bool) -> None:
        url = urlsplit(self.path)
        self.hub.requests.append((self.command, url.path))
        for route, pattern in _ROUTES:
            match = pattern.match(url.path)
            if match is None:
                continue
            groups = {
                k: unquote(v) if v is not None else None for k, v in match.groupdict().items()
            }
            repo = self.hub.repos.get(groups["repo"])
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {groups['repo']} not found")
            query = parse_qs(url.query)
            return getattr(self, f"_serve_{route}")(repo, groups, query, head)
        self._error(404, None, f"no route for {url.path}")

    # --- API routes -------------------------------------------------------------------------

    def _serve_refs(self, repo: FakeRepo, groups: dict, query: dict, head: bool) -> None:
        def refs(names: dict[str, str], kind: str) -> list[dict]:
            return [
                {"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in names.items()
            ]

        body = {
            "branches": refs(repo.branches, "heads"),
            "converts": [],
            "tags": refs(repo.tags, "tags"),
        }
        if query.get("include_prs"):
            body["pullRequests"] = []
        self._json(body, head)

    def _serve_revision(self, repo: FakeRepo, groups: dict, query: dict, head: bool) -> None:
        commit = self._commit_or_404(repo, groups)
        if commit is None:
            return
        files = repo.commits[commit]
        body = {
            "id": groups["repo"],
            "modelId": groups["repo"],
            "sha": commit,
            "private": False,
            "disabled": False,
            "gated": False,
            "lastModified": "2024-09-01T00:00:00.000Z",
            "siblings": [{"rfilename": p} for p in files],
        }
        self._json(body, head)

    def _serve_tree(self, repo: FakeRepo, groups: dict, query: dict, head: bool) -> None:
        commit = self._commit_or_404(repo, groups)
        if commit is None:
            return
        recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
        self._json(tree_entries(repo.commits[commit], groups["path"] or "", recursive), head)

    # --- file route -------------------------------------------------------------------------

    def _serve_resolve(self, repo: FakeRepo, groups: dict, query: dict, head: bool) -> None:
        commit = self._commit_or_404(repo, groups)
        if commit is None:
            return
        path = groups["path"]
        data = repo.commits[commit].get(path)
        if data is None:
            return self._error(404, "EntryNotFound", f"{path} not found", commit=commit)
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes", **etag_headers(path, data)}
        if head:
            return self._send(200, headers, b"", length=len(data), head=True)

        cut = self.hub.take_cut(groups["repo"], path, len(data))
        if cut is not None and cut[0] == "gone":
            return self._error(503, None, "fake hub: connection lost", commit=commit)
        start = range_start(self.headers.get("Range"))
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        if cut is not None:
            # Promise the whole body, send part of it, then close: the client sees the connection
            # drop mid-file.
            self._send(200, headers, body[: cut[1]], length=len(body), head=False)
            self.close_connection = True
            return
        self._send(206 if start else 200, headers, body, length=len(body), head=False)

    # --- helpers ----------------------------------------------------------------------------

    def _commit_or_404(self, repo: FakeRepo, groups: dict) -> str | None:
        commit = repo.resolve(groups["rev"])
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {groups['rev']}")
        return commit

    def _json(self, obj, head: bool) -> None:
        body = json.dumps(obj).encode()
        self._send(200, {"Content-Type": "application/json"}, body, length=len(body), head=head)

    def _error(
        self, status: int, code: str | None, message: str, commit: str | None = None
    ) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        if commit:
            headers["X-Repo-Commit"] = commit
        body = json.dumps({"error": message}).encode()
        self._send(status, headers, body, length=len(body), head=self.command == "HEAD")

    def _send(self, status: int, headers: dict, body: bytes, length: int, head: bool) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on this response; nothing to clean up


def etag_headers(path: str, data: bytes) -> dict[str, str]:
    # As on the real Hub: LFS files are known by their sha256, other files by their git blob id.
    if path.endswith(LFS_SUFFIXES):
        sha256 = hashlib.sha256(data).hexdigest()
        return {
            "ETag": f'"{sha256}"',
            "X-Linked-Etag": f'"{sha256}"',
            "X-Linked-Size": str(len(data)),
        }
    return {"ETag": f'"{git_blob_sha1(data)}"'}


def tree_entries(files: dict[str, bytes], under: str, recursive: bool) -> list[dict]:
    prefix = f"{under.strip('/')}/" if under.strip("/") else ""
    entries: dict[str, dict] = {}
    for path, data in files.items():
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        # Folders on the way to the file are listed too, as the Hub does.
        for depth in range(1, len(parts)):
            if not recursive and depth > 1:
                break
            folder = prefix + "/".join(parts[:depth])
            entries.setdefault(
                folder, {"type": "directory", "oid": git_blob_sha1(folder.encode()), "path": folder}
            )
        if not recursive and len(parts) > 1:
            continue
        entry = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
        if path.endswith(LFS_SUFFIXES):
            entry["lfs"] = {
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": 134,
            }
        entries[path] = entry
    return list(entries.values())


def range_start(header: str | None) -> int:
    """First byte asked for by a `Range: bytes=N-` header (0 when absent)."""
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(match.group(1)) if match else 0


def _refuse_non_loopback(request: httpx2.Request) -> None:
    if request.url.host not in ("127.0.0.1", "localhost"):
        raise RuntimeError(
            f"test tried to reach {request.url}: only the loopback fake hub is allowed"
        )


def _loopback_only_client() -> httpx2.Client:
    return httpx2.Client(
        event_hooks={"request": [hf_http.hf_request_event_hook, _refuse_non_loopback]},
        follow_redirects=True,
        timeout=None,
    )


@contextlib.contextmanager
def loopback_client(monkeypatch, endpoint: str, hf_home: Path) -> Iterator[None]:
    """Point huggingface_hub at `endpoint` with an empty cache and no token, loopback only.

    huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE into `constants` at import, so
    setting the environment in a test is too late: the constants are patched instead (and the env
    too, for subprocesses). The URL template for file downloads is derived from the endpoint at
    import as well, hence patched with it.
    """
    hf_home = Path(hf_home)
    settings = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "HF_HUB_DISABLE_TELEMETRY": True,
    }
    for name, value in settings.items():
        monkeypatch.setattr(constants, name, value, raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv(
        "HF_OIDC_RESOURCE", raising=False
    )  # would exchange a CI token over the network
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    hf_http.set_client_factory(_loopback_only_client)
    try:
        yield
    finally:
        hf_http.set_client_factory(hf_http.default_client_factory)
