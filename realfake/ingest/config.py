"""The ingest sections of params.yaml as dataclasses: `data` (the active profile) and `download` (the fetcher, the
archive-bomb guards). Read with realfake.core.params.load_section; the sources themselves are parsed by
realfake.ingest.sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from realfake.core.errors import UserError

CHUNK = 1 << 16  # small enough that a dropped connection loses little of the part file


@dataclass(frozen=True)
class DataConfig:
    """The `data` params section: which profile (where the sources come from) is active."""

    profile: str = "sample"
    profiles: tuple[str, ...] = ("sample", "mirror", "kaggle")

    def __post_init__(self) -> None:
        if self.profile not in self.profiles:
            raise UserError(f"data.profile={self.profile!r} is not one of {list(self.profiles)}")


@dataclass(frozen=True)
class FetchConfig:
    """Network behaviour of the fetcher (params.yaml `download` section)."""

    timeout_s: float = 30.0
    retries: int = 5
    backoff_s: float = 1.0
    cache_dir: str = "data/downloads"

    def __post_init__(self) -> None:
        if not isinstance(self.timeout_s, int | float) or isinstance(self.timeout_s, bool) or not self.timeout_s > 0:
            raise UserError(f"download.timeout_s must be a number > 0, got {self.timeout_s!r}")
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise UserError(f"download.retries must be an integer >= 0, got {self.retries!r}")
        if not isinstance(self.backoff_s, int | float) or isinstance(self.backoff_s, bool) or not self.backoff_s >= 0:
            raise UserError(f"download.backoff_s must be a number >= 0, got {self.backoff_s!r}")


@dataclass(frozen=True)
class ExtractLimits:
    """Archive-bomb guards (params.yaml `download.limits`)."""

    max_files: int = 200_000
    max_total_bytes: int = 20 * 2**30
    max_file_bytes: int = 200 * 2**20
    max_ratio: float = 200.0  # uncompressed / compressed size, of one ZIP entry and of the whole archive

    def __post_init__(self) -> None:
        for name in ("max_files", "max_total_bytes", "max_file_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"download.limits.{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.max_ratio, int | float) or isinstance(self.max_ratio, bool) or not self.max_ratio >= 1:
            raise UserError(f"download.limits.max_ratio must be a number >= 1, got {self.max_ratio!r}")


@dataclass(frozen=True)
class DownloadConfig(FetchConfig):
    """The `download` params section: the fetcher's settings, plus the archive-bomb guards under `limits`."""

    limits: ExtractLimits = field(default_factory=ExtractLimits)
