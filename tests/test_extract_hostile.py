"""Hostile archives: each bad entry is one recorded rejection with a reason, the rest is still extracted."""

from __future__ import annotations

import hashlib
import json
import resource
import signal
import struct
import subprocess
import sys
import unicodedata
import warnings
import zipfile
from pathlib import Path

import pytest
from test_download import download, jpeg_bytes, source

from realfake.core.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def make_zip(path: Path, members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> Path:
    """A ZIP with entries in this order; repeated names are written as they are (zipfile only warns)."""
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", method) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": exactly what these archives are for
        for name, data in members:
            zf.writestr(name, data)
    return path


def patch_central_entry(path: Path, name: str, offset: int, fmt: str, value: int) -> None:
    """Overwrite one field of `name`'s central-directory record (offsets as in APPNOTE 4.3.12)."""
    raw = bytearray(path.read_bytes())
    pos = raw.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46: pos + 46 + name_len].decode() == name:
            struct.pack_into(fmt, raw, pos + offset, value)
            path.write_bytes(bytes(raw))
            return
        pos = raw.find(b"PK\x01\x02", pos + 4)
    raise KeyError(name)


def break_deflate_stream(path: Path, name: str) -> None:
    """Make the entry's deflate stream start with a reserved block type, which zlib refuses."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
    raw[info.header_offset + 30 + name_len + extra_len] = 0xFF  # BFINAL=1, BTYPE=11 (reserved)
    path.write_bytes(bytes(raw))


def kept_bytes(tmp_path: Path, rel: str) -> bytes:
    return (tmp_path / "raw" / "demo" / rel).read_bytes()


def reconciles(metrics: dict) -> bool:
    return metrics["files_seen"] == metrics["images_kept"] + metrics["skipped_total"] == \
        metrics["images_kept"] + sum(metrics["skipped"].values())


# ---------------------------------------------------------------- item 2: many small entries

def test_many_small_entries_expanding_a_thousand_times_are_refused(tmp_path):
    """40 x 1 MiB of zeros: each entry stays at the per-entry check's 1 MiB floor, the archive expands ~1000x."""
    bomb = make_zip(tmp_path / "small-bomb.zip", [(f"{i}.jpg", b"\0" * 2**20) for i in range(40)])
    assert bomb.stat().st_size < 100_000
    with pytest.raises(UserError, match=r"expand \d+x in total.*archive bomb"):
        download(tmp_path, source(str(bomb)))
    assert not (tmp_path / "raw" / "demo").exists() and not list((tmp_path / "raw").glob(".*.tmp"))


def test_compressible_label_files_under_the_floor_are_fine(tmp_path):
    """Small text files compress far beyond max_ratio; below the 16 MiB floor that is no sign of a bomb."""
    archive = make_zip(tmp_path / "labels.zip", [("a.jpg", jpeg_bytes(0))] +
                       [(f"notes/{i}.txt", b"same line\n" * 20_000) for i in range(20)])
    metrics, frame = download(tmp_path, source(str(archive)))
    assert list(frame["path"]) == ["a.jpg"] and metrics["skipped"] == {"not-image": 20}


# ---------------------------------------------------------------- item 3: duplicate and equal-after-NFC names

def test_duplicate_and_normalisation_equal_names_keep_the_first(tmp_path):
    first, second, nfc, nfd = (jpeg_bytes(i) for i in range(4))
    cafe = "café.jpg"
    archive = make_zip(tmp_path / "dups.zip", [
        ("a.jpg", first), ("a.jpg", second),  # the same name twice
        (unicodedata.normalize("NFC", cafe), nfc), (unicodedata.normalize("NFD", cafe), nfd),  # equal after NFC
        ("d/x.jpg", jpeg_bytes(5)), ("d//x.jpg", jpeg_bytes(6)), ("./d/x.jpg", jpeg_bytes(7)),  # equal paths
        ("labels.csv", b"a,1\n"), ("labels.csv", b"a,2\n"),  # label files too
    ])
    metrics, frame = download(tmp_path, source(str(archive), label_files=["*.csv"]))
    assert sorted(frame["path"]) == sorted(["a.jpg", unicodedata.normalize("NFC", cafe), "d/x.jpg"])
    assert kept_bytes(tmp_path, "a.jpg") == first
    assert kept_bytes(tmp_path, unicodedata.normalize("NFC", cafe)) == nfc
    assert kept_bytes(tmp_path, "d/x.jpg") == jpeg_bytes(5)
    sha = dict(zip(frame["path"], frame["sha256"], strict=True))
    assert sha["a.jpg"] == hashlib.sha256(first).hexdigest()  # the table describes the bytes on disk
    assert metrics["skipped"] == {"duplicate-name": 5, "label-file": 1}
    assert metrics["images_kept"] == 3 and reconciles(metrics)


# ---------------------------------------------------------------- item 4: bad entries inside a good archive

def hostile_entries(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A valid ZIP with one entry of each kind that cannot be extracted, between good ones."""
    long_name = "n" * 300 + ".jpg"
    deep = "d/" * 300 + "deep.jpg"
    entries = [
        ("good/0.jpg", jpeg_bytes(0)),
        ("bad-crc.jpg", jpeg_bytes(1)),
        ("broken-deflate.jpg", jpeg_bytes(2)),
        ("encrypted.jpg", jpeg_bytes(3)),
        ("strange-method.jpg", jpeg_bytes(4)),
        (long_name, jpeg_bytes(5)),
        (deep, jpeg_bytes(6)),
        ("clash.jpg", jpeg_bytes(7)), ("clash.jpg/inner.jpg", jpeg_bytes(8)),  # a file, then a folder of that name
        ("box.jpg/inner.jpg", jpeg_bytes(9)), ("box.jpg", jpeg_bytes(10)),  # a folder, then a file of that name
        ("good/1.jpg", jpeg_bytes(11)),
    ]
    archive = make_zip(tmp_path / "hostile.zip", entries)
    patch_central_entry(archive, "bad-crc.jpg", 16, "<I", 0xDEADBEEF)
    break_deflate_stream(archive, "broken-deflate.jpg")
    patch_central_entry(archive, "encrypted.jpg", 8, "<H", 0x1)  # "encrypted", with no password to give
    patch_central_entry(archive, "strange-method.jpg", 10, "<H", 99)  # a compression method zipfile lacks
    expected = {"bad-crc.jpg": "corrupt-entry", "broken-deflate.jpg": "corrupt-entry",
                "encrypted.jpg": "encrypted-entry", "strange-method.jpg": "unsupported-compression",
                long_name: "name-too-long", deep: "name-too-long",
                "clash.jpg/inner.jpg": "path-conflict", "box.jpg": "path-conflict"}
    return archive, expected


def test_bad_entries_are_rejections_and_the_rest_is_extracted(tmp_path):
    archive, expected = hostile_entries(tmp_path)
    metrics, frame = download(tmp_path, source(str(archive)))
    assert sorted(frame["path"]) == ["box.jpg/inner.jpg", "clash.jpg", "good/0.jpg", "good/1.jpg"]
    assert kept_bytes(tmp_path, "good/1.jpg") == jpeg_bytes(11)
    assert kept_bytes(tmp_path, "clash.jpg") == jpeg_bytes(7)
    assert metrics["skipped"] == {"corrupt-entry": 2, "encrypted-entry": 1, "unsupported-compression": 1,
                                  "name-too-long": 2, "path-conflict": 2}
    assert reconciles(metrics)
    on_disk = sorted(p.relative_to(tmp_path / "raw" / "demo").as_posix()
                     for p in (tmp_path / "raw" / "demo").rglob("*") if p.is_file())
    assert on_disk == sorted(frame["path"])  # nothing half-written, nothing from a refused entry


def test_stage_logs_one_line_per_bad_entry_and_exits_zero(tmp_path):
    archive, expected = hostile_entries(tmp_path)
    (tmp_path / "params.yaml").write_text(
        "data: {profile: sample}\n"
        f"sources:\n  demo: {{label: fake, kind: gan, include: ['*'], profiles: {{sample: {{uri: '{archive}'}}}}}}\n")
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "download.py"), "--source", "demo"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    refusals = [line for line in proc.stderr.splitlines() if "refused entry" in line]
    assert len(refusals) == len(expected)
    for name, reason in expected.items():
        assert any(f"{name[:40]}" in line and f": {reason}: " in line for line in refusals), (name, reason)
    metrics = json.loads((tmp_path / "reports" / "download" / "demo.json").read_text())  # the details
    assert metrics["images_kept"] == 4 and reconciles(metrics)
    headline = json.loads((tmp_path / "metrics" / "download" / "demo.json").read_text())
    assert headline == {"in": metrics["files_seen"], "kept": 4, "rejected": metrics["skipped_total"]}


def test_a_full_disk_stops_the_stage_with_one_line_and_leaves_nothing(tmp_path):
    """A write that fails for the machine's sake (here a file-size limit: EFBIG) is no fault of the entry."""
    archive = make_zip(tmp_path / "ok.zip", [(f"{i}.jpg", jpeg_bytes(i, size=160)) for i in range(3)])
    assert min(len(jpeg_bytes(i, size=160)) for i in range(3)) > 20_000
    (tmp_path / "params.yaml").write_text(
        "data: {profile: sample}\n"
        f"sources:\n  demo: {{label: fake, kind: gan, include: ['*'], profiles: {{sample: {{uri: '{archive}'}}}}}}\n")

    def small_files_only():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    proc = subprocess.run([sys.executable, str(REPO / "stages" / "download.py"), "--source", "demo"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, preexec_fn=small_files_only)
    assert proc.returncode == 2, proc.stderr
    assert "cannot write" in proc.stderr and "File too large" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data" / "raw").exists() or sorted(p.name for p in (tmp_path / "data/raw").iterdir()) == []


# ---------------------------------------------------------------- issue 25: names DVC ignores, bomb and cut messages


def test_entries_whose_names_dvc_ignores_are_refused_with_a_reason(tmp_path):
    """`.x.tmp/a.jpg` was listed in the parquet but not tracked by DVC (.dvcignore): missing after `dvc checkout`."""
    archive = make_zip(tmp_path / "hidden.zip", [("good.jpg", jpeg_bytes(0)), (".x.tmp/a.jpg", jpeg_bytes(1)),
                                                 ("sub/.b.abcdefgh.jpg.tmp", jpeg_bytes(2)), ("ok.tmp.jpg", jpeg_bytes(3)),
                                                 ("__pycache__/c.jpg", jpeg_bytes(4)), ("d.pyc", jpeg_bytes(5))])
    metrics, frame = download(tmp_path, source(str(archive)))
    assert sorted(frame["path"]) == ["good.jpg", "ok.tmp.jpg"]
    assert metrics["skipped"] == {"dvcignored-name": 4} and reconciles(metrics)
    assert not (tmp_path / "raw" / "demo" / ".x.tmp").exists()


def test_the_refused_names_are_exactly_what_dvcignore_hides():
    from realfake.core.atomic import DVCIGNORE_PATTERNS

    patterns = [line.strip() for line in (REPO / ".dvcignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert tuple(patterns) == DVCIGNORE_PATTERNS


def test_one_huge_entry_is_named_as_a_bomb_not_as_many_small_entries(tmp_path):
    """bomb.zip (one 64 MiB entry of zeros) was reported as "an archive bomb of many small entries"."""
    bomb = make_zip(tmp_path / "bomb.zip", [("bomb.jpg", b"\0" * 64 * 2**20)])
    with pytest.raises(UserError) as refused:
        download(tmp_path, source(str(bomb)))
    assert "entry 'bomb.jpg' expands" in str(refused.value) and "many small" not in str(refused.value)
    with pytest.raises(UserError, match="entry 'bomb.jpg' is 67108864 bytes, over download.limits.max_file_bytes"):
        download(tmp_path, source(str(bomb)), max_file_bytes=2**25)


def test_a_truncated_zip_is_a_corrupt_archive(tmp_path):
    """A cut ZIP (no central directory) was "neither a directory nor a readable ZIP/TAR archive"."""
    whole = make_zip(tmp_path / "whole.zip", [(f"{i}.jpg", jpeg_bytes(i)) for i in range(3)])
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(UserError, match=r"^corrupt archive .*cut\.zip: it starts as a ZIP but cannot be read"):
        download(tmp_path, source(str(cut)))
    other = tmp_path / "notes.zip"
    other.write_bytes(b"just text")
    with pytest.raises(UserError, match="neither a directory nor a readable ZIP/TAR archive"):
        download(tmp_path, source(str(other)))


@pytest.mark.parametrize("field,value,message", [
    ("max_files", -1, "download.limits.max_files must be an integer >= 1, got -1"),
    ("max_total_bytes", 0, "download.limits.max_total_bytes must be an integer >= 1, got 0"),
    ("max_file_bytes", -5, "download.limits.max_file_bytes must be an integer >= 1, got -5"),
    ("max_ratio", -200, "download.limits.max_ratio must be a number >= 1, got -200"),
    ("retries", -1, "download.retries must be an integer >= 0, got -1"),
    ("timeout_s", 0, "download.timeout_s must be a number > 0, got 0"),
    ("backoff_s", -1.0, "download.backoff_s must be a number >= 0, got -1.0"),
])
def test_negative_download_limits_are_refused(field, value, message):
    from realfake.core.params import load_section
    from realfake.ingest.download import DownloadConfig

    section = {"limits": {field: value}} if field.startswith("max_") else {field: value}
    with pytest.raises(UserError) as refused:
        load_section(DownloadConfig, {"download": section}, "download")
    assert str(refused.value) == message
