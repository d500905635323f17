"""The training image: how an aligned crop becomes what the detector sees (params.yaml `resize`).

One definition for the resize stage (which stores it), the checkpoint's record of it and `realfake predict` (which
applies it to new photos), so they cannot disagree. With `reencode: jpeg`, every training image also goes through
one JPEG encoder, so every source carries the same quantization tables and 8x8 grid, whatever its own compression:
the detector has to learn the generation, not the source's encoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

from realfake.core.errors import UserError
from realfake.core.imageio import RESAMPLE, jpeg_roundtrip
from realfake.core.params import load_section


@dataclass
class ResizeConfig:
    """params.yaml section `resize` (read with realfake.core.params.load_section)."""

    size: int = 64  # side of the training images, px
    reencode: Literal["none", "jpeg"] = "jpeg"  # "jpeg": every training image goes through one JPEG encoder
    jpeg_quality: int = 75  # IJG quality of that encoder, 1..100

    def __post_init__(self) -> None:
        if not 8 <= self.size <= 1024:
            raise UserError(f"resize.size must be an integer in 8..1024, got {self.size!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise UserError(f"resize.jpeg_quality must be an integer in 1..100, got {self.jpeg_quality!r}")


def image_size(params: Mapping[str, Any] | None) -> int:
    """`resize.size`, the side of every training image: the one place it is read (resize, sample, train, evaluate)."""
    return load_section(ResizeConfig, params, "resize").size


def shape_crop(rgb: np.ndarray, cfg: ResizeConfig) -> np.ndarray:
    """An aligned square RGB crop as the model sees it: resized to cfg.size, then re-encoded when cfg.reencode says so."""
    if rgb.shape[0] != rgb.shape[1]:
        raise ValueError(f"crop is not square: {rgb.shape[1]}x{rgb.shape[0]}")
    out = rgb if rgb.shape[0] == cfg.size else np.asarray(Image.fromarray(rgb).resize((cfg.size, cfg.size), RESAMPLE))
    if cfg.reencode == "jpeg":
        out = jpeg_roundtrip(out, cfg.jpeg_quality)
    return out
