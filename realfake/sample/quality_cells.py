"""Image-quality cells for sampling: measures (face sharpness, original face size, JPEG quality) cut into bands.

Balancing gender × age × race leaves quality free, so the classifier can learn "sharp and clean means fake"
(in the pool, reals were mostly small soft frames and fakes clean generator outputs). Adding quality bands to the strata
draws real and fake faces in equal numbers within each band as well. Quantile bands are computed over the pool
of both classes, so each band is well filled; fixed edges suit measures with a natural scale (JPEG quality).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from realfake.core.errors import UserError

QUALITY_MEASURES = ("sharpness", "face_px", "jpeg_quality", "noise", "contrast", "brightness")
# Report bands for every measure in `sample.quality_bins`, whether or not it is a stratum, so the two sampling arms
# (quality_strata: [] and a list) are compared on the same cells.
DEFAULT_BINS: dict[str, Any] = {"sharpness": 3, "face_px": 3, "jpeg_quality": [0, 80, 90, 101]}


def band_column(measure: str) -> str:
    """Name of the column holding a measure's band (e.g. sharpness -> sharpness_band)."""
    return f"{measure}_band"


def validate_bins(bins: dict[str, Any], strata: tuple[str, ...]) -> None:
    """Raise a one-line error for unknown measures, bad bin specs, or strata without bins."""
    for measure, spec in bins.items():
        if measure not in QUALITY_MEASURES:
            raise UserError(f"sample.quality_bins: unknown measure {measure!r}; known: {QUALITY_MEASURES}")
        if isinstance(spec, bool) or not (
                (isinstance(spec, int) and spec >= 2)
                or (isinstance(spec, list) and len(spec) >= 2 and all(isinstance(v, (int, float)) for v in spec)
                    and all(a < b for a, b in zip(spec, spec[1:], strict=False)))):
            raise UserError(f"sample.quality_bins.{measure} must be a number of quantile bands (>= 2) or increasing "
                            f"edges, got {spec!r}")
    missing = [m for m in strata if m not in bins]
    if missing:
        raise UserError(f"sample.quality_strata {missing} need an entry in sample.quality_bins")


def band_edges(pool: pd.DataFrame, bins: dict[str, Any]) -> dict[str, list[float]]:
    """Edges per measure: fixed lists as given; an int n gives the n-quantiles of the pool (ties merged)."""
    edges: dict[str, list[float]] = {}
    for measure, spec in bins.items():
        if isinstance(spec, list):
            edges[measure] = [float(v) for v in spec]
            continue
        values = _values(pool, measure)
        values = values[np.isfinite(values)]
        inner = np.unique(np.quantile(values, np.linspace(0, 1, spec + 1)[1:-1])) if values.size else np.array([])
        edges[measure] = [-np.inf, *(round(float(v), 4) for v in inner), np.inf]
    return edges


def bands(df: pd.DataFrame, measure: str, edges: list[float]) -> pd.Series:
    """Each row's band name, e.g. 'sharpness 8.1-43' ('<8.1', '>=43' at the open ends); null where unmeasured."""
    names = [_band_name(measure, lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    cut = pd.cut(_values(df, measure), edges, right=False, labels=names)
    return pd.Series(cut.astype("object"), index=df.index).where(pd.notna(cut), None).astype("string")


def add_bands(df: pd.DataFrame, edges: dict[str, list[float]]) -> pd.DataFrame:
    """df with one `<measure>_band` column per measure in edges."""
    return df.assign(**{band_column(m): bands(df, m, e) for m, e in edges.items()})


def _values(df: pd.DataFrame, measure: str) -> np.ndarray:
    if measure not in df:
        raise UserError(f"sample: the metadata has no {measure!r} column to cut into quality bands")
    return pd.to_numeric(df[measure], errors="coerce").astype("float64").to_numpy()


def _band_name(measure: str, lo: float, hi: float) -> str:
    if np.isinf(lo) and np.isinf(hi):
        return f"{measure} all"
    if np.isinf(lo):
        return f"{measure}<{hi:g}"
    if np.isinf(hi):
        return f"{measure}>={lo:g}"
    return f"{measure} {lo:g}-{hi:g}"
