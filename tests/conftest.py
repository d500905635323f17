"""Shared fixtures: the repo root, the mirror, and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from realfake.core.params import find_mirror

pytest_plugins = ("s3_server",)  # the local S3 server fixtures: s3_server, s3

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


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
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
