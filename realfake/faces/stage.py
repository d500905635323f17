"""The faces stage for one source: plan the rows, crop them (realfake.faces.crop), write the table, metrics and sheet."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from realfake.core.engine import ComputeConfig, engine_session
from realfake.core.errors import UserError
from realfake.faces.batch import empty_record, face_id
from realfake.faces.config import FacesConfig
from realfake.faces.crop import process_images

log = logging.getLogger(__name__)

# Columns the faces stage adds to the raw columns (see docs/faces.md).
FACE_FIELDS = [
    ("face_id", "string"), ("status", "string"), ("reason", "string"), ("reason_detail", "string"),
    ("crop_path", "string"), ("orig_width", "int32"), ("orig_height", "int32"), ("orig_mode", "string"),
    ("orig_format", "string"), ("jpeg_quality", "int16"), ("is_grayscale", "bool"), ("exif_rotated", "bool"),
    ("n_faces", "int16"), ("prob", "float32"), ("box", "list<float32>"), ("landmarks", "list<float32>"),
    ("face_px", "float32"), ("pad_fraction", "float32"), ("scale", "float32"), ("transform", "list<float64>"),
]


def face_schema():
    """pyarrow fields of the added columns."""
    import pyarrow as pa

    simple = {"string": pa.string(), "int32": pa.int32(), "int16": pa.int16(), "bool": pa.bool_(),
              "float32": pa.float32(), "list<float32>": pa.list_(pa.float32()), "list<float64>": pa.list_(pa.float64())}
    return [pa.field(name, simple[kind]) for name, kind in FACE_FIELDS]


def plan_items(source: str, raw_table, raw_dir: Path) -> tuple[list[tuple[str, str]], list[str], dict[int, str]]:
    """(image path, face_id) per row, the face ids, and rows rejected before decoding (index -> reason)."""
    paths = raw_table.column("path").to_pylist() if "path" in raw_table.column_names else [None] * raw_table.num_rows
    items, ids, early, seen = [], [], {}, set()
    for i, rel in enumerate(paths):
        fid = face_id(source, rel) if rel else None
        ids.append(fid)
        if not rel:
            early[i] = "no_path"
        elif fid in seen:
            early[i] = "duplicate_path"
        elif not (raw_dir / rel).is_file():
            early[i] = "missing_file"
        seen.add(fid)
        items.append((os.fspath(raw_dir / rel) if rel else "", fid or ""))
    return items, ids, early


def summarize(source: str, records: list[dict[str, Any]], cfg: FacesConfig) -> dict[str, Any]:
    """Stage details: counts by reason (in = kept + rejected) and per-source geometry statistics."""
    kept = [r for r in records if r["status"] == "kept"]
    reasons: dict[str, int] = {}
    for r in records:
        if r["status"] != "kept":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    detected = [r for r in records if r["pad_fraction"] is not None]

    def share(rows, test) -> float:
        return float(np.mean([bool(test(r)) for r in rows])) if rows else 0.0

    def median(rows, key) -> float:
        return float(np.median([r[key] for r in rows])) if rows else 0.0

    return {
        "source": source, "in": len(records), "kept": len(kept), "rejected": len(records) - len(kept),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "workers": cfg.workers,
        "pad": {
            "mean_pad_fraction": float(np.mean([r["pad_fraction"] for r in kept])) if kept else 0.0,
            "share_padded": share(kept, lambda r: r["pad_fraction"] > 0),
            "share_padded_detected": share(detected, lambda r: r["pad_fraction"] > 0),
            "share_over_max_detected": share(detected, lambda r: r["pad_fraction"] > cfg.max_pad_fraction),
        },
        "median_face_px": median(kept, "face_px"),
        "median_scale": median(kept, "scale"),
        "share_upscaled": share(kept, lambda r: r["scale"] > 1.0),
        "share_grayscale": share(kept, lambda r: r["is_grayscale"]),
        "share_multi_face": share(kept, lambda r: r["n_faces"] > 1),
        "share_exif_rotated": share(kept, lambda r: r["exif_rotated"]),
    }


def run_source(
    source: str, cfg: FacesConfig, raw_root: Path = Path("data/raw"), faces_root: Path = Path("data/faces"),
    metrics_root: Path = Path("metrics/faces"), plots_root: Path = Path("plots/faces"), progress: bool = True,
    reports_root: Path | None = None,
    compute: ComputeConfig | None = None,
) -> dict[str, Any]:
    """The faces stage for one source: crops dir, parquet, metrics (reports_root: details) and contact sheet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from realfake.core.atomic import atomic_dir, atomic_path
    from realfake.core.stage_metrics import counts, write_stage_metrics
    from realfake.core.timings import record_timing
    from realfake.faces.contact_sheet import contact_sheet

    raw_parquet = raw_root / f"{source}.parquet"
    if not raw_parquet.is_file():
        raise UserError(f"{raw_parquet} not found: run the download stage for {source!r} first")
    raw = pq.read_table(raw_parquet)
    items, ids, early = plan_items(source, raw, raw_root / source)
    todo = [i for i in range(len(items)) if i not in early]
    log.info("%s: %d rows, %d to process, %d rejected before decoding", source, len(items), len(todo), len(early))
    boxes = raw.column("watermark_box").to_pylist() if "watermark_box" in raw.column_names else [None] * len(items)
    with engine_session(compute, bool(todo)), atomic_dir(faces_root / source) as tmp:
        done, seconds = process_images([items[i] for i in todo], tmp, cfg, progress=progress,
                                       watermark_boxes=[boxes[i] for i in todo], compute=compute)
    records: list[dict[str, Any]] = [{}] * len(items)
    for i, reason in early.items():
        records[i] = {**empty_record(), "reason": reason}
    for i, rec in zip(todo, done, strict=True):
        records[i] = rec
    for fid, rec in zip(ids, records, strict=True):
        rec["face_id"] = fid
    table = raw
    for field in face_schema():
        table = table.append_column(field, pa.array([r[field.name] for r in records], type=field.type))
    with atomic_path(faces_root / f"{source}.parquet", suffix=".parquet") as tmp_parquet:
        pq.write_table(table, tmp_parquet)
    metrics = summarize(source, records, cfg)
    if metrics["rejected_by_reason"].get("watermark"):
        log.warning("%s: %d crops rejected because they would read the declared watermark box %s", source,
                    metrics["rejected_by_reason"]["watermark"], next(b for b in boxes if b is not None))
    metrics["engine"] = compute.engine if compute else "local"  # details only: the headline is engine-free
    metrics_path = metrics_root / f"{source}.json"
    write_stage_metrics(metrics_path, counts(metrics["in"], metrics["kept"], metrics["rejected"]), metrics,
                        None if reports_root is None else reports_root / f"{source}.json")
    record_timing(f"faces@{source}", seconds=round(seconds, 3),
                  images_per_s=round(len(records) / seconds, 3) if seconds > 0 else 0.0, workers=cfg.workers)
    title = f"{source}: kept {metrics['kept']} of {metrics['in']}; rejected {metrics['rejected_by_reason']}"
    contact_sheet(records, items, faces_root / source, plots_root / f"{source}.png", seed=cfg.seed, title=title)
    log.info("%s: in %d, kept %d, rejected %s", source, metrics["in"], metrics["kept"], metrics["rejected_by_reason"])
    return metrics
