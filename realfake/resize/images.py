"""Stage `resize@<source>`: every kept crop as its training image (realfake.core.training_image), counted by reason."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from realfake.core.atomic import atomic_dir, write_bytes
from realfake.core.errors import UserError
from realfake.core.imageio import encode_png
from realfake.core.stage_metrics import counts, write_stage_metrics
from realfake.core.timings import record_timing
from realfake.core.training_image import ResizeConfig, shape_crop

log = logging.getLogger(__name__)


def training_image(path: Path, cfg: ResizeConfig) -> np.ndarray:
    """The pixels stored for one crop file: shape_crop of the decoded crop."""
    with Image.open(path) as img:
        img.load()
        rgb = np.asarray(img.convert("RGB"))
    return shape_crop(rgb, cfg)


def run_resize(
    source: str, cfg: ResizeConfig, faces_root: Path = Path("data/faces"),
    resized_root: Path = Path("data/resized"), metrics_root: Path = Path("metrics/resize"), progress: bool = True,
    reports_root: Path | None = None,
) -> dict[str, Any]:
    """The resize stage for one source: every kept crop to cfg.size (then cfg.reencode), each failure counted by reason."""
    import pandas as pd

    from realfake.core.progress import tqdm

    table = faces_root / f"{source}.parquet"
    if not table.is_file():
        raise UserError(f"{table} not found: run the faces stage for {source!r} first")
    faces = pd.read_parquet(table, columns=["face_id", "status", "crop_path", "face_px"])
    kept = faces[faces["status"] == "kept"]
    reasons: dict[str, int] = {}
    done: list[float] = []
    start = time.perf_counter()
    with atomic_dir(resized_root / source) as tmp:
        for row in tqdm(kept.itertuples(index=False), total=len(kept), unit="img", desc="resize", disable=not progress):
            try:
                out = training_image(faces_root / source / row.crop_path, cfg)
                write_bytes(tmp / f"{row.face_id}.png", encode_png(out))
                done.append(float(row.face_px))
            except FileNotFoundError:
                reasons["crop_missing"] = reasons.get("crop_missing", 0) + 1
            except (OSError, ValueError, TypeError) as exc:  # unreadable or malformed crop: count, go on
                reason = "crop_not_square" if "not square" in str(exc) else "crop_unreadable"
                reasons[reason] = reasons.get(reason, 0) + 1
                log.warning("%s: %s: %s", source, row.crop_path, exc)
    seconds = time.perf_counter() - start
    face_px = np.asarray(done)
    metrics = {
        "source": source, "size": cfg.size, "reencode": cfg.reencode,
        **({"jpeg_quality": cfg.jpeg_quality} if cfg.reencode == "jpeg" else {}),
        "in": len(kept), "kept": len(done), "rejected": len(kept) - len(done),
        "rejected_by_reason": dict(sorted(reasons.items())),
        # scale at training size: output px per source px; above 1 means the source had fewer pixels
        "median_scale": float(np.median(cfg.size / face_px)) if len(face_px) else 0.0,
        "share_upscaled": float(np.mean(face_px < cfg.size)) if len(face_px) else 0.0,
    }
    write_stage_metrics(metrics_root / f"{source}.json", counts(metrics["in"], metrics["kept"], metrics["rejected"]),
                        metrics, None if reports_root is None else reports_root / f"{source}.json")
    record_timing(f"resize@{source}", seconds=round(seconds, 3),
                  images_per_s=round(len(kept) / seconds, 3) if seconds > 0 and len(kept) else 0.0)
    log.info("%s: resize %d -> %d kept, rejected %s", source, metrics["in"], metrics["kept"], reasons)
    return metrics
