"""The detector's input views (params `sample.view`, `crops`): their params, packed size and record.

aligned: the resize stage's aligned tight crop at `resize.size`; context: a wider aligned crop at `crops.context.size`, resampled
once from the original; native: an axis-aligned window of `crops.native.side` original pixels, never resampled
(docs/views.md). One definition for the crops stage, the sample stage (which writes data/packed/view.json), the
checkpoint's record of it and `realfake predict`, so they cannot disagree. It lives outside realfake/core so
that a change here re-runs only the stages that cut or pack views, never download, faces or resize.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from realfake.core.atomic import write_json
from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.core.training_image import image_size
from realfake.core.view_record import VIEW_FILE

View = Literal["aligned", "context", "native"]
VIEWS: tuple[str, ...] = ("aligned", "context", "native")


@dataclass
class NativeConfig:
    """params.yaml `crops.native`: the native-resolution window."""

    side: int = 128  # window side in original px; frames smaller than this are rejected (never upscaled)

    def __post_init__(self) -> None:
        if not 8 <= self.side <= 1024:
            raise UserError(f"crops.native.side must be an integer in 8..1024, got {self.side!r}")


@dataclass
class ContextConfig:
    """params.yaml `crops.context`: the wider aligned crop."""

    margin: float = 2.2  # crop side = margin x eye-to-mouth distance (faces.margin is the tight crop's)
    size: int = 96  # output side, px: the crop is resampled once from the original to it
    max_pad_fraction: float = 0.05  # most of the crop that may lie outside the image (mirrored border)
    # reject when `size` exceeds the crop's side in the original times this (reason `upscale`); null: allow any
    # (a face the faces stage kept spans >= faces.min_face_px, so the upscale is bounded by size / min_face_px)
    max_upscale: float | None = None
    # a crop that would pad more than max_pad_fraction: `shrink` cuts it at the widest margin in [min_margin,
    # margin] that fits (and pads at min_margin when none does), so every face gets a crop; `reject` refuses it
    # (reason `pad`). Shrinking makes framing vary with the photo: train.augment.crop_scale reaching
    # (min_margin / margin)^2 shows every framing in both classes (docs/views.md)
    fit: Literal["shrink", "reject"] = "shrink"
    min_margin: float = 1.6  # faces.margin: the tight crop the faces stage already cut within max_pad_fraction

    def __post_init__(self) -> None:
        if not self.margin > 0:
            raise UserError(f"crops.context.margin must be > 0, got {self.margin!r}")
        if self.max_upscale is not None and not self.max_upscale >= 1.0:
            raise UserError(f"crops.context.max_upscale must be >= 1 or null, got {self.max_upscale!r}")
        if not 8 <= self.size <= 1024:
            raise UserError(f"crops.context.size must be an integer in 8..1024, got {self.size!r}")
        if not 0 <= self.max_pad_fraction <= 1:
            raise UserError(f"crops.context.max_pad_fraction must be in 0..1, got {self.max_pad_fraction!r}")
        if not 0 < self.min_margin <= self.margin:
            raise UserError(f"crops.context.min_margin must be in (0, margin={self.margin}], got {self.min_margin!r}")


@dataclass
class CropsConfig:
    """params.yaml section `crops` (the crops stage)."""

    native: NativeConfig = field(default_factory=NativeConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    workers: int = 2  # threads (decoding and OpenCV release the GIL); 1 runs in this thread

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UserError(f"crops.workers must be >= 1, got {self.workers!r}")


def crops_config(params: Mapping[str, Any] | None) -> CropsConfig:
    """params.yaml `crops`, checked."""
    return load_section(CropsConfig, params, "crops")


def view_size(view: str, params: Mapping[str, Any] | None) -> int:
    """Side of the packed images of `view`: resize.size, crops.context.size or crops.native.side."""
    if view not in VIEWS:
        raise UserError(f"sample.view must be one of {', '.join(VIEWS)}, got {view!r}")
    if view == "aligned":
        return image_size(params)
    crops = crops_config(params)
    return crops.context.size if view == "context" else crops.native.side


def view_record(view: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a checkpoint stores of the view: its name, packed size and the params that cut it (plain types)."""
    record: dict[str, Any] = {"name": view, "size": view_size(view, params)}
    if view != "aligned":
        record[view] = asdict(getattr(crops_config(params), view))
    return record


def write_view_record(packed_dir: str | Path, record: Mapping[str, Any]) -> None:
    """data/packed/view.json, atomically (read back by realfake.detector.packed.packed_view)."""
    write_json(Path(packed_dir) / VIEW_FILE, dict(record))


def recorded_view(preprocessing: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's view record (checkpoints written before views were recorded hold the aligned view)."""
    record = dict(preprocessing.get("view") or {"name": "aligned"})
    if record.get("name") not in VIEWS:
        raise UserError(f"the checkpoint records an unknown view {record.get('name')!r} (known: {', '.join(VIEWS)})")
    if isinstance(record.get("context"), Mapping) and "fit" not in record["context"]:
        # recorded before the fit policy existed: those models were trained on crops that rejected padding
        record["context"] = {**record["context"], "fit": "reject", "min_margin": record["context"].get("margin")}
    return record
