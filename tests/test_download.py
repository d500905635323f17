"""The download stage against real archives, directories and a real HTTP server."""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, run_script
from PIL import Image

from realfake.core.errors import UserError
from realfake.ingest.download import DownloadConfig, run_download
from realfake.ingest.extract import ExtractLimits
from realfake.ingest.fetch import FetchConfig, fetch, fetch_http
from realfake.ingest.sources import resolve_source

REPO = Path(__file__).resolve().parents[1]


def jpeg_bytes(seed: int = 0, size: int = 32) -> bytes:
    """A small real JPEG."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def source(uri: str, **fields) -> object:
    spec = {"label": "fake", "kind": "gan", "include": ["*"], "profiles": {"test": {"uri": uri}}}
    spec.update(fields)
    return resolve_source("demo", spec, "test")


def download(tmp_path: Path, src, **cfg) -> tuple[dict, pd.DataFrame]:
    config = DownloadConfig(cache_dir=str(tmp_path / "cache"), backoff_s=0.01, limits=ExtractLimits(**cfg))
    metrics = run_download(src, config, tmp_path / "raw", tmp_path / "metrics.json")
    return metrics, pd.read_parquet(tmp_path / "raw" / "demo.parquet")


def test_http_download_verifies_checksum_and_extracts(tmp_path, http_server):
    archive = make_zip(http_server.root / "faces.zip", {f"img/{i}.jpg": jpeg_bytes(i) for i in range(5)})
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    metrics, frame = download(tmp_path, source(http_server.url("faces.zip"), sha256=digest))
    assert metrics["images_kept"] == 5 and metrics["files_seen"] == 5
    assert sorted(frame["path"]) == [f"img/{i}.jpg" for i in range(5)]
    for row in frame.itertuples():
        data = (tmp_path / "raw" / "demo" / row.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256 and len(data) == row.bytes


def test_checksum_mismatch_is_a_clear_error_and_keeps_nothing(tmp_path, http_server):
    make_zip(http_server.root / "faces.zip", {"a.jpg": jpeg_bytes()})
    with pytest.raises(UserError, match="checksum mismatch"):
        download(tmp_path, source(http_server.url("faces.zip"), sha256="0" * 64))
    assert not list((tmp_path / "cache").rglob("*.zip*"))  # neither the file nor a .part
    assert not (tmp_path / "raw" / "demo").exists()
    assert not (tmp_path / "raw" / "demo.parquet").exists()


def test_dropped_connection_resumes_with_a_range_request(tmp_path, http_server):
    payload = bytes(range(256)) * 4000  # ~1 MB
    (http_server.root / "big.bin").write_bytes(payload)
    http_server.drop_after = 300_000
    dest = tmp_path / "dl" / "big.bin"
    got = fetch_http(http_server.url("big.bin"), dest, hashlib.sha256(payload).hexdigest(),
                     FetchConfig(retries=3, backoff_s=0.01))
    assert got.read_bytes() == payload
    ranges = [r["range"] for r in http_server.requests]
    assert ranges[0] is None and ranges[1] is not None
    resumed_from = int(ranges[1].split("=")[1].rstrip("-"))
    assert 0 < resumed_from < len(payload)
    assert not dest.with_name("big.bin.part").exists()


def test_interrupted_part_file_is_resumed_on_the_next_run(tmp_path, http_server):
    payload = b"x" * 50_000 + b"y" * 50_000
    (http_server.root / "f.bin").write_bytes(payload)
    dest = tmp_path / "dl" / "f.bin"
    dest.parent.mkdir()
    dest.with_name("f.bin.part").write_bytes(payload[:40_000])  # what a killed run left behind
    fetch_http(http_server.url("f.bin"), dest, None, FetchConfig())
    assert dest.read_bytes() == payload
    assert http_server.requests[0]["range"] == "bytes=40000-"


def test_zip_slip_and_symlink_entries_are_refused(tmp_path):
    archive = make_zip(tmp_path / "evil.zip",
                       {"../evil.jpg": jpeg_bytes(), "/abs.jpg": jpeg_bytes(1), "ok/good.jpg": jpeg_bytes(2)},
                       symlinks={"ok/link.jpg": "/etc/passwd"})
    metrics, frame = download(tmp_path, source(str(archive)))
    assert list(frame["path"]) == ["ok/good.jpg"]
    assert metrics["skipped"] == {"unsafe-path": 2, "symlink": 1}
    assert not (tmp_path / "evil.jpg").exists() and not (tmp_path / "raw" / "evil.jpg").exists()
    assert not (tmp_path / "raw" / "demo" / "ok" / "link.jpg").exists()


def test_tar_symlink_device_and_slip_entries_are_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in {"good.jpg": jpeg_bytes(), "../../slip.jpg": jpeg_bytes(1)}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
        dev = tarfile.TarInfo("dev.jpg")
        dev.type = tarfile.CHRTYPE
        tf.addfile(dev)
    metrics, frame = download(tmp_path, source(str(archive)))
    assert list(frame["path"]) == ["good.jpg"]
    assert metrics["skipped"] == {"unsafe-path": 1, "symlink": 1, "special-file": 1}


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 this is not really a zip", b"\x00" * 2000])
def test_corrupt_archive_is_a_clear_error(tmp_path, content):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(content)
    with pytest.raises(UserError, match="corrupt|neither|no images"):
        download(tmp_path, source(str(bad)))


def test_truncated_zip_is_a_clear_error(tmp_path):
    good = make_zip(tmp_path / "good.zip", {f"{i}.jpg": jpeg_bytes(i) for i in range(3)})
    bad = tmp_path / "cut.zip"
    bad.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(UserError):
        download(tmp_path, source(str(bad)))


def test_non_images_are_skipped_and_counted_and_odd_names_survive(tmp_path):
    names = {"a, b.jpg": jpeg_bytes(0), "with space/ü né.PNG": jpeg_bytes(1), "日本/顔.jpeg": jpeg_bytes(2),
             "notes.txt": b"hello", "data.csv": b"a,b\n", "excluded/x.jpg": jpeg_bytes(3)}
    archive = make_zip(tmp_path / "odd.zip", names)
    metrics, frame = download(tmp_path, source(str(archive), include=["*.jpg", "*.jpeg", "*.PNG", "*.txt",
                                                                        "*.csv"]))
    assert metrics["skipped"] == {"not-image": 2}
    assert metrics["files_seen"] == metrics["images_kept"] + metrics["skipped_total"] == 6
    assert set(frame["path"]) == {"a, b.jpg", "with space/ü né.PNG", "日本/顔.jpeg", "excluded/x.jpg"}
    for path in frame["path"]:
        assert (tmp_path / "raw" / "demo" / path).is_file()


def test_directory_source_matches_the_archive_source(tmp_path):
    files = {f"people/p{i}/{i}.jpg": jpeg_bytes(i) for i in range(4)} | {"people/readme.md": b"# hi"}
    folder = tmp_path / "folder"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    archive = make_zip(tmp_path / "same.zip", files)
    m_dir, f_dir = download(tmp_path / "d", source(str(folder), group="lfw-person"))
    m_zip, f_zip = download(tmp_path / "z", source(str(archive), group="lfw-person"))
    assert f_dir.drop(columns=["archive"]).equals(f_zip.drop(columns=["archive"])) and m_dir["skipped"] == m_zip["skipped"] == {"not-image": 1}
    assert list(f_dir["group"]) == [f"lfw:p{i}" for i in range(4)]


def test_archive_bomb_limits(tmp_path):
    many = make_zip(tmp_path / "many.zip", {f"{i}.jpg": b"x" for i in range(20)})
    with pytest.raises(UserError, match="max_files"):
        download(tmp_path, source(str(many)), max_files=10)
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.jpg", b"\0" * (8 * 2**20))
    with pytest.raises(UserError, match="bomb|expands"):
        download(tmp_path, source(str(tmp_path / "bomb.zip")))
    with pytest.raises(UserError, match="max_total_bytes"):
        download(tmp_path, source(str(tmp_path / "bomb.zip")), max_total_bytes=2**20, max_ratio=10**6)


def test_disabled_source_writes_empty_outputs(tmp_path):
    src = resolve_source("demo", {"label": "real", "kind": None, "profiles": {"other": {"uri": "x"}}}, "test")
    metrics, frame = download(tmp_path, src)
    assert not metrics["enabled"] and metrics["files_seen"] == 0 and len(frame) == 0
    assert list(frame.columns)[:3] == ["source", "path", "label"]


def test_kaggle_without_credentials_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="KAGGLE_USERNAME and KAGGLE_KEY.*kaggle.json"):
        fetch("kaggle://xhlulu/140k-real-and-fake-faces", "ffhq", None, FetchConfig(cache_dir=str(tmp_path)))


def test_missing_mirror_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("REALFAKE_MIRROR", str(tmp_path / "no-mirror"))
    with pytest.raises(UserError, match="does not exist"):
        fetch("mirror://ffhq.zip", "ffhq", None, FetchConfig())


def test_stage_script_reports_user_errors_without_a_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text("data: {profile: sample}\nsources: {}\n")
    assert_user_error(run_script(tmp_path, "download.py", "--source", "nope"), "unknown source 'nope'")


def test_a_source_reads_several_archives_each_with_its_own_labels(tmp_path):
    """ffhq's layout: one archive with features JSON, a second (Kaggle 140k) whose real half joins by FFHQ id."""
    first = make_zip(tmp_path / "ffhq.zip", {"ffhq/images/00007.jpg": jpeg_bytes(0),
                                             "ffhq/features/00007.json": b'[{"faceAttributes": {"gender": "female", "age": 31}}]'})
    second = make_zip(tmp_path / "140k.zip", {"rvf/train/real/01101.jpg": jpeg_bytes(1),
                                              "rvf/train/fake/ABC.jpg": jpeg_bytes(2),
                                              "ffhq/images/00007.jpg": jpeg_bytes(3)})
    src = resolve_source("demo", {
        "label": "real", "kind": None, "include": ["ffhq/images/*.jpg"], "label_files": ["ffhq/features/*.json"],
        "labels": "ffhq-features-json", "group": "ffhq-id",
        "profiles": {"test": {"parts": [
            {"uri": str(first), "sha256": hashlib.sha256(first.read_bytes()).hexdigest()},
            {"uri": str(second), "include": ["rvf/*/real/*.jpg", "ffhq/images/*.jpg"], "labels": None}]}}}, "test")
    assert src.uris == (str(first), str(second)) and src.parts[1].label_files == ("ffhq/features/*.json",)
    metrics, frame = download(tmp_path, src)
    assert list(frame["path"]) == ["ffhq/images/00007.jpg", "rvf/train/real/01101.jpg"]
    assert list(frame["group"]) == ["ffhq:7", "ffhq:1101"]
    assert list(frame["gender_source"].fillna("-")) == ["female", "-"]
    assert list(frame["archive"]) == [str(first), str(second)]
    # the second archive's copy of an already-written path is refused, never overwrites the first
    assert metrics["parts"][1]["skipped"] == {"not-included": 1, "duplicate-name": 1}
    assert (tmp_path / "raw" / "demo" / "ffhq/images/00007.jpg").read_bytes() == jpeg_bytes(0)
    assert metrics["files_seen"] == 2 + 3 == metrics["images_kept"] + metrics["skipped_total"]
    assert metrics["labelled"]["gender_source"] == 1 and metrics["uris"] == [str(first), str(second)]


@pytest.mark.parametrize("entry, message", [
    ({"parts": []}, "non-empty list"),
    ({"parts": [{"include": ["*.jpg"]}]}, "no uri"),
    ({"parts": [{"uri": "a.zip", "colour": "red"}]}, "unknown keys"),
    ({"parts": [{"uri": "a.zip", "labels": "tea-leaves"}]}, "labels must be one of"),
    ({"uri": "a.zip", "include": "*.jpg"}, "list of glob strings"),
])
def test_malformed_parts_are_clear_errors(entry, message):
    with pytest.raises(UserError, match=message):
        resolve_source("demo", {"label": "fake", "kind": "diffusion", "profiles": {"test": entry}}, "test")
