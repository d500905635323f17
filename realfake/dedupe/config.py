"""The `dedupe:` section of params.yaml as dataclasses (read with realfake.core.params.load_section)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # ... and their 16 px grayscale thumbnails differ by <= this many grey levels on average (a resized copy of one
    # photo: <= 0.41 on the 300 ffhq/ffhq-1024 pairs; different people on plain backgrounds: >= 13)
    frame_max_diff: float = 3.0
    match_flips: bool = False  # also match a face against the left-right mirror of the others
    match_frames: bool = True  # also match the original images (data/raw/<source>/<path>) by the same rule
    # keeper policy: earlier source wins (ffhq before ffhq-1024: it carries the age/gender labels), then more pixels
    source_priority: tuple[str, ...] = ("ffhq", "ffhq-1024", "lfw", "utkface", "pixabay", "unsplash",
                                        "dfdc-real", "dfdc-faceswap", "ciplab-real", "ciplab-photoshop", "stylegan-140k",
                                        "tpdne", "boredhumans", "generated-faces", "pollinations")
    drop_conflicts: bool = True  # drop every member of a cluster that carries both labels
    workers: int = 2  # threads decoding crops (PIL releases the GIL)
    gallery_tile: int = 112  # px per face in plots/dedupe/pairs.png
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)

    def __post_init__(self) -> None:
        for name in ("phash_max", "dhash_max", "frame_phash_max", "frame_dhash_max"):
            if not 0 <= getattr(self, name) < 64:
                raise UserError(f"dedupe.{name} must be a Hamming distance in 0..63, got {getattr(self, name)}")
        if not 0 <= self.frame_max_diff <= 255:
            raise UserError(f"dedupe.frame_max_diff must be a grey-level difference in 0..255, got {self.frame_max_diff}")
        if self.workers < 1 or self.gallery_tile < 16 or self.calibration.negatives < 0:
            raise UserError("dedupe: workers >= 1, gallery_tile >= 16 and calibration.negatives >= 0")
