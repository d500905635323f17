"""The download stage: fetch one source, extract its images safely, and describe every file in a table."""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from realfake.core.atomic import atomic_dir, write_json, write_parquet
from realfake.core.errors import UserError
from realfake.core.imageio import IMAGE_EXTENSIONS
from realfake.ingest.extract import EntryError, EntryWriter, ExtractLimits, iter_members, safe_relpath
from realfake.ingest.fetch import FetchConfig, fetch
from realfake.ingest.labels import group_key, parse_labels
from realfake.ingest.sources import Source

log = logging.getLogger(__name__)


RAW_SCHEMA = pa.schema([
    ("source", pa.string()),
    ("path", pa.string()),
    ("label", pa.string()),
    ("kind", pa.string()),
    ("bytes", pa.int64()),
    ("sha256", pa.string()),
    ("group", pa.string()),
    ("age_source", pa.int16()),
    ("gender_source", pa.string()),
    ("race_source", pa.string()),
    ("ethnicity_source", pa.string()),
    ("dfdc_original", pa.string()),
    ("label_note", pa.string()),
])


@dataclass
class DownloadConfig:
    """The `download` params section."""

    fetch: FetchConfig = field(default_factory=FetchConfig)
    limits: ExtractLimits = field(default_factory=ExtractLimits)

    @classmethod
    def from_params(cls, section: dict[str, Any] | None) -> DownloadConfig:
        section = dict(section or {})
        limits = ExtractLimits(**(section.pop("limits", None) or {}))
        return cls(fetch=FetchConfig(**section), limits=limits)


@dataclass
class Extracted:
    """What reading one source produced before labelling."""

    paths: list[str] = field(default_factory=list)
    sidecars: dict[str, bytes] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    files_seen: int = 0


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    """True if `path` matches any glob (fnmatch: `*` also crosses `/`)."""
    return any(fnmatch.fnmatchcase(path, pat) for pat in patterns)


def classify(rel: str | None, member_type: str, source: Source) -> str:
    """What to do with one archive entry: `image`, `label-file`, or a skip reason."""
    if member_type == "symlink":
        return "symlink"
    if member_type == "special":
        return "special-file"
    if rel is None:
        return "unsafe-path"
    if matches(rel, source.label_files):
        return "label-file"
    if not matches(rel, source.include):
        return "not-included"
    if not rel.lower().endswith(IMAGE_EXTENSIONS):
        return "not-image"
    return "image"


def extract_source(local: Path, source: Source, out_dir: Path, limits: ExtractLimits) -> Extracted:
    """Write the source's images under `out_dir`, keep label files in memory, count everything skipped."""
    result = Extracted()
    writer = EntryWriter(out_dir)
    for member in tqdm(iter_members(local, limits), desc=f"extract {source.name}", unit="file", leave=False):
        if member.type == "dir":
            continue
        result.files_seen += 1
        rel = safe_relpath(member.name)
        verdict = classify(rel, member.type, source)
        try:
            if verdict == "image":
                writer.write(rel, member)
                result.paths.append(rel)
            elif verdict == "label-file":
                if rel in result.sidecars:
                    raise EntryError("duplicate-name", "an earlier label file has this name; kept that one")
                result.sidecars[rel] = member.read()
        except EntryError as exc:  # this entry only: the rest of the archive goes on
            log.warning("%s: refused entry %.150r: %s", source.name, member.name, exc)
            verdict = exc.reason
        if verdict in ("symlink", "special-file", "unsafe-path"):
            log.warning("%s: refused %s entry %r", source.name, verdict, member.name)
        if verdict != "image":
            result.skipped[verdict] += 1
    return result


def describe_files(source: Source, out_dir: Path, extracted: Extracted) -> tuple[pd.DataFrame, Counter]:
    """One row per kept image with checksums, group key and parsed labels; drop other-label files."""
    paths = sorted(extracted.paths)
    labels = parse_labels(source.labels, paths, extracted.sidecars)
    rows, dropped = [], Counter()
    for path, lab in zip(paths, labels.to_dict("records"), strict=True):
        file_label = lab.pop("file_label")
        if isinstance(file_label, str) and file_label != source.label:
            (out_dir / path).unlink()  # this archive mixes classes; the file belongs to a sibling source
            dropped["other-label"] += 1
            continue
        data = (out_dir / path).read_bytes()
        rows.append({
            "source": source.name, "path": path, "label": source.label, "kind": source.kind,
            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "group": group_key(source.group, source.name, path, _str_or_none(lab["dfdc_original"])),
            **{k: _str_or_none(v) if k != "age_source" else v for k, v in lab.items()},
        })
    frame = pd.DataFrame(rows, columns=RAW_SCHEMA.names)
    frame["age_source"] = frame["age_source"].astype("Int16")
    return frame, dropped


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else str(value)


def run_download(source: Source, cfg: DownloadConfig, raw_root: Path, metrics_path: Path) -> dict[str, Any]:
    """Fetch, extract and describe one source; write `raw_root/<name>/`, `<name>.parquet` and the metrics."""
    started = time.perf_counter()
    out_dir = raw_root / source.name
    with atomic_dir(out_dir) as tmp_dir:
        if source.enabled:
            local = fetch(source.uri, source.name, source.sha256, cfg.fetch)
            extracted = extract_source(local, source, tmp_dir, cfg.limits)
            if not extracted.paths:
                raise UserError(f"{source.name}: no images in {local} matched include={list(source.include)} "
                                f"({extracted.files_seen} files, skipped {dict(extracted.skipped) or 'none'})")
        else:
            log.info("%s: not part of profile %r; writing empty outputs", source.name, source.profile)
            local, extracted = None, Extracted()
        frame, dropped = describe_files(source, tmp_dir, extracted)
        write_parquet(frame, raw_root / f"{source.name}.parquet", schema=RAW_SCHEMA)
    skipped = extracted.skipped + dropped
    metrics = {
        "enabled": source.enabled,
        "profile": source.profile,
        "uri": source.uri,
        "files_seen": extracted.files_seen,
        "images_kept": len(frame),
        "skipped": dict(sorted(skipped.items())),
        "skipped_total": sum(skipped.values()),
        "bytes_kept": int(frame["bytes"].sum()),
        "archive_bytes": _size(local),
        "label_notes": int(frame["label_note"].notna().sum()),
        "seconds": round(time.perf_counter() - started, 2),
    }
    assert metrics["files_seen"] == metrics["images_kept"] + metrics["skipped_total"], metrics
    write_json(metrics_path, metrics)
    log.info("%s: %d files seen, %d images kept, skipped %s", source.name, extracted.files_seen,
             len(frame), dict(skipped) or "none")
    return metrics


def _size(path: Path | None) -> int | None:
    """Bytes of an archive (None for a directory or a disabled source)."""
    return path.stat().st_size if path is not None and path.is_file() else None
