"""The context view: a wider aligned crop (hair, ears, some background), resampled once from the original.

The same alignment and warp as the faces stage (realfake.faces.alignment) at a larger margin, straight to the output
size (no 224 px intermediate), then the same JPEG re-encode as the resize stage gives the aligned view
(realfake.core.training_image.shape_crop), so the codec chain is the same for every source and class. Border area is
mirrored as in the faces stage. A crop that would pad more than `max_pad_fraction` is, by the `fit` policy, either
cut at the widest margin down to `min_margin` that fits (`shrink`: every face gets a verdict; at `min_margin` it
pads if it must) or refused (`reject`, reason `pad`). `max_upscale` (null by default) refuses crops smaller in the
original than the output (reason `upscale`).
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
    """One face's context view: the pixels, or the reason there are none; the margin and fit it was cut at."""

    pixels: np.ndarray | None
    alignment: Alignment
    pad_fraction: float
    reason: str | None = None
    detail: str | None = None
    margin: float | None = None
    fit: str | None = None  # full: at crops.context.margin | shrunk: a narrower margin | padded: at min_margin, padded


def context_alignment(landmarks, cfg: ContextConfig, margin: float | None = None) -> Alignment:
    """The context crop's similarity transform (landmarks through float32, as the faces table stores them)."""
    points = np.asarray(landmarks, dtype=np.float32).astype(np.float64).reshape(5, 2)
    return align(points, cfg.margin if margin is None else margin, cfg.size)


def candidate_margins(cfg: ContextConfig) -> list[float]:
    """The margins `shrink` tries, widest first: margin, then steps of 0.05 down to min_margin."""
    if cfg.fit == "reject" or cfg.min_margin >= cfg.margin:
        return [cfg.margin]
    steps = int(np.floor((cfg.margin - cfg.min_margin) / 0.05 + 1e-9))
    return [round(cfg.margin - 0.05 * k, 4) for k in range(steps + 1)] + (
        [cfg.min_margin] if cfg.margin - 0.05 * steps > cfg.min_margin + 1e-9 else [])


def context_view(rgb: np.ndarray, landmarks, cfg: ContextConfig, reencode: ResizeConfig,
                 watermark_px: tuple[float, float, float, float] | None = None) -> ContextCut:
    """Cut the context crop of one face (the crops stage and `realfake predict` both call this).

    `reencode` is params `resize` (its reencode and jpeg_quality; size is replaced by cfg.size). The widest
    candidate margin that pads at most cfg.max_pad_fraction and does not read the declared watermark box wins;
    with `shrink` and none fitting, min_margin pads (never over the watermark). Rejected: `pad` (fit `reject`),
    `watermark` when every candidate would read the box, `upscale` past cfg.max_upscale.
    """
    height, width = rgb.shape[:2]
    margins = candidate_margins(cfg)
    chosen, fit, reads_mark = None, "full", False
    for k, margin in enumerate(margins):
        al = context_alignment(landmarks, cfg, margin)
        pad = pad_fraction(al, width, height)
        reads = watermark_px is not None and crop_reads_box(al.matrix, cfg.size, width, height, watermark_px)
        reads_mark |= reads
        if pad <= cfg.max_pad_fraction and not reads:
            chosen, fit = (al, pad, margin), ("full" if k == 0 else "shrunk")
            break
    if chosen is None:
        al = context_alignment(landmarks, cfg, margins[-1])
        pad = pad_fraction(al, width, height)
        if cfg.fit == "reject" and pad > cfg.max_pad_fraction:
            return ContextCut(None, al, pad, "pad", f"pad_fraction {pad:.3f} > {cfg.max_pad_fraction}", margins[-1])
        if watermark_px is not None and crop_reads_box(al.matrix, cfg.size, width, height, watermark_px):
            return ContextCut(None, al, pad, "watermark", f"the crop would read the source's declared watermark box "
                                                          f"{[round(v, 1) for v in watermark_px]}", margins[-1])
        chosen, fit = (al, pad, margins[-1]), "padded"
    al, pad, margin = chosen
    if cfg.max_upscale is not None and cfg.size > al.side * cfg.max_upscale:
        return ContextCut(None, al, pad, "upscale", f"crop side {al.side:.1f} px in the original x max_upscale "
                                                    f"{cfg.max_upscale} < {cfg.size} px", margin)
    shaped = shape_crop(warp_crop(rgb, al, cfg.size),
                        ResizeConfig(size=cfg.size, reencode=reencode.reencode, jpeg_quality=reencode.jpeg_quality))
    return ContextCut(shaped, al, pad, margin=margin, fit=fit)
