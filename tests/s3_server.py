"""Pytest fixtures for a real local S3 server (SeaweedFS `weed mini`), one per test session."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from realfake.ingest.seaweed import S3Server, SeaweedUnavailable, seaweed_s3

BUCKET = "realfake-test"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS on 127.0.0.1 with bucket `realfake-test`, stopped by PID at the end even if tests fail."""
    data_dir = tmp_path_factory.mktemp("seaweedfs")
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(seaweed_s3(data_dir, buckets=(BUCKET,)))
        except SeaweedUnavailable as exc:
            pytest.skip(f"local S3 server unavailable: {exc}")
        yield server


@dataclass(frozen=True)
class S3Env:
    """The session's server, this test's own key prefix in the shared bucket, and a boto3 client."""

    server: S3Server
    bucket: str
    prefix: str
    client: object

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)


@pytest.fixture
def s3(s3_server: S3Server, request: pytest.FixtureRequest, tmp_path: Path,
       monkeypatch: pytest.MonkeyPatch) -> S3Env:
    """Point the standard AWS variables at the local server (and away from ~/.aws); give the test a prefix."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no 1 s metadata probes when credentials are absent
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name) + "/"
    return S3Env(s3_server, BUCKET, prefix, s3_server.client())
