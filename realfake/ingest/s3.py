"""Sources on S3 or any S3-compatible store: `s3://bucket/key` (one archive object) or `s3://bucket/prefix/`.

The endpoint and the credentials come from the standard AWS chain (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/config and ~/.aws/credentials), never from params.yaml, so no
secret reaches git or dvc.lock. An archive object lands in the download cache like an HTTP download (a `.part`
file resumed with Range requests, the params' sha256 checked); a prefix is synchronised into a directory there,
each object checked against its listed size and, where the ETag is an MD5, its MD5; a sha256 pinned for a prefix
is the digest of the `sha256sum`-style listing of its objects (see `prefix_digest`). The caller reads either
through the same extraction code as the mirror and local paths.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import Any

from realfake.core.atomic import write_json
from realfake.core.errors import UserError
from realfake.core.progress import tqdm
from realfake.ingest.checksum import file_hexdigest, sha256_file, verify_sha256
from realfake.ingest.config import CHUNK, FetchConfig
from realfake.ingest.extract import safe_relpath
from realfake.ingest.s3_errors import s3_errors
from realfake.ingest.s3_location import S3Location, S3Object, parse_s3_uri

log = logging.getLogger(__name__)

PREFIX_WORKERS = 16  # S3 GETs are latency-bound: many small objects need requests in flight, not CPU
PREFIX_DIR = "s3-objects"  # a prefix is synchronised into <cache_dir>/<source>/s3-objects/
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")  # single-part, unencrypted uploads: the ETag is the MD5


def s3_client(cfg: FetchConfig):
    """A boto3 S3 client from the standard AWS environment, with the download section's timeouts and retries."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise UserError("s3:// sources need boto3: pip install -e . (realfake depends on dvc-s3 and boto3)") from exc
    for name in ("botocore", "boto3", "s3transfer"):  # their INFO lines ("Found credentials in …") are noise here
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    config = Config(connect_timeout=cfg.timeout_s, read_timeout=cfg.timeout_s,
                    retries={"max_attempts": cfg.retries + 1, "mode": "standard"})
    return boto3.session.Session().client("s3", config=config)


def fetch_s3(uri: str, dest_dir: Path, sha256: str | None, cfg: FetchConfig) -> Path:
    """Return a local archive (an object) or directory (a prefix) holding the source at `uri`."""
    loc = parse_s3_uri(uri)
    archive = dest_dir / PurePosixPath(loc.key).name if not loc.is_prefix else None
    if archive is not None and sha256 and archive.is_file() and sha256_file(archive) == sha256.lower():
        log.info("%s: already downloaded (%s)", uri, archive)  # pinned and present: no need to reach S3
        return archive
    client = s3_client(cfg)
    with s3_errors(loc, client):
        head = _head(client, loc) if archive is not None else None
        if head is not None:
            return fetch_object(client, loc, head, archive, sha256, cfg)
        prefix = S3Location(loc.bucket, loc.key if loc.is_prefix else loc.key + "/")
        objects = list_objects(client, prefix)
        if not objects:
            what = f"no object {loc} and nothing under {prefix}" if archive is not None else f"nothing under {loc}"
            raise UserError(f"{what} (endpoint {client.meta.endpoint_url})")
        return fetch_prefix(client, prefix, objects, dest_dir / PREFIX_DIR, sha256, cfg)


def _head(client, loc: S3Location) -> dict[str, Any] | None:
    """The object's metadata, or None when no object has exactly this key (it may still be a prefix)."""
    from botocore.exceptions import ClientError

    try:
        return client.head_object(Bucket=loc.bucket, Key=loc.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def list_objects(client, prefix: S3Location) -> list[S3Object]:
    """Every object under the prefix (directory markers left out), sorted by key."""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                continue  # a "folder" marker, as the S3 console writes them: not a file
            found.append(S3Object(item["Key"], item["Key"][len(prefix.key):], int(item["Size"]),
                                  item.get("ETag", "").strip('"')))
    return sorted(found, key=lambda o: o.key)


def fetch_object(client, loc: S3Location, head: dict[str, Any], archive: Path, sha256: str | None,
                 cfg: FetchConfig) -> Path:
    """Download one object to `archive` via a `.part` file (resumable), verify it, record its ETag."""
    etag, size = head.get("ETag", "").strip('"'), int(head["ContentLength"])
    record = archive.with_name(archive.name + ".s3.json")
    if archive.is_file() and not sha256 and _read_json(record).get("etag") == etag \
            and archive.stat().st_size == size:
        log.info("%s: already downloaded, ETag unchanged (%s)", loc, archive)
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.unlink(missing_ok=True)
    part = archive.with_name(f"{archive.name}.{_safe_etag(etag)}.part")  # a changed object never resumes a stale part
    for stale in archive.parent.glob(f"{archive.name}.*.part"):
        if stale != part:
            stale.unlink()
    try:
        response = _download(client, loc, etag, size, part, cfg, progress=True)
        _verify_md5(part, response, loc)
        if sha256:
            verify_sha256(part, sha256)
    except BaseException:
        part.unlink(missing_ok=True)  # a wrong or unfinished file must not be kept (resume is for retries)
        raise
    digest = sha256_file(part)
    if not sha256:
        log.info("%s: sha256 %s (pin it as the source's sha256 in params.yaml)", loc, digest)
    part.replace(archive)
    write_json(record, {"uri": str(loc), "etag": etag, "size": size, "sha256": digest})
    return archive


def fetch_prefix(client, prefix: S3Location, objects: list[S3Object], out_dir: Path, sha256: str | None,
                 cfg: FetchConfig) -> Path:
    """Synchronise the objects under `prefix` into `out_dir` (only what changed), then check the digest."""
    wanted, refused = _local_paths(objects)
    record_path = out_dir.with_name(out_dir.name + ".json")
    previous = _read_json(record_path).get("objects", {})
    record_path.unlink(missing_ok=True)  # until this sync completes, the directory is not trusted as a whole
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_unlisted(out_dir, wanted)
    todo = [(rel, obj) for rel, obj in wanted.items() if not _is_current(out_dir / rel, obj, previous.get(rel))]
    log.info("%s: %d objects, %d to download", prefix, len(wanted), len(todo))
    pool = ThreadPoolExecutor(max_workers=max(1, min(PREFIX_WORKERS, len(todo))))
    try:
        jobs = [pool.submit(_download_file, client, prefix.bucket, obj, out_dir / rel, cfg) for rel, obj in todo]
        for job in tqdm(as_completed(jobs), total=len(jobs), desc=f"s3 {prefix}", unit="obj", leave=False,
                        disable=not jobs):
            job.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    files = {rel: sha256_file(out_dir / rel) for rel in wanted}
    digest = prefix_digest(files)
    if sha256 and digest != sha256.lower():
        shutil.rmtree(out_dir)  # as with a wrong archive, nothing of a mismatching download is kept
        raise UserError(f"checksum mismatch for {prefix} ({len(files)} objects): expected prefix sha256 "
                        f"{sha256}, got {digest}")
    if not sha256:
        log.info("%s: prefix sha256 %s (pin it as the source's sha256 in params.yaml)", prefix, digest)
    write_json(record_path, {
        "uri": str(prefix), "sha256": digest, "refused": refused,
        "objects": {rel: {"key": obj.key, "etag": obj.etag, "size": obj.size, "sha256": files[rel]}
                    for rel, obj in wanted.items()},
    })
    return out_dir


def prefix_digest(files: dict[str, str]) -> str:
    """SHA-256 of `sha256sum`'s output over the files sorted by path: one `<sha256>  <path>` line each.

    The same as `(cd DIR && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum) | sha256sum`.
    """
    lines = "".join(f"{files[rel]}  {rel}\n" for rel in sorted(files, key=lambda r: r.encode()))
    return hashlib.sha256(lines.encode()).hexdigest()


def _local_paths(objects: list[S3Object]) -> tuple[dict[str, S3Object], list[dict[str, str]]]:
    """Map objects to safe relative paths; refuse (with a reason) keys that climb out or collide."""
    wanted: dict[str, S3Object] = {}
    folders: set[str] = set()
    refused = []
    for obj in objects:
        rel = safe_relpath(obj.rel)
        reason = "unsafe-path" if rel is None else "duplicate-path" if rel in wanted else None
        if reason is None and (rel in folders or any(p in wanted for p in _parents(rel))):
            reason = "path-conflict"  # `a` and `a/b` cannot both be files: the first in key order wins
        if reason:
            log.warning("refused S3 object %r: %s", obj.key, reason)
            refused.append({"key": obj.key, "reason": reason})
        else:
            wanted[rel] = obj
            folders.update(_parents(rel))
    return wanted, refused


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _remove_unlisted(out_dir: Path, wanted: dict[str, S3Object]) -> None:
    """Delete files no longer under the prefix, and leftovers of an interrupted run."""
    for path in sorted(out_dir.rglob("*"), reverse=True):
        rel = path.relative_to(out_dir).as_posix()
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif rel not in wanted:
            path.unlink()


def _is_current(path: Path, obj: S3Object, previous: dict[str, Any] | None) -> bool:
    """True when the local copy is this very object version: same size, and same ETag or MD5."""
    if not path.is_file() or path.stat().st_size != obj.size:
        return False
    if previous is not None and previous.get("etag") == obj.etag:
        return True
    return bool(_MD5_ETAG.match(obj.etag)) and file_hexdigest(path, "md5") == obj.etag


def _download_file(client, bucket: str, obj: S3Object, dest: Path, cfg: FetchConfig) -> None:
    """Download one object of a prefix via a hidden `.part` file beside it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    try:
        part.unlink(missing_ok=True)
        response = _download(client, S3Location(bucket, obj.key), obj.etag, obj.size, part, cfg)
        _verify_md5(part, response, S3Location(bucket, obj.key))
        part.replace(dest)
    finally:
        part.unlink(missing_ok=True)


def _download(client, loc: S3Location, etag: str, size: int, part: Path, cfg: FetchConfig,
              progress: bool = False) -> dict[str, Any]:
    """Stream the object into `part`, resuming with Range requests after a dropped connection.

    `IfMatch` pins the object version: if it changes mid-download the server answers 412 instead of
    splicing two versions together.
    """
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError, IncompleteReadError

    response: dict[str, Any] = {}
    bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"s3 {loc}", leave=False, disable=not progress)
    with bar:
        for attempt in range(cfg.retries + 1):
            have = part.stat().st_size if part.exists() else 0
            bar.n = have
            if have == size and response:
                break
            try:
                kwargs = {"Bucket": loc.bucket, "Key": loc.key, **({"IfMatch": f'"{etag}"'} if etag else {})}
                if have:
                    kwargs["Range"] = f"bytes={have}-"
                response = client.get_object(**kwargs)
                with open(part, "ab" if have else "wb") as fh:
                    for chunk in response["Body"].iter_chunks(CHUNK):
                        fh.write(chunk)
                        bar.update(len(chunk))
                got = part.stat().st_size
                if got == size:
                    break
                raise IncompleteReadError(actual_bytes=got, expected_bytes=size)
            except (BotoConnectionError, HTTPClientError, IncompleteReadError) as exc:
                if attempt == cfg.retries:
                    raise
                wait = cfg.backoff_s * 2**attempt
                log.warning("%s: download interrupted (%s); resuming in %.1fs", loc, exc, wait)
                time.sleep(wait)
    return response


def _verify_md5(path: Path, response: dict[str, Any], loc: S3Location) -> None:
    """Where the ETag is the object's MD5 (single-part upload, no KMS/customer key), compare it."""
    etag = response.get("ETag", "").strip('"')
    encrypted = response.get("SSECustomerAlgorithm") or response.get("ServerSideEncryption") == "aws:kms"
    if _MD5_ETAG.match(etag) and not encrypted and (actual := file_hexdigest(path, "md5")) != etag:
        raise UserError(f"{loc}: the downloaded bytes do not match the object's MD5 ETag {etag} (got {actual}); "
                        "run again")


def _safe_etag(etag: str) -> str:
    return re.sub(r"[^0-9A-Za-z-]", "", etag)[:64] or "noetag"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
