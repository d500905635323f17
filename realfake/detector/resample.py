"""Random resampling of fixed-size image batches: down by a random factor with one filter, back up with another.

Chain matching (Chai et al. ECCV 2020; "Fake or JPEG?", 2024): a detector learns every processing step that
one class went through more often than the other. The mirror downscaled its large sources to 384 px (PIL
Lanczos) and kept small ones as they were, so "was resampled, and with which filter" correlates with the
source, hence with the label. Drawing a random resampling for real and fake images alike, before anything
else, makes that trace useless to the classifier. Down then back up keeps the batch at its fixed size S
(packed views are (N, 3, S, S)); each step works on 8-bit images, as stored files are.

Filters: `nearest`, `bilinear`, `bicubic` and `area` are OpenCV's (the first three alias on downscaling, as
many real pipelines do; `area` box-averages); `lanczos` is PIL's, antialiased, as the mirror used. Per image
on the CPU: at 64 px an OpenCV or PIL resize takes microseconds, far less than batching by size would save.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

OPENCV = {"nearest": cv2.INTER_NEAREST_EXACT, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
          "area": cv2.INTER_AREA}
FILTERS = (*OPENCV, "lanczos")


def resize(hwc: np.ndarray, width: int, height: int, name: str) -> np.ndarray:
    """One H x W x 3 uint8 image resized to width x height with filter `name` (one of FILTERS)."""
    if name == "lanczos":
        return np.asarray(Image.fromarray(hwc).resize((width, height), Image.Resampling.LANCZOS))
    return cv2.resize(hwc, (width, height), interpolation=OPENCV[name])


def random_resample(x: torch.Tensor, scale: list[float], filters: list[str], gen: torch.Generator) -> torch.Tensor:
    """Each uint8 image of (N, 3, H, W) downscaled by its own factor in `scale` and filter, then back up to H x W."""
    n, _, h, w = x.shape
    factors = (scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=gen)).tolist()
    down = torch.randint(len(filters), (n,), generator=gen).tolist()
    up = torch.randint(len(filters), (n,), generator=gen).tolist()
    out = np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())  # a copy in NumPy: torch's clone wakes its thread pool
    for i, factor in enumerate(factors):
        sw, sh = max(1, round(w * factor)), max(1, round(h * factor))
        if (sw, sh) != (w, h):  # a factor that rounds to 1 resamples nothing
            out[i] = resize(resize(out[i], sw, sh, filters[down[i]]), w, h, filters[up[i]])
    return torch.from_numpy(out).permute(0, 3, 1, 2)
