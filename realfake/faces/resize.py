"""Training-size images from the aligned crops, with the same filter (Lanczos) and encoding (PNG).

With `reencode: jpeg`, every training image also goes through one JPEG encoder before it is stored, so every
source carries the same quantization tables and 8x8 grid, whatever its own compression: the detector has to
learn the generation, not the source's encoder.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from realfake.core.atomic import atomic_dir, write_bytes, write_json
from realfake.core.engine import ComputeConfig, engine_session, imap_chunks
from realfake.core.errors import UserError
from realfake.faces.alignment import RESAMPLE, encode_png

log = logging.getLogger(__name__)

REENCODE = ("none", "jpeg")
RESIZE_CHUNK = 64  # crops per engine batch: Ray's per-task overhead stays small against the work
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


def training_image(path: Path, cfg: ResizeConfig) -> np.ndarray:
    """The pixels stored for one crop: resized, then re-encoded when cfg.reencode says so."""
    out = resize_crop(path, cfg.size)
    if cfg.reencode == "jpeg":
        out = reencode_jpeg(out, cfg.jpeg_quality)[1]
    return out


def resize_one(path: str | Path, cfg: ResizeConfig) -> tuple[bytes | None, str | None, str | None]:
    """The PNG of one crop's training image, or (None, reason, detail) when the crop is missing or bad."""
    try:
        return encode_png(training_image(Path(path), cfg)), None, None
    except FileNotFoundError:
        return None, "crop_missing", None
    except (OSError, ValueError, TypeError) as exc:  # unreadable or malformed crop: counted, not fatal
        reason = "crop_not_square" if "not square" in str(exc) else "crop_unreadable"
        return None, reason, f"{type(exc).__name__}: {exc}"[:200]


def resize_batch(paths: list[str], cfg: ResizeConfig) -> list[tuple[bytes | None, str | None, str | None]]:
    """resize_one over a batch: the per-batch function both engines run."""
    return [resize_one(path, cfg) for path in paths]


def run_resize(
    source: str, cfg: ResizeConfig, faces_root: Path = Path("data/faces"),
    resized_root: Path = Path("data/resized"), metrics_root: Path = Path("metrics/resize"), progress: bool = True,
    compute: ComputeConfig | None = None,
) -> dict[str, Any]:
    """The resize stage for one source: every kept crop to cfg.size (then cfg.reencode), each failure counted by reason."""
    import pandas as pd
    from tqdm import tqdm

    table = faces_root / f"{source}.parquet"
    if not table.is_file():
        raise UserError(f"{table} not found: run the faces stage for {source!r} first")
    faces = pd.read_parquet(table, columns=["face_id", "status", "crop_path", "face_px"])
    kept = faces[faces["status"] == "kept"]
    compute = compute or ComputeConfig()
    paths = [os.fspath(faces_root / source / str(c)) for c in kept["crop_path"]]
    face_ids, face_px = list(kept["face_id"]), [float(v) for v in kept["face_px"]]
    reasons: dict[str, int] = {}
    done: list[float] = []
    start = time.perf_counter()
    with (engine_session(compute, bool(paths)), atomic_dir(resized_root / source) as tmp,
          tqdm(total=len(kept), unit="img", desc="resize", disable=not progress) as bar):
        # the engine computes the bytes; this process writes them, whichever engine ran. The stage has no
        # workers param: locally it runs in this process (light work); on Ray two actors unless compute.actors
        workers = 1 if compute.engine == "local" else 2
        chunks = imap_chunks(functools.partial(resize_batch, cfg=cfg), paths, compute, workers, RESIZE_CHUNK)
        for offset, results in chunks:
            for k, (png, reason, detail) in enumerate(results, start=offset):
                if png is None:
                    reasons[reason] = reasons.get(reason, 0) + 1
                    if detail:
                        log.warning("%s: %s: %s", source, paths[k], detail)
                    continue
                write_bytes(tmp / f"{face_ids[k]}.png", png)
                done.append(face_px[k])
            bar.update(len(results))
    seconds = time.perf_counter() - start
    kept_px = np.asarray(done)
    metrics = {
        "source": source, "size": cfg.size, "reencode": cfg.reencode, "engine": compute.engine,
        **({"jpeg_quality": cfg.jpeg_quality} if cfg.reencode == "jpeg" else {}),
        "in": len(kept), "kept": len(done), "rejected": len(kept) - len(done),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "images_per_s": round(len(kept) / seconds, 3) if seconds > 0 and len(kept) else 0.0,
        # scale at training size: output px per source px; above 1 means the source had fewer pixels
        "median_scale": float(np.median(cfg.size / kept_px)) if len(kept_px) else 0.0,
        "share_upscaled": float(np.mean(kept_px < cfg.size)) if len(kept_px) else 0.0,
    }
    write_json(metrics_root / f"{source}.json", metrics)
    log.info("%s: resize %d -> %d kept, rejected %s", source, metrics["in"], metrics["kept"], reasons)
    return metrics
