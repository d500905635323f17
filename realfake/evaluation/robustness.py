"""Deterministic image damage on uint8 N×3×S×S batches, and AUC under each damage.

Transforms are named by short specs (`jpeg:75`, `blur:1`, `downscale:0.5`, `crop:0.9`) so params.yaml can
list them. Each returns a new uint8 array of the same shape; none uses randomness.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np

from realfake.core.errors import UserError
from realfake.core.imageio import gaussian_blur as blur_image
from realfake.core.imageio import jpeg_roundtrip
from realfake.detector.scorer import score_in_batches
from realfake.evaluation.metrics import binary_metrics

log = logging.getLogger(__name__)

Transform = Callable[[np.ndarray], np.ndarray]
DEFAULT_SPECS = ("jpeg:95", "jpeg:75", "jpeg:50", "jpeg:30", "blur:1", "blur:2", "downscale:0.5", "crop:0.9")


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
    """Encode each image as JPEG at `quality` (the pipeline's one encoder, realfake.core.imageio) and decode it back."""
    return _per_image(batch, lambda hwc: jpeg_roundtrip(hwc, quality))


def gaussian_blur(batch: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` px (realfake.core.imageio.gaussian_blur, reflected borders)."""
    return _per_image(batch, lambda hwc: blur_image(hwc, sigma))


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


def robustness_table(images: np.ndarray, y: np.ndarray, score_fn: Callable[[np.ndarray], np.ndarray],
                     specs: tuple[str, ...] | list[str] = DEFAULT_SPECS, threshold: float = 0.5,
                     batch_size: int = 256) -> list[dict]:
    """AUC and accuracy at `threshold` on clean and on each damaged copy of the images."""
    rows = []
    for spec in ["none", *specs]:
        transform = None if spec == "none" else parse_transform(spec)
        m = binary_metrics(y, score_in_batches(score_fn, images, batch_size, transform=transform, desc=spec), threshold)
        rows.append({"transform": spec, "roc_auc": m["roc_auc"], "accuracy": m["accuracy"], "n": m["n"]})
        log.info("robustness %s: AUC %.4f", spec, m["roc_auc"])
    return rows
