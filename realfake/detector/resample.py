"""Random resampling of fixed-size image batches: down by a random factor with one filter, back up with another.

Chain matching (Chai et al. ECCV 2020; "Fake or JPEG?", 2024): a detector learns every processing step that
one class went through more often than the other. The mirror downscaled its large sources to 384 px and kept
small ones as they were, so "was resampled, and with which filter" correlates with the source, hence with
the label. Drawing a random resampling for real and fake images alike, before anything else, makes that
trace useless to the classifier. Down then back up keeps the batch at its fixed size S (packed views are
(N, 3, S, S)); the intermediate image is rounded to 8 bits, as a stored downscaled file would be.

Caveat: torch has no Lanczos; `bicubic_aa` (antialiased bicubic, PIL-style support scaling) is the closest
stand-in for PIL's antialiased Lanczos. `bilinear` and `bicubic` are the non-antialiased kernels of OpenCV
and torch, which alias on downscaling, as many real pipelines do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# name: (torch interpolate mode, antialias)
FILTERS: dict[str, tuple[str, bool]] = {
    "nearest": ("nearest-exact", False),
    "bilinear": ("bilinear", False),
    "bicubic": ("bicubic", False),
    "area": ("area", False),  # box average (OpenCV INTER_AREA): exact for integer factors
    "bilinear_aa": ("bilinear", True),
    "bicubic_aa": ("bicubic", True),
}


def resize(x: torch.Tensor, size: tuple[int, int], name: str) -> torch.Tensor:
    """Float images (N, C, H, W) resized to `size` with filter `name` (a key of FILTERS)."""
    mode, antialias = FILTERS[name]
    if mode in ("nearest-exact", "area"):
        return F.interpolate(x, size=size, mode=mode)
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=antialias)


def random_resample(x: torch.Tensor, scale: list[float], filters: list[str], gen: torch.Generator) -> torch.Tensor:
    """Each float image (values in [0, 1]) downscaled by its own factor in `scale` and filter, then back up.

    Images that drew the same intermediate size and filters are resized together, one call per group.
    """
    n, _, h, w = x.shape
    factors = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=gen)
    down = torch.randint(len(filters), (n,), generator=gen).tolist()
    up = torch.randint(len(filters), (n,), generator=gen).tolist()
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for i, factor in enumerate(factors.tolist()):
        small = (max(1, round(h * factor)), max(1, round(w * factor)))
        groups.setdefault((*small, down[i], up[i]), []).append(i)
    out = x.clone()
    for (sh, sw, d, u), rows in groups.items():
        if (sh, sw) == (h, w):  # a factor that rounds to 1: nothing was resampled
            continue
        idx = torch.tensor(rows)
        small = resize(x[idx], (sh, sw), filters[d]).clamp_(0, 1).mul_(255).round_().div_(255)  # a stored 8-bit file
        out[idx] = resize(small, (h, w), filters[u]).clamp_(0, 1)
    return out
