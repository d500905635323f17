"""One batch of images through the faces stage: decode, detect, align, judge and PNG-encode; the records it keeps.

The local process pool (realfake.faces.crop) and the Ray actors (realfake.faces.crop_ray) both call `crop_batch`
on the same batches, so both engines give the same records and the same crop bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import cv2

from realfake.core.atomic import write_bytes
from realfake.core.errors import without_addresses
from realfake.core.imageio import DecodedImage, DecodeError, encode_png, read_image
from realfake.core.watermark import crop_reads_box
from realfake.faces.alignment import Alignment, align, pad_fraction, warp_crop
from realfake.faces.config import FacesConfig
from realfake.faces.detect import Face, FaceDetector, choose_primary, detect_faces


def face_id(source: str, path: str) -> str:
    """Stable id of an input file: first 16 hex chars of sha1('<source>/<path>')."""
    return hashlib.sha1(f"{source}/{path}".encode()).hexdigest()[:16]


# ---------------------------------------------------------------- per-image processing

def empty_record() -> dict[str, Any]:
    """All per-face columns, null."""
    return {
        "status": "rejected", "reason": None, "reason_detail": None, "crop_path": None,
        "orig_width": None, "orig_height": None, "orig_mode": None, "orig_format": None, "jpeg_quality": None,
        "is_grayscale": None, "exif_rotated": None, "n_faces": None, "prob": None, "box": None,
        "landmarks": None, "face_px": None, "pad_fraction": None, "scale": None, "transform": None,
    }


def describe_image(rec: dict[str, Any], img: DecodedImage) -> None:
    """Copy the decode facts into a record."""
    rec.update(
        orig_width=img.orig_width, orig_height=img.orig_height, orig_mode=img.orig_mode,
        orig_format=img.orig_format, jpeg_quality=img.jpeg_quality, is_grayscale=img.is_grayscale,
        exif_rotated=img.exif_rotated,
    )


def judge_face(rec: dict[str, Any], img: DecodedImage, faces: list[Face], cfg: FacesConfig,
               watermark_box: Any = None) -> Alignment | None:
    """Fill the detection columns; return the alignment if the face is kept, else set the reason.

    `watermark_box` (fractions x1, y1, x2, y2) is the source's declared visible mark: a crop reading any of its
    pixels is rejected, so the mark never reaches training (realfake.core.watermark).
    """
    h, w = img.rgb.shape[:2]
    primary, n = choose_primary(faces, w, h, cfg.primary, cfg.min_prob)
    rec["n_faces"] = n
    if primary is None:
        rec["reason"] = "no_face"
        best = max((f.prob for f in faces), default=None)
        rec["reason_detail"] = f"best prob {best:.3f} < {cfg.min_prob}" if best is not None else "no detection"
        return None
    al = align(primary.landmarks, cfg.margin, cfg.crop_size)
    rec.update(
        prob=primary.prob, box=primary.box.tolist(), landmarks=primary.landmarks.reshape(-1).tolist(),
        face_px=al.side, scale=al.scale, transform=al.matrix.reshape(-1).tolist(),
        pad_fraction=pad_fraction(al, w, h),
    )
    if al.side < cfg.min_face_px:
        rec["reason"] = "face_too_small"
        rec["reason_detail"] = f"face_px {al.side:.0f} < {cfg.min_face_px}"
        return None
    if rec["pad_fraction"] > cfg.max_pad_fraction:
        rec["reason"] = "too_much_padding"
        rec["reason_detail"] = f"pad_fraction {rec['pad_fraction']:.3f} > {cfg.max_pad_fraction}"
        return None
    if watermark_box is not None:
        box = [float(v) for v in watermark_box]
        if crop_reads_box(al.matrix, cfg.crop_size, w, h, (box[0] * w, box[1] * h, box[2] * w, box[3] * h)):
            rec["reason"] = "watermark"
            rec["reason_detail"] = f"the crop would read the source's declared watermark box {box}"
            return None
    return al


def crop_batch(
    items: list[tuple], cfg: FacesConfig, detector: FaceDetector
) -> list[tuple[int, dict[str, Any], bytes | None]]:
    """Decode, detect, align and PNG-encode crops for (index, image path, face_id[, watermark box]) items; writes nothing.

    The one per-batch function of the stage: the local pool and the Ray actors both call it on the same
    batches, so both engines give the same records and the same crop bytes.
    """
    records: dict[int, dict[str, Any]] = {}
    crops: dict[int, bytes] = {}
    decoded: list[tuple[int, str, DecodedImage]] = []
    boxes = {item[0]: item[3] if len(item) > 3 else None for item in items}
    for index, path, fid, *_ in items:
        rec = records[index] = empty_record()
        try:
            img = read_image(path, cfg.max_pixels)
        except DecodeError as exc:
            rec["reason"], rec["reason_detail"] = exc.reason, exc.detail[:200] or None
            continue
        describe_image(rec, img)
        decoded.append((index, fid, img))
    detections = detect_faces(detector, [img.rgb for _, _, img in decoded], cfg)
    for (index, fid, img), found in zip(decoded, detections, strict=True):
        rec = records[index]
        if found.reason:
            rec["reason"], rec["reason_detail"] = found.reason, found.detail
            continue
        try:
            al = judge_face(rec, img, found.faces, cfg, boxes[index])
            if al is not None:
                crops[index] = encode_png(warp_crop(img.rgb, al, cfg.crop_size))
                rec.update(status="kept", reason=None, reason_detail=None, crop_path=f"{fid}.png")
        except Exception as exc:  # keep the row, with a reason, whatever went wrong
            rec.update(status="rejected", crop_path=None, reason="crop_error",
                       reason_detail=without_addresses(f"{type(exc).__name__}: {exc}")[:200])
    return [(index, rec, crops.get(index)) for index, rec in sorted(records.items())]


def write_crops(
    results: list[tuple[int, dict[str, Any], bytes | None]], out_dir: str | os.PathLike
) -> list[tuple[int, dict[str, Any]]]:
    """Write crop_batch's crops into out_dir; a crop that cannot be written rejects its row (crop_error)."""
    out = []
    for index, rec, png in results:
        if png is not None:
            try:
                write_bytes(Path(out_dir) / rec["crop_path"], png)
            except OSError as exc:
                rec.update(status="rejected", crop_path=None, reason="crop_error",
                           reason_detail=without_addresses(f"{type(exc).__name__}: {exc}")[:200])
        out.append((index, rec))
    return out


def process_batch(
    items: list[tuple], out_dir: str, cfg: FacesConfig, detector: FaceDetector
) -> list[tuple[int, dict[str, Any]]]:
    """crop_batch, then write the crops into out_dir; one record per item."""
    return write_crops(crop_batch(items, cfg, detector), out_dir)


def make_detector(cfg: FacesConfig) -> FaceDetector:
    """One process's (or actor's) MTCNN with one torch and one OpenCV thread: the processes are the parallelism."""
    import torch

    from realfake.core.device import resolve_device  # torch loads with the first detector, not on import

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    device = resolve_device(cfg.device, "faces.device").type
    return FaceDetector(cfg.detect_size, cfg.min_face_px, cfg.detect_pad, device=device)
