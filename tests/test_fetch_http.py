"""HTTP without a checksum: a real server on 127.0.0.1 that misbehaves on purpose, one way per request."""

from __future__ import annotations

import hashlib
import http.server
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from http_helpers import serving

from realfake.core.errors import UserError
from realfake.ingest.fetch import FetchConfig, fetch_http

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
CUT = 30_000


@dataclass
class Misbehaving:
    """Serves PAYLOAD at /f.bin; the n-th request behaves as `script[n]`, later ones as `then`."""

    script: list[str] = field(default_factory=list)
    then: str = "good"
    port: int = 0
    requests: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/f.bin"

    @property
    def ranges(self) -> list[str | None]:
        return [r["range"] for r in self.requests]


def _handler(server: Misbehaving):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            rng = self.headers.get("Range")
            n = len(server.requests)
            mode = server.script[n] if n < len(server.script) else server.then
            server.requests.append({"range": rng, "mode": mode})
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            getattr(self, "mode_" + mode.replace("-", "_"))(rng, start)

        def head(self, status: int, headers: dict[str, str | int]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, str(value))
            self.end_headers()

        def mode_good(self, rng, start):
            """What a correct server does with Range."""
            if rng and start >= len(PAYLOAD):
                self.head(416, {"Content-Range": f"bytes */{len(PAYLOAD)}"})
                return
            body = PAYLOAD[start:]
            extra = {"Content-Range": f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"} if rng else {}
            self.head(206 if rng else 200, {"Content-Length": len(body), **extra})
            self.wfile.write(body)

        def mode_busy(self, rng, start):
            """503 Service Unavailable, come back at once (Retry-After: 0)."""
            self.head(503, {"Retry-After": 0, "Content-Length": 0})

        def mode_throttled(self, rng, start):
            """429 Too Many Requests, without Retry-After: the client's own backoff applies."""
            self.head(429, {"Content-Length": 0})

        def mode_forbidden(self, rng, start):
            """403: asking again cannot help."""
            self.head(403, {"Content-Length": 0})

        def mode_no_length_cut(self, rng, start):
            """200 with no Content-Length (the body ends when the connection closes), closed after CUT bytes."""
            self.head(200, {})
            self.wfile.write(PAYLOAD[:CUT])

        def mode_no_length_ignore_range(self, rng, start):
            """The whole file, with no Content-Length, whatever Range asked for."""
            self.head(200, {})
            self.wfile.write(PAYLOAD)

        def mode_wrong_range(self, rng, start):
            """A 206 that starts 1000 bytes before the offset asked for, consistent in itself."""
            begin = max(start - 1000, 1)
            body = PAYLOAD[begin:]
            self.head(206, {"Content-Length": len(body),
                            "Content-Range": f"bytes {begin}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"})
            self.wfile.write(body)

        def mode_range_without_content_range(self, rng, start):
            """A 206 that does not say which bytes it holds."""
            body = PAYLOAD[start:]
            self.head(206, {"Content-Length": len(body)})
            self.wfile.write(body)

        def mode_chunked_cut(self, rng, start):
            """Chunked transfer, the connection closed mid-body without the final empty chunk."""
            self.protocol_version = "HTTP/1.1"
            self.head(200, {"Transfer-Encoding": "chunked"})
            self.wfile.write(b"%x\r\n%s\r\n" % (CUT, PAYLOAD[:CUT]))
            self.wfile.write(b"%x\r\n%s" % (5000, PAYLOAD[CUT:CUT + 1000]))  # a chunk cut short
            self.close_connection = True

        def mode_chunked_whole(self, rng, start):
            """Chunked transfer, ending properly: the end of the body is explicit."""
            self.protocol_version = "HTTP/1.1"
            self.head(200, {"Transfer-Encoding": "chunked"})
            for i in range(0, len(PAYLOAD), 40_000):
                piece = PAYLOAD[i:i + 40_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True

    return Handler


@pytest.fixture
def server() -> Iterator[Misbehaving]:
    state = Misbehaving()
    with serving(_handler(state)) as state.port:
        yield state


CFG = FetchConfig(retries=3, backoff_s=0.01, timeout_s=10)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("mode", ["wrong-range", "range-without-content-range"])
def test_a_206_that_does_not_continue_the_part_file_is_not_appended(tmp_path, server, mode):
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(PAYLOAD[:40_000])  # what a killed run left
    server.script = [mode]
    assert fetch_http(server.url, dest, None, CFG).read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=40000-", None]  # the bad answer discarded the part: started again


def test_a_part_file_longer_than_the_file_is_not_accepted(tmp_path, server):
    """A 416 whose Content-Range gives another size: the part (from an older, larger file) is not the file."""
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(PAYLOAD + b"tail of an older version")
    assert fetch_http(server.url, dest, None, CFG).read_bytes() == PAYLOAD
    assert server.ranges == [f"bytes={len(PAYLOAD) + 24}-", None]


def test_a_body_cut_short_without_content_length_is_completed(tmp_path, server):
    server.script = ["no-length-cut"]
    dest = fetch_http(server.url, tmp_path / "f.bin", None, CFG)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == [None, f"bytes={CUT}-"]  # asked what follows the cut, and got it


def test_a_whole_body_without_content_length_is_confirmed_by_a_416(tmp_path, server):
    server.script = ["no-length-ignore-range"]
    assert fetch_http(server.url, tmp_path / "f.bin", None, CFG).read_bytes() == PAYLOAD
    assert server.ranges == [None, f"bytes={len(PAYLOAD)}-"]
    record = json.loads((tmp_path / "f.bin.complete.json").read_text())
    assert record["complete_by"] == "range-end" and record["bytes"] == len(PAYLOAD)


def test_no_length_and_no_range_support_is_refused_without_a_checksum(tmp_path, server):
    server.script, server.then = ["no-length-cut"], "no-length-ignore-range"
    with pytest.raises(UserError, match="cannot be told from a whole one.*sha256"):
        fetch_http(server.url, tmp_path / "f.bin", None, CFG)
    assert leftovers(tmp_path) == []  # neither the file, nor a part, nor a record
    # the same server is fine when a checksum can judge
    assert fetch_http(server.url, tmp_path / "f.bin", SHA, CFG).read_bytes() == PAYLOAD


def test_a_whole_chunked_body_needs_no_length(tmp_path, server):
    server.script = ["chunked-whole"]
    assert fetch_http(server.url, tmp_path / "f.bin", None, CFG).read_bytes() == PAYLOAD
    assert server.ranges == [None]  # the final empty chunk says the body is whole


def test_a_chunked_body_cut_short_is_resumed(tmp_path, server):
    server.script = ["chunked-cut"]
    assert fetch_http(server.url, tmp_path / "f.bin", None, CFG).read_bytes() == PAYLOAD
    assert len(server.ranges) == 2 and server.ranges[1] == f"bytes={CUT}-"


def test_a_file_cut_short_by_an_earlier_run_is_not_reused(tmp_path, server):
    dest = tmp_path / "f.bin"
    dest.write_bytes(PAYLOAD[:CUT])  # accepted by an older run, with no record of being complete
    assert fetch_http(server.url, dest, None, CFG).read_bytes() == PAYLOAD
    assert len(server.requests) == 1
    assert fetch_http(server.url, dest, None, CFG).read_bytes() == PAYLOAD  # now recorded: reused
    assert len(server.requests) == 1
    dest.write_bytes(PAYLOAD[:-1])  # changed since: the record no longer describes it
    assert fetch_http(server.url, dest, None, CFG).read_bytes() == PAYLOAD
    assert len(server.requests) == 2
    other = server.url.replace("f.bin", "f.bin?v=2")  # another URL, same cache name: not the same file
    fetch_http(other, dest, None, CFG)
    assert len(server.requests) == 3


def test_busy_answers_are_asked_again_with_backoff(tmp_path, server):
    """429/5xx go through urllib3's Retry in the session; they do not use up the resume loop's attempts."""
    server.script = ["busy", "throttled", "busy"]
    assert fetch_http(server.url, tmp_path / "f.bin", None, CFG).read_bytes() == PAYLOAD
    assert [r["mode"] for r in server.requests] == ["busy", "throttled", "busy", "good"]


def test_a_resumed_request_that_meets_a_busy_server_keeps_its_range(tmp_path, server):
    """A cut body, then as many busy answers as `retries`: the resume still has its own attempts left."""
    server.script = ["no-length-cut", "busy", "busy", "busy"]
    assert fetch_http(server.url, tmp_path / "f.bin", None, CFG).read_bytes() == PAYLOAD
    assert server.ranges == [None] + [f"bytes={CUT}-"] * 4


def test_a_server_that_stays_busy_is_one_clear_error_after_the_retries(tmp_path, server):
    server.then = "busy"
    with pytest.raises(UserError, match=r"HTTP 503 \(still busy after 3 retries\)"):
        fetch_http(server.url, tmp_path / "f.bin", None, CFG)
    assert len(server.requests) == CFG.retries + 1 and leftovers(tmp_path) == []


def test_a_client_error_is_not_asked_again(tmp_path, server):
    server.then = "forbidden"
    with pytest.raises(UserError, match=r"failed: HTTP 403$"):
        fetch_http(server.url, tmp_path / "f.bin", None, CFG)
    assert len(server.requests) == 1
