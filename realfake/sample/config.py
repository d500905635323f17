"""The `sample:` section of params.yaml as dataclasses (read with realfake.core.params.load_section)."""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from typing import Any, Literal

from realfake.core.errors import UserError
from realfake.sample.quality_cells import DEFAULT_BINS, band_column, validate_bins


class SampleParamsError(UserError, ValueError):
    """A bad `sample` param: a ValueError for callers, a one-line UserError for the stage."""


@dataclass(frozen=True)
class SplitFractions:
    """Shares of each class's split groups that go to train, val and test (params.yaml `sample.fractions`)."""

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        shares = astuple(self)
        if abs(sum(shares) - 1) > 1e-6 or min(shares) <= 0:
            raise SampleParamsError(f"sample.fractions must be three positive numbers summing to 1, got {shares}")


@dataclass
class ShardsConfig:
    """`sample.shards`: whether the sample stage also writes shards, and how large each may grow."""

    enabled: bool = False
    max_count: int = 10000  # images per shard
    max_bytes: int = 256 * 2**20  # bytes per shard (WebDataset suggests 100 MB - 1 GB for object stores)
    encoding: Literal["file", "npy"] = "file"  # file: the resized PNG as is | npy: decoded uint8 (nothing to decode)

    def __post_init__(self) -> None:
        for name in ("max_count", "max_bytes"):
            if getattr(self, name) < 1:
                raise UserError(f"sample.shards.{name} must be a positive integer, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class SampleConfig:
    """The `sample` params section (read with realfake.core.params.load_section)."""

    strata: tuple[str, ...] = ("gender", "age_group", "race_group")
    min_per_stratum: int = 2
    max_source_share: float | None = None  # cap on one source's share inside a class
    max_per_class: int | None = None  # optional overall cap, drawn uniformly across strata
    fractions: SplitFractions = SplitFractions()
    seed: int = 0
    exclude_sources: tuple[str, ...] = ()
    holdout_sources: tuple[str, ...] = ("ciplab-real",)  # never trained on: always held out, scored on their own
    holdout_source: str | None = None  # the one-off leave-one-source-out switch; joins holdout_sources
    quality_strata: tuple[str, ...] = ()  # quality measures whose bands join the strata (realfake.quality_cells)
    quality_bins: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_BINS))
    quality_position: Literal["first", "last"] = "last"  # last: bands split demographic cells and merge away first
    shards: ShardsConfig = field(default_factory=ShardsConfig)  # WebDataset shards of every face (sample/shards.py)
    view: Literal["aligned", "context", "native"] = "context"  # the packed pixels (realfake/sample/views.py)
    require_views: tuple[Literal["aligned", "context", "native"], ...] = ()  # pack only faces every listed view kept

    def __post_init__(self) -> None:
        bad = [name for name in self.held_out if not name]
        if bad:
            raise SampleParamsError(f"sample.holdout_sources/holdout_source must be source names, got {bad}")
        try:
            validate_bins(self.quality_bins, self.quality_strata)
        except UserError as exc:
            raise SampleParamsError(str(exc)) from exc

    @property
    def all_strata(self) -> tuple[str, ...]:
        """The columns a stratum is made of: the demographic strata and the quality bands, in merge order."""
        quality = tuple(band_column(m) for m in self.quality_strata)
        return (*quality, *self.strata) if self.quality_position == "first" else (*self.strata, *quality)

    @property
    def held_out(self) -> tuple[str, ...]:
        """holdout_sources then holdout_source, duplicates dropped (order kept)."""
        names = (*self.holdout_sources, *((self.holdout_source,) if self.holdout_source else ()))
        return tuple(dict.fromkeys(names))
