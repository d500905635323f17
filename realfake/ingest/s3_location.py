"""Where an S3 source lives: `s3://bucket/key` parsed into a bucket and a key (an object) or a prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass

from realfake.core.errors import UserError


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (an object) or a key prefix."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")


@dataclass(frozen=True)
class S3Object:
    """One listed object: its key, its path relative to the prefix, size and ETag."""

    key: str
    rel: str
    size: int
    etag: str


def parse_s3_uri(uri: str) -> S3Location:
    """`s3://bucket/key` → S3Location, with a clear error for a malformed URI."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not re.fullmatch(r"[a-z0-9][a-z0-9.\-_]{1,254}", bucket):
        raise UserError(f"{uri}: not a valid S3 URI; expected s3://<bucket>/<key or prefix/>")
    return S3Location(bucket, key)
