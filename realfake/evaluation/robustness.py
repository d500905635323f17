"""Deterministic image damage on uint8 N×3×S×S batches, and AUC under each damage.

Transforms are named by short specs (`jpeg:75`, `blur:1`, `downscale:0.5`, `crop:0.9`) so params.yaml can
list them. Each returns a new uint8 array of the same shape; none uses randomness.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from realfake.core.errors import UserError
from realfake.evaluation.metrics import binary_metrics

log = logging.getLogger(__name__)

Transform = Callable[[np.ndarray], np.ndarray]
DEFAULT_SPECS = ("jpeg:75", "jpeg:50", "jpeg:30", "blur:1", "blur:2", "downscale:0.5", "crop:0.9")


def _check(batch: np.ndarray) -> np.ndarray:
    """Reject anything but uint8 N×3×H×W (a programming error, not bad data)."""
    batch = np.asarray(batch)
    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1] != 3:
        raise ValueError(f"expected uint8 N×3×H×W, got {batch.dtype} {batch.shape}")
    return batch


def _per_image(batch: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply an HWC-uint8 function to each image of an NCHW batch."""
    batch = _check(batch)
    out = np.empty_like(batch)
    for i, chw in enumerate(batch):
        out[i] = fn(np.ascontiguousarray(chw.transpose(1, 2, 0))).transpose(2, 0, 1)
    return out


def jpeg(batch: np.ndarray, quality: int) -> np.ndarray:
    """Encode each image as JPEG at `quality` (PIL, 4:2:0) and decode it back."""
    def one(hwc: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(hwc).save(buf, format="JPEG", quality=int(quality))
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return _per_image(batch, one)


def gaussian_blur(batch: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` px (kernel 2·ceil(3σ)+1, reflected borders)."""
    k = 2 * int(np.ceil(3 * sigma)) + 1
    return _per_image(batch, lambda hwc: cv2.GaussianBlur(hwc, (k, k), sigmaX=sigma, sigmaY=sigma,
                                                          borderType=cv2.BORDER_REFLECT_101))


def downscale(batch: np.ndarray, factor: float) -> np.ndarray:
    """Downscale by `factor` (area) and back up to the original size (bilinear): detail is lost."""
    def one(hwc: np.ndarray) -> np.ndarray:
        h, w = hwc.shape[:2]
        small = cv2.resize(hwc, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return _per_image(batch, one)


def centre_crop(batch: np.ndarray, fraction: float) -> np.ndarray:
    """Keep the central `fraction` of each side and resize it back to the original size (bilinear)."""
    def one(hwc: np.ndarray) -> np.ndarray:
        h, w = hwc.shape[:2]
        ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
        top, left = (h - ch) // 2, (w - cw) // 2
        return cv2.resize(hwc[top:top + ch, left:left + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    return _per_image(batch, one)


_KINDS: dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], type]] = {
    "jpeg": (jpeg, int), "blur": (gaussian_blur, float), "downscale": (downscale, float), "crop": (centre_crop, float),
}


def parse_transform(spec: str) -> Transform:
    """Turn `kind:value` (jpeg:75, blur:1, downscale:0.5, crop:0.9) into a batch transform."""
    kind, _, value = spec.partition(":")
    if kind not in _KINDS or not value:
        raise UserError(f"unknown robustness transform {spec!r}: use one of {', '.join(k + ':<v>' for k in _KINDS)}")
    fn, cast = _KINDS[kind]
    try:
        arg = cast(value)
    except ValueError as exc:
        raise UserError(f"bad value in robustness transform {spec!r}") from exc
    return lambda batch: fn(batch, arg)


def score_under(images: np.ndarray, score_fn: Callable[[np.ndarray], np.ndarray], transform: Transform | None,
                batch_size: int = 256, desc: str = "score") -> np.ndarray:
    """Scores of `score_fn` on (optionally damaged) images, in chunks so memory-mapped arrays stay on disk."""
    out = np.empty(len(images), dtype=np.float64)
    for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", leave=False):
        chunk = np.asarray(images[start:start + batch_size])
        out[start:start + len(chunk)] = score_fn(transform(chunk) if transform else chunk)
    return out


def robustness_table(images: np.ndarray, y: np.ndarray, score_fn: Callable[[np.ndarray], np.ndarray],
                     specs: tuple[str, ...] | list[str] = DEFAULT_SPECS, threshold: float = 0.5,
                     batch_size: int = 256) -> list[dict]:
    """AUC and accuracy at `threshold` on clean and on each damaged copy of the images."""
    rows = []
    for spec in ["none", *specs]:
        transform = None if spec == "none" else parse_transform(spec)
        m = binary_metrics(y, score_under(images, score_fn, transform, batch_size, desc=spec), threshold)
        rows.append({"transform": spec, "roc_auc": m["roc_auc"], "accuracy": m["accuracy"], "n": m["n"]})
        log.info("robustness %s: AUC %.4f", spec, m["roc_auc"])
    return rows
