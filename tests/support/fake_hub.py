"""A minimal stand-in for the Hugging Face hub's file endpoints, served on loopback.

No hub is reachable here, so the download path is tested against this: real huggingface_hub
code (metadata HEAD, GET, cache layout, offline mode) talks HTTP to it exactly as to the hub.
It serves ``/{repo}/resolve/{revision}/{filename}`` with the headers huggingface_hub reads:
``X-Repo-Commit``, ``ETag`` / ``X-Linked-Etag`` (the sha256 for large files, as the hub does for
LFS files) and ``Content-Length``; unknown files get the hub's ``EntryNotFound`` error code.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass
class FakeRepo:
    commit: str
    files: dict[str, Path] = field(default_factory=dict)
    announced_sha256: dict[str, str] = field(
        default_factory=dict
    )  # override to simulate corruption


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                parts = unquote(urlparse(self.path).path).strip("/").split("/")
                # owner/name/resolve/revision/filename
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "RepoNotFound")
                repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound")
                if revision not in (repo.commit, "main"):
                    return self._error(404, "RevisionNotFound")
                path = repo.files.get(filename)
                if path is None:
                    return self._error(404, "EntryNotFound")
                data = path.read_bytes()
                sha = repo.announced_sha256.get(filename, hashlib.sha256(data).hexdigest())
                self.send_response(200)
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("ETag", f'"{sha}"')
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(data)
                return None

            def _error(self, status: int, code: str) -> None:
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def add_repo(self, repo_id: str, files: dict[str, Path], commit: str | None = None) -> FakeRepo:
        commit = commit or hashlib.sha1(repo_id.encode()).hexdigest()
        self.repos[repo_id] = FakeRepo(commit=commit, files=dict(files))
        return self.repos[repo_id]

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_timbre(
    args: list[str], env: dict[str, str], timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    """``timbre ARGS`` in a child process with ``env`` (a fresh interpreter, as a user runs it)."""
    return subprocess.run(
        [sys.executable, "-m", "timbre.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
