"""Training images from the aligned crops: resized with the pipeline's one filter (Lanczos), optionally re-encoded.

With `reencode: jpeg`, every training image also goes through one JPEG encoder before it is stored, so every
source carries the same quantization tables and 8x8 grid, whatever its own compression: the detector has to
learn the generation, not the source's encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from realfake.core.errors import UserError
from realfake.core.imageio import RESAMPLE, jpeg_roundtrip
from realfake.core.params import check_image_size


@dataclass
class ResizeConfig:
    """Params of the resize stage (params.yaml section `resize`; read with realfake.core.params.load_section)."""

    size: int = 64  # side of the training images, px
    reencode: Literal["none", "jpeg"] = "jpeg"  # "jpeg": every training image goes through one JPEG encoder (module doc)
    jpeg_quality: int = 75  # IJG quality of that encoder, 1..100

    def __post_init__(self) -> None:
        check_image_size(self.size)
        if not 1 <= self.jpeg_quality <= 100:
            raise UserError(f"resize.jpeg_quality must be an integer in 1..100, got {self.jpeg_quality!r}")


def resize_crop(path: Path, size: int) -> np.ndarray:
    """Read an aligned crop and resize it to size x size (raises OSError/ValueError on a bad crop)."""
    with Image.open(path) as img:
        img.load()
        if img.width != img.height:
            raise ValueError(f"crop is not square: {img.width}x{img.height}")
        rgb = img.convert("RGB")
    if rgb.width == size:
        return np.asarray(rgb)
    return np.asarray(rgb.resize((size, size), RESAMPLE))


def training_image(path: Path, cfg: ResizeConfig) -> np.ndarray:
    """The pixels stored for one crop: resized, then re-encoded when cfg.reencode says so."""
    out = resize_crop(path, cfg.size)
    if cfg.reencode == "jpeg":
        out = jpeg_roundtrip(out, cfg.jpeg_quality)
    return out
