"""Stage `crops@<source>`: the native window and the context crop of every face the faces stage kept, by reason.

Cut from the decoded original (data/raw) with the landmarks the faces stage stored, so MTCNN does not run again.
Outputs: data/crops/<source>/{native,context}/<face_id>.png (lossless), data/crops/<source>.parquet (one row per
kept face: where each view came from, or why it was rejected) and metrics/crops/<source>.json.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from realfake.core.atomic import atomic_dir, write_bytes, write_parquet
from realfake.core.engine import ComputeConfig, imap_chunks
from realfake.core.errors import UserError, without_addresses
from realfake.core.imageio import DecodeError, encode_png, read_image
from realfake.core.stage_metrics import counts, write_stage_metrics
from realfake.core.timings import record_timing
from realfake.core.training_image import ResizeConfig
from realfake.core.watermark import Watermark
from realfake.crops.context import context_view
from realfake.crops.native import native_view
from realfake.crops.views import CropsConfig

log = logging.getLogger(__name__)

CROPS_CHUNK = 16  # faces per engine batch
VIEWS = ("native", "context")

CROPS_SCHEMA = pa.schema([
    ("face_id", pa.string()), ("source", pa.string()), ("face_px", pa.float32()),
    ("orig_width", pa.int32()), ("orig_height", pa.int32()),
    ("native_status", pa.string()), ("native_reason", pa.string()), ("native_detail", pa.string()),
    ("native_path", pa.string()), ("native_x0", pa.int32()), ("native_y0", pa.int32()), ("native_side", pa.int32()),
    ("native_shift_x", pa.int32()), ("native_shift_y", pa.int32()),
    ("context_status", pa.string()), ("context_reason", pa.string()), ("context_detail", pa.string()),
    ("context_path", pa.string()), ("context_size", pa.int32()), ("context_margin", pa.float32()),
    ("context_pad_fraction", pa.float32()), ("context_fit", pa.string()),
])


def empty_row(face_id: str, source: str) -> dict[str, Any]:
    """Every column, null; both views rejected until cut."""
    row: dict[str, Any] = dict.fromkeys(CROPS_SCHEMA.names)
    row.update(face_id=face_id, source=source, native_status="rejected", context_status="rejected")
    return row


def crop_face(item: tuple[str, str, Any, Any], source: str, cfg: CropsConfig, margin: float, resize: ResizeConfig,
              max_pixels: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Both views of one face: (table row, {view: PNG bytes}); a failure rejects the face's views with a reason."""
    path, fid, landmarks, box = item
    row, pngs = empty_row(fid, source), {}
    try:
        img = read_image(path, max_pixels)
    except DecodeError as exc:
        for view in VIEWS:
            row[f"{view}_reason"], row[f"{view}_detail"] = exc.reason, (exc.detail[:200] or None)
        return row, pngs
    rgb = img.rgb
    height, width = rgb.shape[:2]
    row.update(orig_width=width, orig_height=height)
    box_px = None if box is None else (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
    for view in VIEWS:
        try:
            if view == "native":
                cut = native_view(rgb, landmarks, margin, cfg.native.side, box_px)
                row["face_px"] = cut.face_px
                if cut.window is not None:
                    w = cut.window
                    row.update(native_x0=w.x0, native_y0=w.y0, native_side=w.side, native_shift_x=w.shift_x,
                               native_shift_y=w.shift_y)
            else:
                cut = context_view(rgb, landmarks, cfg.context, resize, box_px)
                row.update(context_size=cfg.context.size, context_margin=cut.margin,
                           context_pad_fraction=cut.pad_fraction, context_fit=cut.fit)
            if cut.pixels is None:
                row[f"{view}_reason"], row[f"{view}_detail"] = cut.reason, cut.detail
                continue
            pngs[view] = encode_png(cut.pixels)
            row[f"{view}_status"], row[f"{view}_path"] = "kept", f"{view}/{fid}.png"
        except Exception as exc:  # one odd face must not cost the others their crops
            row[f"{view}_reason"] = "crop_error"
            row[f"{view}_detail"] = without_addresses(f"{type(exc).__name__}: {exc}")[:200]
    return row, pngs


def crop_chunk(items: list, **kwargs) -> list[tuple[dict[str, Any], dict[str, bytes]]]:
    """crop_face over a chunk: the per-batch function the engine runs."""
    return [crop_face(item, **kwargs) for item in items]


def kept_faces(faces_parquet: Path) -> pd.DataFrame:
    """The faces the faces stage kept: face_id, path, landmarks (and the declared watermark box, if any)."""
    if not faces_parquet.is_file():
        raise UserError(f"{faces_parquet} not found: run the faces stage for {faces_parquet.stem!r} first")
    faces = pd.read_parquet(faces_parquet)
    kept = faces[faces["status"] == "kept"].reset_index(drop=True)
    if "watermark_box" not in kept.columns:
        kept["watermark_box"] = None
    return kept[["face_id", "path", "landmarks", "watermark_box"]]


def view_counts(table: pd.DataFrame, view: str) -> dict[str, Any]:
    """in = kept + rejected for one view, and the rejections by reason."""
    kept = int((table[f"{view}_status"] == "kept").sum())
    reasons = table.loc[table[f"{view}_status"] != "kept", f"{view}_reason"].value_counts().sort_index()
    return {**counts(len(table), kept, len(table) - kept), "rejected_by_reason": {str(k): int(v) for k, v in reasons.items()}}


def summarize(source: str, table: pd.DataFrame, cfg: CropsConfig, seconds: float, margin: float) -> dict[str, Any]:
    """The stage's details: per view counts by reason, framing, padding and upscaling statistics.

    margin is faces.margin, at which face_px was measured.
    """
    native_kept = table[table["native_status"] == "kept"]
    context_kept = table[table["context_status"] == "kept"]
    both = int(((table["native_status"] == "kept") & (table["context_status"] == "kept")).sum())
    shifted = (native_kept["native_shift_x"] != 0) | (native_kept["native_shift_y"] != 0)
    return {
        "source": source, **counts(len(table), both, len(table) - both),
        "native": {**view_counts(table, "native"), "side": cfg.native.side,
                   "median_face_px": float(native_kept["face_px"].median()) if len(native_kept) else 0.0,
                   # the window against the face: above 1 shows background, below 1 a part of the face
                   "median_side_over_face_px": float((cfg.native.side / native_kept["face_px"]).median())
                   if len(native_kept) else 0.0,
                   "share_shifted": float(shifted.mean()) if len(native_kept) else 0.0},
        "context": {**view_counts(table, "context"), "size": cfg.context.size, "margin": cfg.context.margin,
                    "mean_pad_fraction": float(context_kept["context_pad_fraction"].mean()) if len(context_kept)
                    else 0.0,
                    "share_padded": float((context_kept["context_pad_fraction"] > 0).mean()) if len(context_kept)
                    else 0.0,
                    # full: cut at crops.context.margin; shrunk: a narrower margin fitted the photo; padded: at
                    # min_margin with more border than max_pad_fraction
                    "fit": {str(k): int(v) for k, v in context_kept["context_fit"].value_counts().sort_index().items()},
                    "median_margin": float(context_kept["context_margin"].median()) if len(context_kept) else 0.0,
                    "median_upscale": float((cfg.context.size / (context_kept["face_px"] * context_kept["context_margin"] / margin))
                                            .median()) if len(context_kept) else 0.0},
        "seconds": round(seconds, 3),
    }


def run_crops(source: str, cfg: CropsConfig, margin: float, resize: ResizeConfig, max_pixels: int,
              raw_root: Path = Path("data/raw"), faces_root: Path = Path("data/faces"),
              crops_root: Path = Path("data/crops"), metrics_root: Path = Path("metrics/crops"),
              reports_root: Path | None = None, progress: bool = True,
              watermark: Watermark | None = None) -> dict[str, Any]:
    """The crops stage for one source: both views of every kept face, written atomically; returns the details.

    margin is faces.margin (the aligned face's centre and face_px), resize the params that re-encode the context
    view as the aligned view is re-encoded, max_pixels the faces stage's decompression-bomb guard. watermark is the
    source's declared box (params `sources.<source>.watermark`); without it, the box the download stage recorded
    in the faces table (column `watermark_box`), if any.
    """
    from realfake.core.progress import tqdm

    kept = kept_faces(faces_root / f"{source}.parquet")
    declared = None if watermark is None else list(watermark.box)
    items = [(os.fspath(raw_root / source / str(r.path)), str(r.face_id), np.asarray(r.landmarks),
              declared or (None if r.watermark_box is None else [float(v) for v in r.watermark_box]))
             for r in kept.itertuples()]
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    fn = functools.partial(crop_chunk, source=source, cfg=cfg, margin=margin, resize=resize, max_pixels=max_pixels)
    with (atomic_dir(crops_root / source) as tmp,
          tqdm(total=len(items), unit="face", desc=f"crops {source}", disable=not progress) as bar):
        for view in VIEWS:
            (tmp / view).mkdir()
        for _, results in imap_chunks(fn, items, ComputeConfig(), cfg.workers, CROPS_CHUNK):
            for row, pngs in results:
                for view, png in pngs.items():
                    write_bytes(tmp / row[f"{view}_path"], png)
                rows.append(row)
            bar.update(len(results))
    seconds = time.perf_counter() - start
    table = pd.DataFrame(rows, columns=CROPS_SCHEMA.names)
    write_parquet(table, crops_root / f"{source}.parquet", schema=CROPS_SCHEMA)
    details = summarize(source, table, cfg, seconds, margin)
    # headline: faces with both views kept; per view (in = kept + rejected, by reason) in reports/crops/<source>.json.
    # Per-view headline keys would widen `dvc metrics show` past a terminal (tests/test_dvc_views.py)
    top = counts(details["in"], details["kept"], details["rejected"])
    write_stage_metrics(metrics_root / f"{source}.json", top, details,
                        None if reports_root is None else reports_root / f"{source}.json")
    record_timing(f"crops@{source}", seconds=round(seconds, 3),
                  faces_per_s=round(len(items) / seconds, 3) if seconds > 0 and items else 0.0)
    log.info("%s: crops of %d faces: native kept %d %s, context kept %d %s (%.1fs)", source, details["in"],
             details["native"]["kept"], details["native"]["rejected_by_reason"], details["context"]["kept"],
             details["context"]["rejected_by_reason"], seconds)
    return details
