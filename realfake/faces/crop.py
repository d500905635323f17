"""Detect, align and crop one face per image with MTCNN: the same framing, size and encoding for every source."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2

from realfake.core.atomic import write_bytes
from realfake.core.engine import ComputeConfig
from realfake.core.errors import UserError, without_addresses
from realfake.core.imageio import DEFAULT_MAX_PIXELS, DecodedImage, DecodeError, encode_png, read_image
from realfake.core.watermark import crop_reads_box
from realfake.faces.alignment import Alignment, align, pad_fraction, warp_crop
from realfake.faces.detect import Face, FaceDetector, choose_primary, detect_faces
from realfake.faces.worker_pool import orphan_safe_pool

log = logging.getLogger(__name__)

@dataclass
class FacesConfig:
    """Params of the faces stage (params.yaml section `faces`)."""

    crop_size: int = 224  # side of the aligned crop, px
    margin: float = 1.6  # crop side = margin x eye-to-mouth distance
    min_prob: float = 0.9  # faces below this MTCNN probability are ignored
    min_face_px: int = 64  # reject when the crop side measured in source px (face_px) is smaller
    max_pad_fraction: float = 0.05  # reject when more of the crop than this lies outside the image
    primary: Literal["center", "largest", "prob"] = "center"  # which face is the subject
    detect_size: int = 192  # long side of the (bordered) downscaled copy MTCNN runs on
    detect_pad: float = 0.2  # grey border around the detection copy, share of the long side
    batch_size: int = 16  # images per MTCNN call
    workers: int = 2  # processes; 1 runs in-process
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard
    seed: int = 0  # contact-sheet sampling
    device: Literal["auto", "cpu", "cuda"] = "auto"  # MTCNN on auto | cpu | cuda (auto: CUDA where torch, or the Ray cluster, has one)

    def validate(self) -> None:
        """Raise UserError on values that cannot work (load_section checked the types)."""
        checks = {
            "crop_size": self.crop_size >= 16,
            "margin": self.margin > 0,
            "min_prob": 0 <= self.min_prob <= 1,
            "min_face_px": self.min_face_px >= 0,
            "max_pad_fraction": 0 <= self.max_pad_fraction <= 1,
            "detect_size": self.detect_size >= 48,
            "detect_pad": 0 <= self.detect_pad <= 1,
            "batch_size": self.batch_size >= 1,
            "workers": self.workers >= 1,
            "max_pixels": self.max_pixels > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise UserError(f"faces: invalid value for {bad}: {[getattr(self, b) for b in bad]}")


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


# ---------------------------------------------------------------- the process pool

_WORKER: dict[str, Any] = {}


def resolve_device(name: str) -> str:
    """`auto` -> cuda when torch sees a GPU, else cpu; asking for cuda without one is a user error."""
    import torch

    has_cuda = torch.cuda.is_available()
    if name == "cuda" and not has_cuda:
        raise UserError("faces.device is cuda but torch sees no CUDA device (use auto or cpu)")
    return "cuda" if name == "cuda" or (name == "auto" and has_cuda) else "cpu"


def make_detector(cfg: FacesConfig) -> FaceDetector:
    """One process's (or actor's) MTCNN with one torch and one OpenCV thread: the processes are the parallelism."""
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    return FaceDetector(cfg.detect_size, cfg.min_face_px, cfg.detect_pad, device=resolve_device(cfg.device))


def _init_worker(cfg: FacesConfig) -> None:
    """Per-process setup: one MTCNN (make_detector)."""
    _WORKER["cfg"] = cfg
    _WORKER["detector"] = make_detector(cfg)


def _work(items: list[tuple], out_dir: str) -> list[tuple[int, dict[str, Any]]]:
    """Pool task: one batch through the worker's detector."""
    return process_batch(items, out_dir, _WORKER["cfg"], _WORKER["detector"])


def process_images(
    items: list[tuple[str, str]], out_dir: str | os.PathLike, cfg: FacesConfig, progress: bool = True,
    watermark_boxes: list[Any] | None = None, compute: ComputeConfig | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Run (image path, face_id) items through the pipeline; return records in input order and seconds taken.

    on_batch(n) is called as each batch of n images is done (benchmarks time the engines with it).
    """
    from realfake.core.progress import tqdm

    boxes = watermark_boxes or [None] * len(items)
    indexed = [(i, path, fid, box) for i, ((path, fid), box) in enumerate(zip(items, boxes, strict=True))]
    batches = [indexed[i:i + cfg.batch_size] for i in range(0, len(indexed), cfg.batch_size)]
    records: list[dict[str, Any] | None] = [None] * len(items)
    start = time.perf_counter()
    bar = tqdm(total=len(items), unit="img", disable=not progress or not items, desc="faces")

    def done(n: int) -> None:
        bar.update(n)
        if on_batch is not None:
            on_batch(n)

    if not batches:
        pass  # nothing to do: do not pay for loading torch and MTCNN
    elif compute is not None and compute.engine == "ray":
        from realfake.faces.crop_ray import ray_crop_batches

        for result in ray_crop_batches(batches, cfg, compute):
            _collect(write_crops(result, out_dir), records, done)
    elif cfg.workers == 1 or len(batches) <= 1:
        _init_worker(cfg)
        results = (_work(b, os.fspath(out_dir)) for b in batches)
        for result in results:
            _collect(result, records, done)
    else:
        resolve_device(cfg.device)  # a missing GPU is one clear line here, not an error in every worker
        # forkserver: children never inherit a parent that may already have run torch ops (fork + OpenMP
        # can deadlock), yet torch is imported once in the server and not once per worker as with spawn
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "facenet_pytorch", "realfake.faces.crop"])
        # the workers exit with this process, even when it is killed (a plain pool's workers outlive it)
        with orphan_safe_pool(cfg.workers, ctx, initializer=_init_worker, initargs=(cfg,)) as pool:
            for result in pool.map(_work, batches, [os.fspath(out_dir)] * len(batches)):
                _collect(result, records, done)
    bar.close()
    return [r if r is not None else {**empty_record(), "reason": "lost"} for r in records], time.perf_counter() - start


def _collect(result: list[tuple[int, dict[str, Any]]], records: list, done: Callable[[int], None]) -> None:
    """Store a batch's records at their input positions."""
    for index, rec in result:
        records[index] = rec
    done(len(result))
