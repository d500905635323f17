"""The decision threshold chosen on validation scores (stored in the checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

THRESHOLD_RULE = ("max balanced accuracy (= Youden's J) on val over 0.5 and midpoints between distinct val scores; "
                  "ties -> closest to 0.5")
NAN = float("nan")


@dataclass
class ThresholdChoice:
    """The decision threshold picked on validation, and why."""

    threshold: float
    rule: str = THRESHOLD_RULE
    val_balanced_accuracy: float = NAN
    val_youden_j: float = NAN
    notes: list[str] = field(default_factory=list)


def as_arrays(y_true, p_fake) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert labels and scores to (int8, float64) 1-D arrays of equal length."""
    y = np.asarray(y_true).astype(np.int8).ravel()
    p = np.asarray(p_fake, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but p_fake has {p.size}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0 (real) and 1 (fake)")
    return y, p


def _balanced_accuracy_at(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Balanced accuracy of `p >= t` for every t (vectorised with sorted per-class scores)."""
    fake, real = np.sort(p[y == 1]), np.sort(p[y == 0])
    tpr = (fake.size - np.searchsorted(fake, thresholds, side="left")) / fake.size
    tnr = np.searchsorted(real, thresholds, side="left") / real.size
    return (tpr + tnr) / 2


def choose_threshold(y_val, p_val) -> ThresholdChoice:
    """The validation threshold by THRESHOLD_RULE (0.5 with a note when val lacks a class)."""
    y, p = as_arrays(y_val, p_val)
    if y.size == 0 or y.min() == y.max():
        return ThresholdChoice(0.5, notes=["validation lacks a class: kept 0.5"])
    distinct = np.unique(p)
    candidates = np.concatenate([[0.5], (distinct[1:] + distinct[:-1]) / 2])
    bal = _balanced_accuracy_at(y, p, candidates)
    best = bal.max()
    tied = candidates[np.isclose(bal, best, rtol=0, atol=1e-12)]
    # closest to 0.5; among equally close ones the lower (a stable, documented order)
    t = float(tied[np.lexsort((tied, np.abs(tied - 0.5)))[0]])
    return ThresholdChoice(t, val_balanced_accuracy=float(best), val_youden_j=float(2 * best - 1))
