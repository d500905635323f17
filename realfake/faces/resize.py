"""Training-size images from the aligned crops, with the same filter (Lanczos) and encoding (PNG).

With `reencode: jpeg`, every training image also goes through one JPEG encoder before it is stored, so every
source carries the same quantization tables and 8x8 grid, whatever its own compression: the detector has to
learn the generation, not the source's encoder.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from realfake.core.atomic import atomic_dir, write_bytes
from realfake.core.errors import UserError
from realfake.core.stage_metrics import counts, write_stage_metrics
from realfake.core.timings import record_timing
from realfake.faces.alignment import RESAMPLE, encode_png

log = logging.getLogger(__name__)

REENCODE = ("none", "jpeg")
JPEG_SUBSAMPLING = 2  # Pillow's code for 4:2:0, set explicitly so a Pillow default change cannot alter it


@dataclass
class ResizeConfig:
    """Params of the resize stage (params.yaml section `resize`)."""

    size: int = 64  # side of the training images, px
    reencode: str = "none"  # "jpeg": every training image goes through one JPEG encoder (see module doc)
    jpeg_quality: int = 75  # IJG quality of that encoder, 1..100

    @classmethod
    def from_params(cls, section: dict[str, Any] | None) -> ResizeConfig:
        """Build from a params.yaml section; unknown keys and bad values are user errors."""
        section = dict(section or {})
        unknown = sorted(set(section) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(f"resize: unknown params {unknown}")
        cfg = cls(**section)
        if not isinstance(cfg.size, int) or not 8 <= cfg.size <= 1024:
            raise UserError(f"resize.size must be an integer in 8..1024, got {cfg.size!r}")
        if cfg.reencode not in REENCODE:
            raise UserError(f"resize.reencode must be one of {list(REENCODE)}, got {cfg.reencode!r}")
        quality = cfg.jpeg_quality
        if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 100:
            raise UserError(f"resize.jpeg_quality must be an integer in 1..100, got {quality!r}")
        return cfg


def resize_crop(path: Path, size: int) -> np.ndarray:
    """Read an aligned crop and resize it to size x size (raises OSError/ValueError on a bad crop)."""
    with Image.open(path) as img:
        img.load()
        if img.width != img.height:
            raise ValueError(f"crop is not square: {img.width}x{img.height}")
        rgb = img.convert("RGB")
    if rgb.width == size:
        return np.asarray(rgb)
    return np.asarray(rgb.resize((size, size), RESAMPLE))


def reencode_jpeg(rgb: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    """Encode RGB with the one fixed JPEG encoder (baseline, 4:2:0, standard tables); return the bytes and decoded RGB."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=JPEG_SUBSAMPLING,
                              optimize=False, progressive=False)
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as img:
        return data, np.asarray(img.convert("RGB"))


def shape_crop(rgb: np.ndarray, cfg: ResizeConfig) -> np.ndarray:
    """An aligned square RGB crop as the model sees it: resized to cfg.size, then re-encoded when cfg.reencode says so.

    The one definition of the training image, shared by the resize stage and `realfake predict`.
    """
    if rgb.shape[0] != rgb.shape[1]:
        raise ValueError(f"crop is not square: {rgb.shape[1]}x{rgb.shape[0]}")
    out = rgb if rgb.shape[0] == cfg.size else np.asarray(Image.fromarray(rgb).resize((cfg.size, cfg.size), RESAMPLE))
    if cfg.reencode == "jpeg":
        out = reencode_jpeg(out, cfg.jpeg_quality)[1]
    return out


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
