"""The context view: a wider aligned crop (hair, ears, some background), resampled once from the original.

The same alignment and warp as the faces stage (realfake.faces.alignment) at a larger margin, straight to the output
size (no 224 px intermediate), then the same JPEG re-encode as the resize stage gives the aligned view
(realfake.core.training_image.shape_crop), so the codec chain is the same for every source and class. Border area is
mirrored as in the faces stage; more than `max_pad_fraction` of it rejects the face (reason `pad`), because padding
shares differ between sources and a classifier can learn them. A face whose crop is smaller in the original than the
output size is rejected too (reason `upscale`, `max_upscale`): only small-face sources would be upscaled (LFW's
faces, all real), and "was upscaled" would then mean "real".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realfake.core.training_image import ResizeConfig, shape_crop
from realfake.core.watermark import crop_reads_box
from realfake.crops.views import ContextConfig
from realfake.faces.alignment import Alignment, align, pad_fraction, warp_crop


@dataclass
class ContextCut:
    """One face's context view: the pixels, or the reason there are none."""

    pixels: np.ndarray | None
    alignment: Alignment
    pad_fraction: float
    reason: str | None = None
    detail: str | None = None


def context_alignment(landmarks, cfg: ContextConfig) -> Alignment:
    """The context crop's similarity transform (landmarks through float32, as the faces table stores them)."""
    return align(np.asarray(landmarks, dtype=np.float32).astype(np.float64).reshape(5, 2), cfg.margin, cfg.size)


def context_view(rgb: np.ndarray, landmarks, cfg: ContextConfig, reencode: ResizeConfig,
                 watermark_px: tuple[float, float, float, float] | None = None) -> ContextCut:
    """Cut the context crop of one face (the crops stage and `realfake predict` both call this).

    `reencode` is params `resize` (its reencode and jpeg_quality; size is replaced by cfg.size). Rejected: `pad`
    above cfg.max_pad_fraction, `upscale` when cfg.size would upscale the crop by more than cfg.max_upscale,
    `watermark` when the crop would read the declared box (the faces stage's rule).
    """
    height, width = rgb.shape[:2]
    al = context_alignment(landmarks, cfg)
    pad = pad_fraction(al, width, height)
    if pad > cfg.max_pad_fraction:
        return ContextCut(None, al, pad, "pad", f"pad_fraction {pad:.3f} > {cfg.max_pad_fraction}")
    if cfg.max_upscale is not None and cfg.size > al.side * cfg.max_upscale:
        return ContextCut(None, al, pad, "upscale", f"crop side {al.side:.1f} px in the original x max_upscale "
                                                    f"{cfg.max_upscale} < {cfg.size} px")
    if watermark_px is not None and crop_reads_box(al.matrix, cfg.size, width, height, watermark_px):
        return ContextCut(None, al, pad, "watermark", f"the crop would read the source's declared watermark box "
                                                      f"{[round(v, 1) for v in watermark_px]}")
    shaped = shape_crop(warp_crop(rgb, al, cfg.size),
                        ResizeConfig(size=cfg.size, reencode=reencode.reencode, jpeg_quality=reencode.jpeg_quality))
    return ContextCut(shaped, al, pad)
