"""S3 sources against a real local S3 server (SeaweedFS): archive objects, prefixes of images, checksums, errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from realfake.core.errors import UserError
from realfake.ingest.download import DownloadConfig, run_download
from realfake.ingest.fetch import FetchConfig
from realfake.ingest.s3 import PREFIX_DIR, parse_s3_uri
from realfake.ingest.sources import resolve_source

REPO = Path(__file__).resolve().parents[1]


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def run(tmp_path: Path, uri: str, sha256: str | None = None, **fetch) -> tuple[dict, pd.DataFrame]:
    """The download stage for one source `demo` at `uri`, with a cache and outputs under tmp_path."""
    src = resolve_source("demo", {"label": "fake", "kind": "gan", "include": ["*"],
                                  "profiles": {"t": {"uri": uri, "sha256": sha256}}}, "t")
    cfg = DownloadConfig(cache_dir=str(tmp_path / "cache"), backoff_s=0.01, **fetch)
    metrics = run_download(src, cfg, tmp_path / "raw", tmp_path / "metrics.json")
    return metrics, pd.read_parquet(tmp_path / "raw" / "demo.parquet")


def nothing_written(tmp_path: Path) -> bool:
    """No stage output, no metrics, and no file (not even a .part) left in the download cache."""
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    raw = [p for p in (tmp_path / "raw").rglob("*") if p.is_file()]
    assert not cached and not raw, (cached, raw)
    return not (tmp_path / "raw" / "demo").exists() and not (tmp_path / "metrics.json").exists()


IMAGES = {f"img/{i}.jpg": jpeg(i) for i in range(4)}


def test_archive_object_reads_like_the_same_local_archive(tmp_path, s3):
    data = zip_bytes({**IMAGES, "README.txt": b"not an image"})
    s3.put("faces.zip", data)
    (tmp_path / "faces.zip").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    metrics, frame = run(tmp_path / "s3", s3.uri("faces.zip"), digest)
    local_metrics, local_frame = run(tmp_path / "local", str(tmp_path / "faces.zip"), digest)
    assert metrics["images_kept"] == 4 and metrics["skipped"] == {"not-image": 1}
    assert metrics["files_seen"] == local_metrics["files_seen"] and metrics["skipped"] == local_metrics["skipped"]
    pd.testing.assert_frame_equal(frame.drop(columns="archive"), local_frame.drop(columns="archive"))  # the URIs differ
    cached = tmp_path / "s3" / "cache" / "demo" / "faces.zip"
    assert cached.read_bytes() == data
    assert json.loads(cached.with_name("faces.zip.s3.json").read_text())["sha256"] == digest


def test_prefix_of_images_reads_like_the_same_directory(tmp_path, s3):
    for key, data in IMAGES.items():
        s3.put(f"faces/{key}", data)
    s3.put("faces/notes.txt", b"a label file")
    s3.put("faces/img/", b"")  # a folder marker, as the S3 console writes them: not a file
    local = tmp_path / "dir"
    for key, data in {**IMAGES, "notes.txt": b"a label file"}.items():
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(data)
    metrics, frame = run(tmp_path / "s3", s3.uri("faces/"))
    local_metrics, local_frame = run(tmp_path / "local", str(local))
    assert metrics["images_kept"] == 4 and metrics["files_seen"] == 5 == local_metrics["files_seen"]
    assert metrics["skipped"] == local_metrics["skipped"] == {"not-image": 1}
    pd.testing.assert_frame_equal(frame.drop(columns="archive"), local_frame.drop(columns="archive"))  # the URIs differ
    record = json.loads((tmp_path / "s3" / "cache" / "demo" / f"{PREFIX_DIR}.json").read_text())
    listed = {o["Key"]: o for o in s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=s3.prefix)["Contents"]}
    for rel, obj in record["objects"].items():  # per object: ETag and size as listed, sha256 of the bytes
        assert obj["etag"] == listed[obj["key"]]["ETag"].strip('"') and obj["size"] == listed[obj["key"]]["Size"]
        assert obj["sha256"] == hashlib.sha256((local / rel).read_bytes()).hexdigest()


@pytest.mark.slow  # three syncs of a prefix (~4 s here)
def test_prefix_without_trailing_slash_and_resync_after_changes(tmp_path, s3):
    for key, data in IMAGES.items():
        s3.put(f"faces/{key}", data)
    run(tmp_path, s3.uri("faces"))  # no object "faces": read as the prefix faces/
    synced = tmp_path / "cache" / "demo" / PREFIX_DIR
    untouched = synced / "img/1.jpg"
    before = untouched.stat().st_mtime_ns
    s3.put("faces/img/0.jpg", jpeg(100))
    s3.client.delete_object(Bucket=s3.bucket, Key=s3.prefix + "faces/img/3.jpg")
    metrics, frame = run(tmp_path, s3.uri("faces"))
    assert sorted(frame["path"]) == ["img/0.jpg", "img/1.jpg", "img/2.jpg"] and metrics["images_kept"] == 3
    assert (synced / "img/0.jpg").read_bytes() == jpeg(100) and not (synced / "img/3.jpg").exists()
    assert untouched.stat().st_mtime_ns == before  # unchanged objects are not downloaded again


def test_pinned_prefix_digest_is_sha256sum_of_the_listing(tmp_path, s3):
    for key, data in IMAGES.items():
        s3.put(f"faces/{key}", data)
    run(tmp_path, s3.uri("faces/"))
    record = json.loads((tmp_path / "cache" / "demo" / f"{PREFIX_DIR}.json").read_text())
    shell = subprocess.run("(find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum) | sha256sum",
                           shell=True, cwd=tmp_path / "cache" / "demo" / PREFIX_DIR, capture_output=True, text=True)
    assert shell.stdout.split()[0] == record["sha256"]
    metrics, _ = run(tmp_path / "again", s3.uri("faces/"), record["sha256"])  # the pin verifies
    assert metrics["images_kept"] == 4


@pytest.mark.slow  # retries with backoff (~4 s here)
@pytest.mark.parametrize("key", ["faces.zip", "faces/"])
def test_wrong_checksum_is_a_clear_error_and_keeps_nothing(tmp_path, s3, key):
    s3.put("faces.zip", zip_bytes(IMAGES))
    for name, data in IMAGES.items():
        s3.put(f"faces/{name}", data)
    with pytest.raises(UserError, match="checksum mismatch"):
        run(tmp_path, s3.uri(key), "0" * 64)
    assert nothing_written(tmp_path)


def test_interrupted_download_resumes_from_the_part_file(tmp_path, s3):
    data = zip_bytes({f"img/{i}.jpg": jpeg(i) for i in range(40)})
    s3.put("faces.zip", data)
    etag = s3.client.head_object(Bucket=s3.bucket, Key=s3.prefix + "faces.zip")["ETag"].strip('"')
    cache = tmp_path / "cache" / "demo"
    cache.mkdir(parents=True)
    (cache / f"faces.zip.{etag}.part").write_bytes(data[: len(data) // 2])  # what a killed run leaves
    (cache / "faces.zip.0123.part").write_bytes(b"stale part of another version")
    metrics, _ = run(tmp_path, s3.uri("faces.zip"), hashlib.sha256(data).hexdigest())
    assert metrics["images_kept"] == 40 and (cache / "faces.zip").read_bytes() == data
    assert sorted(p.name for p in cache.iterdir()) == ["faces.zip", "faces.zip.s3.json"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str | None]) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value.format(closed=_closed_port()))


ERROR_CASES = {
    # case: (environment changes, key, message)
    "unreachable-endpoint": ({"AWS_ENDPOINT_URL": "http://127.0.0.1:{closed}"}, "faces.zip",
                             "cannot reach the S3 endpoint http://127.0.0.1:"),
    "wrong-secret": ({"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "faces.zip", "wrong secret key for access key"),
    "unknown-access-key": ({"AWS_ACCESS_KEY_ID": "nobody"}, "faces/", "does not know access key 'nobody'"),
    "no-credentials": ({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}, "faces.zip",
                       "no S3 credentials found: set AWS_ACCESS_KEY_ID"),
    "missing-bucket": ({}, "s3://no-such-bucket/faces.zip", "bucket 'no-such-bucket' does not exist"),
    "missing-key": ({}, "missing.zip", "no object s3://.*missing.zip and nothing under"),
}


def error_case(case: str, s3, monkeypatch) -> tuple[str, str]:
    """Set up ERROR_CASES[case] (the archive uploaded, the environment changed); its URI and expected message."""
    env, key, message = ERROR_CASES[case]
    s3.put("faces.zip", zip_bytes(IMAGES))
    set_env(monkeypatch, env)
    return (key if key.startswith("s3://") else s3.uri(key)), message


@pytest.mark.parametrize("case", ERROR_CASES)
def test_s3_errors_are_one_clear_line_and_write_nothing(tmp_path, s3, monkeypatch, case):
    uri, message = error_case(case, s3, monkeypatch)
    with pytest.raises(UserError, match=message) as info:
        run(tmp_path, uri, retries=0, timeout_s=5)
    assert "\n" not in str(info.value)
    assert nothing_written(tmp_path)


@pytest.mark.slow  # a Python start-up per case (~3 s here)
@pytest.mark.parametrize("case", ["unreachable-endpoint", "wrong-secret", "missing-bucket", "missing-key"])
def test_stage_script_exits_2_with_one_line(tmp_path, s3, monkeypatch, case):
    uri, message = error_case(case, s3, monkeypatch)
    (tmp_path / "params.yaml").write_text(
        "data: {profile: t, profiles: [t]}\n"
        "download: {retries: 0, timeout_s: 5, cache_dir: cache}\n"
        f"sources:\n  demo: {{label: fake, kind: gan, profiles: {{t: {{uri: '{uri}'}}}}}}\n")
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "download.py"), "--source", "demo"],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.search(message, lines[0]), lines[0]
    assert nothing_written(tmp_path)


def test_parse_s3_uri_rejects_a_malformed_uri():
    assert parse_s3_uri("s3://bucket/a/b.zip").key == "a/b.zip"
    assert parse_s3_uri("s3://bucket").is_prefix
    with pytest.raises(UserError, match="not a valid S3 URI"):
        parse_s3_uri("s3:///key")


@pytest.mark.slow  # uploads a multipart object (~3 s here)
def test_multipart_object_is_checked_by_its_sha256(tmp_path, s3):
    from boto3.s3.transfer import TransferConfig

    blob = np.random.default_rng(1).integers(0, 255, 11 * 2**20, dtype=np.uint8).tobytes()
    archive = tmp_path / "big.zip"
    archive.write_bytes(zip_bytes({**IMAGES, "blob.bin": blob}))
    five_mib = TransferConfig(multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20)
    s3.client.upload_file(str(archive), s3.bucket, s3.prefix + "big.zip", Config=five_mib)
    etag = s3.client.head_object(Bucket=s3.bucket, Key=s3.prefix + "big.zip")["ETag"]
    assert "-" in etag  # a multipart ETag is no MD5 of the bytes: only the pinned sha256 can check them
    metrics, _ = run(tmp_path / "ok", s3.uri("big.zip"), hashlib.sha256(archive.read_bytes()).hexdigest())
    assert metrics["images_kept"] == 4 and metrics["skipped"] == {"not-image": 1}
    with pytest.raises(UserError, match="checksum mismatch"):
        run(tmp_path / "bad", s3.uri("big.zip"), "f" * 64)


def test_keys_that_climb_out_collide_or_conflict_are_refused_with_a_reason():
    from realfake.ingest.s3 import S3Object, _local_paths

    keys = ["p/img/1.jpg", "p/img//1.jpg", "p/../../etc/passwd", "p/img", "p/ok/a.jpg", "p/ok/a.jpg/b.jpg"]
    wanted, refused = _local_paths([S3Object(k, k[2:], 1, "e") for k in keys])
    assert sorted(wanted) == ["img/1.jpg", "ok/a.jpg"]
    assert {r["key"]: r["reason"] for r in refused} == {
        "p/img//1.jpg": "duplicate-path", "p/../../etc/passwd": "unsafe-path",
        "p/img": "path-conflict", "p/ok/a.jpg/b.jpg": "path-conflict"}
    wanted, refused = _local_paths([S3Object(k, k[2:], 1, "e") for k in sorted(keys)])  # as listed
    assert sorted(wanted) == ["img", "ok/a.jpg"] and len(refused) == 4


def test_an_object_replaced_mid_download_is_an_error_not_a_splice(tmp_path, s3):
    from realfake.ingest.s3 import fetch_object, s3_client
    from realfake.ingest.s3_errors import s3_errors

    s3.put("faces.zip", zip_bytes(IMAGES))
    loc = parse_s3_uri(s3.uri("faces.zip"))
    client = s3_client(FetchConfig())
    head = client.head_object(Bucket=loc.bucket, Key=loc.key)  # the version the download started from
    s3.put("faces.zip", zip_bytes({"other.jpg": jpeg(9)}))      # replaced before its bytes are read
    with pytest.raises(UserError, match="changed while it was being downloaded"), s3_errors(loc, client):
        fetch_object(client, loc, head, tmp_path / "cache" / "faces.zip", None, FetchConfig(retries=0))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
