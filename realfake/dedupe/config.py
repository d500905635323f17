"""The `dedupe:` section of params.yaml as dataclasses, validated with user-facing errors."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from realfake.core.errors import UserError


@dataclass(frozen=True)
class CalibrationConfig:
    """Known positives (same photo in two sources, same `group`) and random negatives (different groups)."""

    positive_sources: tuple[str, ...] = ("ffhq", "ffhq-1024")
    negative_sources: tuple[str, ...] = ("lfw", "utkface")
    negatives: int = 20000
    seed: int = 0
    min_recall: float = 0.99
    max_false_merges: int = 0


@dataclass(frozen=True)
class DedupeConfig:
    """Match rule, keeper policy and calibration of the dedupe stage."""

    phash_max: int = 2  # crops match if pHash distance <= phash_max ...
    dhash_max: int = 2  # ... and dHash distance <= dhash_max (or the decoded pixels are equal)
    frame_phash_max: int = 2  # original images match if pHash distance <= frame_phash_max ...
    frame_dhash_max: int = 4  # ... and dHash distance <= frame_dhash_max
    match_flips: bool = False  # also match a face against the left-right mirror of the others
    match_frames: bool = True  # also match the original images (data/raw/<source>/<path>) by the same rule
    source_priority: tuple[str, ...] = ()  # keeper policy: earlier source wins, then more pixels
    drop_conflicts: bool = True  # drop every member of a cluster that carries both labels
    workers: int = 2  # threads decoding crops (PIL releases the GIL)
    gallery_tile: int = 112  # px per face in plots/dedupe/pairs.png
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)

    @classmethod
    def from_params(cls, section: dict[str, Any] | None) -> DedupeConfig:
        """Build from the params.yaml section; unknown keys and bad values are user errors."""
        section = dict(section or {})
        calib = _build(CalibrationConfig, section.pop("calibration", None) or {}, "dedupe.calibration")
        cfg = _build(cls, section, "dedupe", calibration=calib)
        for name in ("phash_max", "dhash_max", "frame_phash_max", "frame_dhash_max"):
            if not 0 <= getattr(cfg, name) < 64:
                raise UserError(
                    f"dedupe.{name} must be a Hamming distance in 0..63, got {getattr(cfg, name)}"
                )
        if cfg.workers < 1 or cfg.gallery_tile < 16 or cfg.calibration.negatives < 0:
            raise UserError("dedupe: workers >= 1, gallery_tile >= 16 and calibration.negatives >= 0")
        return cfg


def _build(cls, values: dict[str, Any], where: str, **extra):
    """Instantiate a config dataclass, turning lists into tuples and type mistakes into UserError."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if isinstance(default, tuple):
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise UserError(f"{where}.{name} must be a list of source names")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise UserError(f"{where}.{name} must be true or false")
        elif isinstance(default, int | float) and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise UserError(f"{where}.{name} must be a number, got {value!r}")
        elif isinstance(default, int) and not float(value).is_integer():
            raise UserError(f"{where}.{name} must be an integer, got {value!r}")
        elif isinstance(default, int):
            value = int(value)
        kwargs[name] = value
    return cls(**kwargs, **extra)
