"""Checksums of downloaded files: the sha256 a source pins in params.yaml, and the MD5 an S3 ETag may carry."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from realfake.core.errors import UserError


def file_hexdigest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file (hashlib.file_digest reads it in chunks); md5 is only ever an integrity check here."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, lambda: hashlib.new(algorithm, usedforsecurity=False)).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file."""
    return file_hexdigest(path, "sha256")


def verify_sha256(path: Path, expected: str | None) -> None:
    """Raise a clear error when `path` does not have the expected checksum."""
    if not expected:
        return
    actual = sha256_file(path)
    if actual.lower() != expected.lower():
        raise UserError(f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}")
