"""Fetch a source to a local archive or directory: HTTP(S), S3, Kaggle, the offline mirror, or a local path."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from realfake.core.errors import UserError
from realfake.core.params import MIRROR_ENV, find_mirror

log = logging.getLogger(__name__)

CHUNK = 1 << 16  # small enough that a dropped connection loses little of the part file


@dataclass(frozen=True)
class FetchConfig:
    """Network behaviour of the fetcher (params.yaml `download` section)."""

    timeout_s: float = 30.0
    retries: int = 5
    backoff_s: float = 1.0
    cache_dir: str = "data/downloads"


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> None:
    """Raise a clear error when `path` does not have the expected checksum."""
    if not expected:
        return
    actual = sha256_file(path)
    if actual.lower() != expected.lower():
        raise UserError(f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}")


def fetch(uri: str, source: str, sha256: str | None, cfg: FetchConfig) -> Path:
    """Return a local path (archive or directory) holding the source named by `uri`."""
    if uri.startswith(("http://", "https://")):
        dest = Path(cfg.cache_dir) / source / (Path(uri.split("?", 1)[0]).name or "download")
        return fetch_http(uri, dest, sha256, cfg)
    if uri.startswith("s3://"):
        from realfake.ingest.s3 import fetch_s3  # boto3 is imported only when a source lives on S3

        return fetch_s3(uri, Path(cfg.cache_dir) / source, sha256, cfg)
    if uri.startswith("kaggle://"):
        return fetch_kaggle(uri.removeprefix("kaggle://"), Path(cfg.cache_dir) / source, sha256)
    path = resolve_local(uri)
    if path.is_file():
        verify_sha256(path, sha256)
    return path


def resolve_local(uri: str) -> Path:
    """Turn `mirror://name`, `file://path` or a plain path into an existing local path."""
    if uri.startswith("mirror://"):
        mirror = find_mirror()
        if mirror is None:
            raise UserError(
                f"{uri}: the offline mirror was not found; set {MIRROR_ENV}=/path/to/shared/mirror "
                "or use the default profile (data.profile=sample)"
            )
        path = mirror / uri.removeprefix("mirror://")
    else:
        path = Path(uri.removeprefix("file://")).expanduser()
    if not path.exists():
        raise UserError(f"source path does not exist: {path}")
    return path


def fetch_http(url: str, dest: Path, sha256: str | None, cfg: FetchConfig) -> Path:
    """Download `url` to `dest` via a `.part` file, resuming and retrying; verify the checksum."""
    if dest.exists():
        try:
            verify_sha256(dest, sha256)
            log.info("%s: already downloaded", dest)
            return dest
        except UserError:
            dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(cfg.retries + 1):
        try:
            _download_into(url, part, cfg.timeout_s)
            break
        except _retryable() as exc:
            if attempt == cfg.retries:
                raise UserError(f"download of {url} failed after {cfg.retries + 1} attempts: {exc}") from exc
            wait = cfg.backoff_s * 2**attempt
            log.warning("download of %s interrupted (%s); resuming in %.1fs", url, exc, wait)
            time.sleep(wait)
    try:
        verify_sha256(part, sha256)
    except UserError:
        part.unlink(missing_ok=True)  # a wrong file must not be resumed or kept
        raise
    os.replace(part, dest)
    return dest


def _retryable() -> tuple[type[BaseException], ...]:
    """Errors after which another attempt (resuming the part file) makes sense."""
    import requests

    return (_ServerBusy, _Truncated, requests.ConnectionError, requests.Timeout,
            requests.exceptions.ChunkedEncodingError)


def _download_into(url: str, part: Path, timeout_s: float) -> None:
    """One HTTP attempt: continue `part` with a Range request when it already holds bytes."""
    import requests

    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with requests.get(url, headers=headers, stream=True, timeout=(timeout_s, timeout_s)) as resp:
        if resp.status_code == 416 and have:
            return  # nothing left to fetch: the part file is complete
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _ServerBusy(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise UserError(f"download of {url} failed: HTTP {resp.status_code}")
        resumed = resp.status_code == 206
        expected = _expected_length(resp, have if resumed else 0)
        with open(part, "ab" if resumed else "wb") as fh:
            for chunk in resp.iter_content(CHUNK):
                fh.write(chunk)
    got = part.stat().st_size
    if expected is not None and got < expected:
        raise _Truncated(f"connection closed after {got} of {expected} bytes")


def _expected_length(resp, offset: int) -> int | None:
    """Total file size the response promises, if it says."""
    length = resp.headers.get("Content-Length")
    return offset + int(length) if length is not None else None


class _ServerBusy(Exception):
    """A 5xx/429 answer worth retrying."""


class _Truncated(Exception):
    """The body ended before Content-Length: resume it."""




def kaggle_credentials_present() -> bool:
    """True when the kaggle package would find credentials (env vars or kaggle.json)."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config_dir / "kaggle.json").is_file()


def fetch_kaggle(dataset: str, dest_dir: Path, sha256: str | None) -> Path:
    """Download a Kaggle dataset archive with the official `kaggle` package (imported lazily)."""
    if dataset.count("/") != 1:
        raise UserError(f"kaggle://{dataset}: expected kaggle://<owner>/<dataset>")
    if not kaggle_credentials_present():
        raise UserError(
            f"kaggle://{dataset} needs Kaggle API credentials: set KAGGLE_USERNAME and KAGGLE_KEY, "
            "or save kaggle.json (Kaggle > Settings > API > Create New Token) to ~/.kaggle/kaggle.json "
            "(or to $KAGGLE_CONFIG_DIR) with mode 600"
        )
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as exc:
        raise UserError("the kaggle profile needs the kaggle package: pip install 'realfake[kaggle]'") from exc
    api = KaggleApi()
    api.authenticate()
    dest_dir.mkdir(parents=True, exist_ok=True)
    api.dataset_download_files(dataset, path=str(dest_dir), unzip=False, quiet=False)
    archive = dest_dir / f"{dataset.split('/')[1]}.zip"
    if not archive.exists():
        raise UserError(f"kaggle download of {dataset} did not produce {archive}")
    verify_sha256(archive, sha256)
    return archive
