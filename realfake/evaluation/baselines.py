"""Detectors beside the CNN: the spectral baseline (Durall et al. 2020) and the file-level shortcut audit.

Both answer "is the CNN's score explained by something other than the face?". The spectral model sees only
the crop's azimuthally averaged power spectrum; the audit model never sees pixels at all, only facts about
the original file (size, compression, format, how the face sat in it).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from realfake.core.progress import tqdm
from realfake.detector.threshold import as_arrays
from realfake.evaluation.metrics import binary_metrics

log = logging.getLogger(__name__)

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma


# ---------------------------------------------------------------- spectral baseline (Durall et al. 2020)

@dataclass(frozen=True)
class SpectralConfig:
    """Spectral baseline settings."""

    C: float = 1.0
    max_iter: int = 2000
    batch_size: int = 512


def _radius_index(size: int) -> tuple[np.ndarray, int]:
    """Integer distance of each pixel from the centred DC term, and the number of radii (to the corners)."""
    yy, xx = np.indices((size, size))
    c = size // 2  # fftshift puts DC at (size // 2, size // 2)
    r = np.hypot(yy - c, xx - c).round().astype(np.int64)
    # keep the corners: GAN up-sampling artefacts peak at the Nyquist corner (radius S/sqrt(2)), as in Durall et al.
    return r, int(r.max()) + 1


def radial_profile(images: np.ndarray) -> np.ndarray:
    """Log of the azimuthally averaged power spectrum of each image's grayscale (N×3×S×S uint8 -> N×R)."""
    images = np.asarray(images)
    n, _, h, w = images.shape
    if h != w:
        raise ValueError(f"square images expected, got {h}×{w}")
    gray = np.tensordot(images.astype(np.float32), GRAY_WEIGHTS, axes=([1], [0]))  # N×S×S
    power = np.abs(np.fft.fftshift(np.fft.fft2(gray, axes=(-2, -1)), axes=(-2, -1))) ** 2
    r, n_r = _radius_index(h)
    flat_r = r.ravel()
    offsets = (np.arange(n)[:, None] * n_r + flat_r[None, :]).ravel()
    sums = np.bincount(offsets, weights=power.reshape(n, -1).ravel(), minlength=n * n_r)
    counts = np.bincount(flat_r, minlength=n_r)
    # average power first, then log: a ring's mean energy, on a scale where spectra of photos are comparable
    return np.log(sums.reshape(n, n_r) / counts + 1e-6).astype(np.float32)


def spectral_features(images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Durall features: the radial profile min-max normalised per image, computed in chunks (mmap-friendly)."""
    chunks = []
    for start in tqdm(range(0, len(images), batch_size), desc="spectrum", unit="batch", leave=False):
        prof = radial_profile(np.asarray(images[start:start + batch_size]))
        lo, hi = prof.min(axis=1, keepdims=True), prof.max(axis=1, keepdims=True)
        chunks.append((prof - lo) / np.maximum(hi - lo, 1e-8))
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks)


def fit_spectral(images: np.ndarray, y, cfg: SpectralConfig = SpectralConfig()) -> Pipeline:
    """Standardise the spectral features and fit a logistic regression on the training images."""
    feats = spectral_features(images, cfg.batch_size)
    y_arr = np.asarray(y).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=cfg.C, max_iter=cfg.max_iter))
    # one BLAS thread: the same float sums on a 2-core and a 64-core machine (and no oversubscription)
    with threadpool_limits(limits=1):
        return model.fit(feats, y_arr)


def score_spectral(model: Pipeline, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """p_fake of the spectral baseline for each image."""
    if len(images) == 0:
        return np.zeros(0)
    with threadpool_limits(limits=1):
        return model.predict_proba(spectral_features(images, batch_size))[:, 1]


# ---------------------------------------------------------------- file-level shortcut audit: does a file fact alone tell the classes apart?

@dataclass(frozen=True)
class AuditColumns:
    """Metadata columns the audit reads: facts about the original file and the face's place in it."""

    width: str = "orig_width"
    height: str = "orig_height"
    bytes: str = "bytes"
    format: str = "orig_format"
    jpeg_quality: str = "jpeg_quality"
    face_px: str = "face_px"
    pad_fraction: str = "pad_fraction"
    grayscale: str = "is_grayscale"


AUDIT_FORMATS = ("JPEG", "PNG", "WEBP")  # fixed one-hot order so train and test align; anything else is "other"
AUDIT_FEATURES = ("width", "height", "bytes_per_pixel", "jpeg_quality", "face_px", "pad_fraction", "is_grayscale",
                  *(f"format_{f.lower()}" for f in AUDIT_FORMATS), "format_other")


@dataclass(frozen=True)
class AuditConfig:
    """Audit model: `logistic` (standardised logistic regression) or `gbm` (small histogram boosting)."""

    model: Literal["logistic", "gbm"] = "logistic"
    C: float = 1.0
    max_iter: int = 2000
    gbm_max_iter: int = 100
    gbm_max_depth: int = 3
    seed: int = 0
    margin: float = 0.03  # "about as well as the CNN": audit AUC within this of the CNN's
    cols: AuditColumns = field(default=AuditColumns(), init=False)  # the metadata schema's names, not a param


def _numeric(frame: pd.DataFrame, col: str) -> np.ndarray:
    """A column as float64 with NaN for missing values (or all-NaN when the column is absent)."""
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col].astype("object"), errors="coerce").astype("float64").to_numpy()


def audit_features(meta: pd.DataFrame, cols: AuditColumns = AuditColumns()) -> pd.DataFrame:
    """The audit's feature matrix (columns AUDIT_FEATURES): NaN where a value is unknown, imputed at fit time."""
    width, height = _numeric(meta, cols.width), _numeric(meta, cols.height)
    with np.errstate(invalid="ignore", divide="ignore"):
        bpp = _numeric(meta, cols.bytes) / (width * height)
    fmt = meta[cols.format].astype("object").fillna("").astype(str).str.upper() if cols.format in meta.columns \
        else pd.Series([""] * len(meta), index=meta.index)
    feats = {
        "width": width, "height": height, "bytes_per_pixel": np.where(np.isfinite(bpp), bpp, np.nan),
        "jpeg_quality": _numeric(meta, cols.jpeg_quality), "face_px": _numeric(meta, cols.face_px),
        "pad_fraction": _numeric(meta, cols.pad_fraction), "is_grayscale": _numeric(meta, cols.grayscale),
    }
    for f in AUDIT_FORMATS:
        feats[f"format_{f.lower()}"] = (fmt == f).to_numpy(dtype=np.float64)
    feats["format_other"] = (~fmt.isin(AUDIT_FORMATS)).to_numpy(dtype=np.float64)
    return pd.DataFrame(feats, index=meta.index, columns=list(AUDIT_FEATURES))


def file_bytes(meta: pd.DataFrame, raw_dir: str | Path = "data/raw", path_col: str = "raw_path") -> pd.Series:
    """File size of each face's original, from `data/raw/<source>.parquet` (joined on the raw path)."""
    raw_dir = Path(raw_dir)
    sizes: dict[str, int] = {}
    for source in meta["source"].astype("object").dropna().unique():
        table = raw_dir / f"{source}.parquet"
        if table.exists():
            raw = pd.read_parquet(table, columns=["path", "bytes"])
            sizes.update(zip((str(raw_dir / str(source) / p) for p in raw["path"]), raw["bytes"].astype(int), strict=True))
    return meta[path_col].map(lambda p: sizes.get(str(p), np.nan)).astype("float64")


def fit_audit(meta_train: pd.DataFrame, y_train, cfg: AuditConfig = AuditConfig()) -> Pipeline:
    """Fit the file-level model on training rows (median imputation, then logistic regression or boosting)."""
    x = audit_features(meta_train, cfg.cols)
    # a feature unknown for every training row carries nothing: fill it with 0 instead of dropping the column
    impute = SimpleImputer(strategy="median", keep_empty_features=True)
    if cfg.model == "gbm":
        clf = HistGradientBoostingClassifier(max_iter=cfg.gbm_max_iter, max_depth=cfg.gbm_max_depth,
                                             random_state=cfg.seed)
        model = make_pipeline(impute, clf)
    elif cfg.model == "logistic":
        model = make_pipeline(impute, StandardScaler(), LogisticRegression(C=cfg.C, max_iter=cfg.max_iter))
    else:
        raise ValueError(f"audit model must be 'logistic' or 'gbm', not {cfg.model!r}")
    # a few thousand rows: OpenMP threads only spin against each other on a shared 2-core machine
    with threadpool_limits(limits=1):
        return model.fit(x, np.asarray(y_train).astype(int))


def score_audit(model: Pipeline, meta: pd.DataFrame, cols: AuditColumns = AuditColumns()) -> np.ndarray:
    """p_fake of the audit model for each metadata row."""
    if len(meta) == 0:
        return np.zeros(0)
    with threadpool_limits(limits=1):
        return model.predict_proba(audit_features(meta, cols))[:, 1]


def shortcut_verdict(y_test, p_cnn, p_other, name: str = "file-level audit model", margin: float = 0.03,
                     sees: str = "no face pixels") -> dict[str, Any]:
    """Say plainly whether a non-face model separates the test classes as well as the CNN (AUC within margin) or better.

    `sees` says what that model looks at, for the sentence (the audit: no face pixels; the spectral
    baseline: only the crop's power spectrum).
    """
    y, p_cnn = as_arrays(y_test, p_cnn)
    _, p_other = as_arrays(y_test, p_other)
    cnn_auc = binary_metrics(y, p_cnn)["roc_auc"]
    other_auc = binary_metrics(y, p_other)["roc_auc"]
    out: dict[str, Any] = {"model": name, "cnn_auc": cnn_auc, "other_auc": other_auc, "margin": margin}
    if math.isnan(cnn_auc) or math.isnan(other_auc):
        out.update(shortcut=None, text=f"{name}: AUC undefined on this test set (one class only); no verdict.")
        return out
    shortcut = other_auc >= cnn_auc - margin
    consequence = "the test AUC may measure a shortcut, not generation artefacts."
    if other_auc > cnn_auc + margin:
        text = (f"WARNING: the {name} ({sees}) separates real from fake better than the CNN "
                f"(AUC {other_auc:.3f} vs {cnn_auc:.3f}): {consequence}")
    elif shortcut:
        text = (f"WARNING: the {name} ({sees}) separates real from fake about as well as the CNN "
                f"(AUC {other_auc:.3f} vs {cnn_auc:.3f}, within {margin}): {consequence}")
    else:
        text = (f"The {name} separates the classes clearly worse than the CNN "
                f"(AUC {other_auc:.3f} vs {cnn_auc:.3f}, gap > {margin}).")
    out.update(shortcut=bool(shortcut), text=text)
    return out
