"""Stage `resize@<source>`: every kept crop as its training image (realfake.core.training_image), counted by reason."""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from realfake.core.atomic import atomic_dir, write_bytes
from realfake.core.engine import ComputeConfig, engine_session, imap_chunks
from realfake.core.imageio import encode_png
from realfake.core.stage_metrics import counts, write_stage_metrics
from realfake.core.timings import record_timing
from realfake.core.training_image import ResizeConfig, shape_crop

log = logging.getLogger(__name__)

RESIZE_CHUNK = 64  # crops per engine batch: Ray's per-task overhead stays small against the work


def training_image(path: Path, cfg: ResizeConfig) -> np.ndarray:
    """The pixels stored for one crop file: shape_crop of the decoded crop."""
    with Image.open(path) as img:
        img.load()
        rgb = np.asarray(img.convert("RGB"))
    return shape_crop(rgb, cfg)


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
    reports_root: Path | None = None, compute: ComputeConfig | None = None,
) -> dict[str, Any]:
    """The resize stage for one source: every kept crop to cfg.size (then cfg.reencode), each failure counted by reason."""
    from realfake.core.progress import tqdm
    from realfake.core.tables import read_faces  # pandas: only the stage's process needs it, not the workers

    columns = ["face_id", "status", "crop_path", "face_px"]
    faces = read_faces(faces_root, [source], required=tuple(columns)).reindex(columns=columns)  # empty: no rows
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
        # scale at training size: output px per source px; above 1 means the source had fewer pixels
        "median_scale": float(np.median(cfg.size / kept_px)) if len(kept_px) else 0.0,
        "share_upscaled": float(np.mean(kept_px < cfg.size)) if len(kept_px) else 0.0,
    }
    write_stage_metrics(metrics_root / f"{source}.json", counts(metrics["in"], metrics["kept"], metrics["rejected"]),
                        metrics, None if reports_root is None else reports_root / f"{source}.json")
    record_timing(f"resize@{source}", seconds=round(seconds, 3),
                  images_per_s=round(len(kept) / seconds, 3) if seconds > 0 and len(kept) else 0.0)
    log.info("%s: resize %d -> %d kept, rejected %s", source, metrics["in"], metrics["kept"], reasons)
    return metrics
