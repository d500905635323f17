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

from realfake.core.atomic import DVCIGNORE_PATTERNS, atomic_dir, write_parquet
from realfake.core.errors import UserError
from realfake.core.imageio import IMAGE_EXTENSIONS
from realfake.core.progress import tqdm
from realfake.core.stage_metrics import counts, write_stage_metrics
from realfake.core.timings import record_timing
from realfake.ingest.config import DownloadConfig, ExtractLimits
from realfake.ingest.extract import EntryError, iter_members, safe_relpath
from realfake.ingest.fetch import fetch
from realfake.ingest.labels import group_key, parse_labels
from realfake.ingest.sources import Part, Source
from realfake.ingest.writer import EntryWriter

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
    ("age_min_source", pa.int16()),
    ("age_max_source", pa.int16()),
    ("gender_source", pa.string()),
    ("race_source", pa.string()),
    ("ethnicity_source", pa.string()),
    ("dfdc_original", pa.string()),
    ("label_note", pa.string()),
    ("archive", pa.string()),
    ("watermark_box", pa.list_(pa.float32())),  # the source's declared watermark (fractions), read by faces
])
INT_LABELS = ("age_source", "age_min_source", "age_max_source")


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


def classify(rel: str | None, member_type: str, source: Part) -> str:
    """What to do with one archive entry: `image`, `label-file`, or a skip reason."""
    if member_type == "symlink":
        return "symlink"
    if member_type == "special":
        return "special-file"
    if rel is None:
        return "unsafe-path"
    if matches(rel, source.label_files):
        return "label-file"  # read in memory, never written: a name DVC ignores does no harm
    if any(fnmatch.fnmatchcase(part, pat.rstrip("/")) for part in rel.split("/") for pat in DVCIGNORE_PATTERNS):
        return "dvcignored-name"  # DVC would not track it, and the atomic writer's sweep would delete it
    if not matches(rel, source.include):
        return "not-included"
    if not rel.lower().endswith(IMAGE_EXTENSIONS):
        return "not-image"
    return "image"


def extract_part(local: Path, part: Part, name: str, out_dir: Path, limits: ExtractLimits,
                 writer: EntryWriter | None = None) -> Extracted:
    """Write one archive's images of the source under `out_dir`, keep label files in memory, count the skips.

    Pass the same `writer` for every part of a source: a later part's file whose path an earlier part already
    wrote is refused (`duplicate-name`), never overwrites it.
    """
    result = Extracted()
    writer = writer or EntryWriter(out_dir)
    for member in tqdm(iter_members(local, limits), desc=f"extract {name}", unit="file", leave=False):
        if member.type == "dir":
            continue
        result.files_seen += 1
        rel = safe_relpath(member.name)
        verdict = classify(rel, member.type, part)
        try:
            if verdict == "image":
                writer.write(rel, member)
                result.paths.append(rel)
            elif verdict == "label-file":
                if rel in result.sidecars:
                    raise EntryError("duplicate-name", "an earlier label file has this name; kept that one")
                result.sidecars[rel] = member.read()
        except EntryError as exc:  # this entry only: the rest of the archive goes on
            log.warning("%s: refused entry %.150r: %s", name, member.name, exc)
            verdict = exc.reason
        if verdict in ("symlink", "special-file", "unsafe-path", "dvcignored-name"):
            log.warning("%s: refused %s entry %r", name, verdict, member.name)
        if verdict != "image":
            result.skipped[verdict] += 1
    return result


def describe_files(source: Source, part: Part | None, out_dir: Path, extracted: Extracted
                   ) -> tuple[pd.DataFrame, Counter]:
    """One row per kept image of one part with checksums, group key and parsed labels; drop other-label files."""
    paths = sorted(extracted.paths)
    labels = parse_labels(part.labels if part else None, paths, extracted.sidecars)
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
            **{k: _str_or_none(v) if k not in INT_LABELS else v for k, v in lab.items()},
            "archive": part.uri if part else None,
            "watermark_box": list(source.watermark.box) if source.watermark else None,
        })
    frame = pd.DataFrame(rows, columns=RAW_SCHEMA.names)
    for col in INT_LABELS:
        frame[col] = frame[col].astype("Int16")
    return frame, dropped


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else str(value)


def run_download(source: Source, cfg: DownloadConfig, raw_root: Path, metrics_path: Path,
                 report_path: Path | None = None) -> dict[str, Any]:
    """Fetch, extract and describe one source (every part); write `raw_root/<name>/`, `<name>.parquet`, the
    headline metrics and the details."""
    started = time.perf_counter()
    out_dir = raw_root / source.name
    per_part: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    skipped: Counter = Counter()
    with atomic_dir(out_dir) as tmp_dir:
        if not source.enabled:
            log.info("%s: not part of profile %r; writing empty outputs", source.name, source.profile)
            frames.append(describe_files(source, None, tmp_dir, Extracted())[0])
        writer = EntryWriter(tmp_dir)
        for part in source.parts:
            local = fetch(part.uri, source.name, part.sha256, cfg)
            extracted = extract_part(local, part, source.name, tmp_dir, cfg.limits, writer)
            if not extracted.paths:
                raise UserError(f"{source.name}: no images in {local} matched include={list(part.include)} "
                                f"({extracted.files_seen} files, skipped {dict(extracted.skipped) or 'none'})")
            frame, dropped = describe_files(source, part, tmp_dir, extracted)
            frames.append(frame)
            part_skipped = extracted.skipped + dropped
            skipped += part_skipped
            per_part.append({"uri": part.uri, "files_seen": extracted.files_seen, "images_kept": len(frame),
                             "skipped": dict(sorted(part_skipped.items())),
                             "skipped_total": sum(part_skipped.values()), "archive_bytes": _size(local)})
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        write_parquet(frame, raw_root / f"{source.name}.parquet", schema=RAW_SCHEMA)
    metrics = {
        "enabled": source.enabled,
        "profile": source.profile,
        "uris": list(source.uris),
        "files_seen": sum(p["files_seen"] for p in per_part),
        "images_kept": len(frame),
        "skipped": dict(sorted(skipped.items())),
        "skipped_total": sum(skipped.values()),
        "bytes_kept": int(frame["bytes"].sum()),
        "archive_bytes": sum(p["archive_bytes"] or 0 for p in per_part) or None,
        "label_notes": int(frame["label_note"].notna().sum()),
        "labelled": label_counts(frame),
        "parts": per_part,
    }
    assert metrics["files_seen"] == metrics["images_kept"] + metrics["skipped_total"], metrics
    top = counts(metrics["files_seen"], metrics["images_kept"], metrics["skipped_total"])
    write_stage_metrics(metrics_path, top, metrics, report_path)
    record_timing(f"download@{source.name}", seconds=round(time.perf_counter() - started, 2))
    log.info("%s: %d files seen, %d images kept, skipped %s", source.name, metrics["files_seen"],
             len(frame), dict(skipped) or "none")
    return metrics


def label_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many kept images carry each parsed label (the rest are unknown, left empty)."""
    cols = ("gender_source", "age_source", "age_min_source", "race_source", "ethnicity_source")
    return {c: int(frame[c].notna().sum()) for c in cols}


def _size(path: Path | None) -> int | None:
    """Bytes of an archive (None for a directory or a disabled source)."""
    return path.stat().st_size if path is not None and path.is_file() else None
