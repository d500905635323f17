"""Fetch a source to a local archive or directory: HTTP(S), S3, Kaggle, the offline mirror, or a local path."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

from realfake.core.atomic import write_json
from realfake.core.errors import UserError
from realfake.core.params import MIRROR_ENV, find_mirror
from realfake.ingest.checksum import sha256_file, verify_sha256
from realfake.ingest.config import CHUNK, FetchConfig

log = logging.getLogger(__name__)

BUSY = (429, 500, 502, 503, 504)  # answers urllib3's Retry asks again, after its backoff or the server's Retry-After


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
    """Download `url` to `dest` via a `.part` file, resuming and retrying; keep it only once proven complete.

    Two kinds of retry: a busy answer (429, 5xx) is asked again by urllib3's Retry in the session (exponential
    backoff, Retry-After honoured, `download.retries` times); a connection that drops or a body cut short is
    resumed here with a Range request from the end of the part file (`download.retries` times, backoff_s x 2^n).

    Proof is the checksum when one is given; otherwise the length the server declared (Content-Length, or the
    total in Content-Range), the normal end of a chunked body, or a 416 to a Range request starting where the
    bytes end. `<dest>.complete.json` records that proof: a later run reuses `dest` only with a record that
    still matches it, and downloads again otherwise (a file cut short is never mistaken for the whole).
    """
    record = dest.with_name(dest.name + ".complete.json")
    if dest.exists():
        if _reusable(dest, record, url, sha256):
            log.info("%s: already downloaded", dest)
            return dest
        log.warning("%s: not known to be complete and intact; downloading it again", dest)
        dest.unlink()
        record.unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    proof = None
    with _session(cfg) as session:
        for attempt in range(cfg.retries + 1):
            try:
                proof = _download_into(session, url, part, cfg.timeout_s, checksum=bool(sha256))
            except _retryable() as exc:
                if attempt == cfg.retries:
                    raise UserError(f"download of {url} failed after {cfg.retries + 1} attempts: {exc}") from exc
                wait = cfg.backoff_s * 2**attempt
                log.warning("download of %s interrupted (%s); resuming in %.1fs", url, exc, wait)
                time.sleep(wait)
                continue
            if proof is None and sha256 and sha256_file(part).lower() == sha256.lower():
                proof = "sha256"
            if proof is not None:
                break
            log.info("%s: the body ended with no declared length; asking whether more follows", url)
    if proof is None and not sha256:
        part.unlink(missing_ok=True)
        raise UserError(f"download of {url}: could not tell whether it arrived whole after {cfg.retries + 1} "
                        "attempts; give the source a sha256 to check it by")
    try:
        verify_sha256(part, sha256)
    except UserError:
        part.unlink(missing_ok=True)  # a wrong file must not be resumed or kept
        raise
    os.replace(part, dest)
    write_json(record, {"url": url, "bytes": dest.stat().st_size, "sha256": sha256_file(dest),
                        "complete_by": "sha256" if sha256 else proof})
    return dest


def _reusable(dest: Path, record: Path, url: str, sha256: str | None) -> bool:
    """True if `dest` is the whole file: its checksum matches, or its completion record still describes it."""
    if sha256:
        return sha256_file(dest).lower() == sha256.lower()
    try:
        done = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(done, dict) and done.get("url") == url and done.get("bytes") == dest.stat().st_size
            and done.get("sha256") == sha256_file(dest))


def _retryable() -> tuple[type[BaseException], ...]:
    """Errors after which another attempt (resuming the part file) makes sense."""
    import requests
    import urllib3

    return (_Truncated, _BadRange, requests.ConnectionError, requests.Timeout,
            requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError,
            urllib3.exceptions.TimeoutError)


def _session(cfg: FetchConfig):
    """A requests session that asks again after a busy answer; connection errors are left to the resume loop."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(total=None, connect=0, read=0, other=0, status=cfg.retries, status_forcelist=BUSY,
                  allowed_methods=frozenset({"GET"}), backoff_factor=cfg.backoff_s, raise_on_status=False,
                  respect_retry_after_header=True)
    session = requests.Session()
    for scheme in ("http://", "https://"):
        session.mount(scheme, HTTPAdapter(max_retries=retry))
    return session


def _download_into(session, url: str, part: Path, timeout_s: float, checksum: bool = False) -> str | None:
    """One HTTP attempt that continues `part`; return how the file is known complete, or None if not known.

    `checksum`: a checksum will judge the result, so a server that gives no way to tell is still usable.
    """
    have = part.stat().st_size if part.exists() else 0
    # identity: store the bytes as published, which the declared lengths and checksums describe
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
    with session.get(url, headers=headers, stream=True, timeout=(timeout_s, timeout_s)) as resp:
        if resp.status_code == 416 and have:
            return _confirm_end(resp, part, have)
        if resp.status_code >= 400:
            busy = f" (still busy after {len(resp.raw.retries.history)} retries)" if resp.status_code in BUSY else ""
            raise UserError(f"download of {url} failed: HTTP {resp.status_code}{busy}")
        if resp.status_code == 206:
            start, end, total = _content_range(resp, part, have)
        else:
            start, end = 0, _content_length(resp)
            total = end
            if have and total is None and not resp.raw.chunked and not checksum:
                part.unlink(missing_ok=True)
                raise UserError(f"download of {url}: the server declares no length and ignores Range requests, "
                                "so a cut body cannot be told from a whole one; give the source a sha256")
        with open(part, "ab" if start else "wb") as fh:
            for chunk in resp.raw.stream(CHUNK, decode_content=False):
                fh.write(chunk)
        ended_whole = resp.status_code == 200 and bool(resp.raw.chunked)  # a chunked body ends explicitly
    return _judge(part, end, total, ended_whole)


def _content_length(resp) -> int | None:
    length = resp.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


def _content_range(resp, part: Path, have: int) -> tuple[int, int, int | None]:
    """(start, end, total) of a 206 that continues `part`; a range that does not fit discards the part."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", "").strip())
    if not match:
        part.unlink(missing_ok=True)
        raise _BadRange(f"a 206 answer without a valid Content-Range ({resp.headers.get('Content-Range')!r}); "
                        "starting again")
    start, last = int(match[1]), int(match[2])
    total = None if match[3] == "*" else int(match[3])
    length = _content_length(resp)
    if start not in (0, have) or last < start or (length is not None and length != last - start + 1):
        part.unlink(missing_ok=True)
        raise _BadRange(f"asked for bytes from {have}, got Content-Range {match[0]!r} "
                        f"(Content-Length {length}); starting again")
    return start, last + 1, total


def _confirm_end(resp, part: Path, have: int) -> str:
    """A 416 to `bytes=<have>-`: nothing lies past the part, unless the server's stated size says otherwise."""
    match = re.fullmatch(r"bytes \*/(\d+)", resp.headers.get("Content-Range", "").strip())
    if match and int(match[1]) != have:
        part.unlink(missing_ok=True)
        raise _BadRange(f"the file has {match[1]} bytes, the part file {have}; starting again")
    return "range-end"


def _judge(part: Path, end: int | None, total: int | None, ended_whole: bool) -> str | None:
    """How the part file is known complete after one response, or None; raise if it is short or too long."""
    got = part.stat().st_size
    if end is not None and got < end:
        raise _Truncated(f"connection closed after {got} of {end} bytes")
    if (end is not None and got > end) or (total is not None and got > total):
        part.unlink(missing_ok=True)
        raise _BadRange(f"received {got} bytes, more than the {total or end} declared; starting again")
    if total is not None:
        if got < total:
            raise _Truncated(f"have {got} of {total} bytes")
        return "length"
    return "chunked" if ended_whole else None


class _Truncated(Exception):
    """The body ended before its declared length: resume it."""


class _BadRange(Exception):
    """The server's range or length does not fit the part file, which was discarded: start again."""


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
