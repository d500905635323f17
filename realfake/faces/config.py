"""The `faces:` section of params.yaml (read with realfake.core.params.load_section)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from realfake.core.errors import UserError
from realfake.core.imageio import DEFAULT_MAX_PIXELS


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
