"""Shared fixtures and helpers: the repo root, the mirror, a real HTTP server on 127.0.0.1, running stage scripts."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from http_helpers import serving

from realfake.core.params import find_mirror

pytest_plugins = ("s3_server",)  # the local S3 server fixtures: s3_server, s3

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


def run_script(cwd: Path, script: str, *args: str, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """Run `stages/<script>` as DVC would (cwd = a project root), with this checkout's package first on the path."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, str(REPO / "stages" / script), *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=timeout)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """A user mistake: exit code 2, one line on stderr naming every fragment, no traceback."""
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert all(f in proc.stderr for f in fragments), proc.stderr


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def mirror() -> Path:
    """The offline mirror, or a clean skip when this machine has none."""
    path = find_mirror(REPO)
    if path is None:
        pytest.skip("offline mirror (../shared/mirror or $REALFAKE_MIRROR) not available")
    return path


@dataclass
class FileServer:
    """Serves files from `root` with Range support; `drop_after` cuts the first GET of a file mid-body."""

    root: Path
    port: int = 0
    drop_after: int | None = None
    requests: list[dict] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


def _handler(server: FileServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            path = server.root / self.path.lstrip("/")
            rng = self.headers.get("Range")
            server.requests.append({"path": self.path, "range": rng})
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            if start >= len(data) and rng:
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206 if rng else 200)
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            body = data[start:]
            first_get = sum(r["path"] == self.path for r in server.requests) == 1
            if server.drop_after is not None and first_get:
                self.wfile.write(body[: server.drop_after])
                self.wfile.flush()
                self.close_connection = True  # the connection drops mid-file
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FileServer]:
    """A real HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    state = FileServer(root)
    with serving(_handler(state)) as state.port:
        yield state


@dataclass
class SampleRun:
    """The pipeline reproduced on the embedded sample in a fresh git repo, and committed."""

    root: Path
    lock: str  # dvc.lock right after the run


@pytest.fixture(scope="session")
def sample_pipeline(tmp_path_factory) -> SampleRun:
    """`dvc repro --force` of the whole sample pipeline in a fresh copy of the repo (minutes: once per session).

    Committed afterwards, so experiments have a baseline; tests that change its workspace must restore it.
    """
    from repo_helpers import copy_worktree, dvc, run

    root = copy_worktree(tmp_path_factory.mktemp("sample") / "realfake")
    dvc(["repro", "--force"], root)
    lock = (root / "dvc.lock").read_text()
    run(["git", "add", "-A"], root)
    # empty when the copy's committed dvc.lock and metrics already match the run (they should: reproducible)
    run(["git", "commit", "-q", "--allow-empty", "-m", "dvc repro"], root)
    return SampleRun(root, lock)
