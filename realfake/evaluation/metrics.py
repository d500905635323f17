"""Model-agnostic binary metrics on fake-probability scores (y = 1 means fake).

Every function takes plain arrays: `y_true` (0 real / 1 fake) and `p_fake` in [0, 1]. A face is called fake
when `p_fake >= threshold`. Degenerate inputs (empty, one class only) give NaN plus a note, never an error.

Threshold rule (`choose_threshold`): on the validation split, the threshold that maximises balanced accuracy,
which is the same as maximising Youden's J = TPR - FPR (balanced accuracy = (1 + J) / 2). Candidates are 0.5
and the midpoints between consecutive distinct validation scores; among candidates that tie on the best
balanced accuracy, the one closest to 0.5 wins (so 0.5 is kept whenever it is already optimal).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np
from sklearn import metrics as skm

from realfake.detector.threshold import NAN, ThresholdChoice, as_arrays, choose_threshold

CLASS_NAMES = ("real", "fake")


def confusion(y_true, y_pred) -> dict[str, Any]:
    """Confusion matrix raw and row-normalised (by true class): rows/cols ordered real, fake."""
    y = np.asarray(y_true).astype(np.int8).ravel()
    yp = np.asarray(y_pred).astype(np.int8).ravel()
    raw = np.array([[np.sum((y == t) & (yp == q)) for q in (0, 1)] for t in (0, 1)], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = raw / raw.sum(axis=1, keepdims=True)
    return {
        "labels": list(CLASS_NAMES),
        "matrix": raw.tolist(),
        "normalized": [[float(v) for v in row] for row in norm],
        "tn": int(raw[0, 0]), "fp": int(raw[0, 1]), "fn": int(raw[1, 0]), "tp": int(raw[1, 1]),
    }


def _safe_div(num: float, den: float) -> float:
    """num / den, or NaN when the denominator is zero (a rate over an empty set)."""
    return float(num) / float(den) if den else NAN


def binary_metrics(y_true, p_fake, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, balanced accuracy, precision, recall, F1, MCC, ROC-AUC, AP and the confusion matrix."""
    y, p = as_arrays(y_true, p_fake)
    notes: list[str] = []
    pred = (p >= threshold).astype(np.int8)
    cm = confusion(y, pred)
    tn, fp, fn, tp = cm["tn"], cm["fp"], cm["fn"], cm["tp"]
    n_real, n_fake = tn + fp, fn + tp
    tpr, tnr = _safe_div(tp, n_fake), _safe_div(tn, n_real)
    precision = _safe_div(tp, tp + fp)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    mcc_den = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = _safe_div(tp * tn - fp * fn, mcc_den)
    both = n_real > 0 and n_fake > 0
    if y.size == 0:
        notes.append("no samples")
    elif not both:
        notes.append(f"only one class present ({'fake' if n_fake else 'real'}): AUC, AP, balanced accuracy, MCC are NaN")
    if tp + fp == 0 and y.size:
        notes.append("no face called fake: precision is NaN")
    return {
        "n": int(y.size), "n_real": int(n_real), "n_fake": int(n_fake), "threshold": float(threshold),
        "accuracy": _safe_div(tp + tn, y.size),
        "balanced_accuracy": (tpr + tnr) / 2 if both else NAN,
        "precision": precision, "recall": tpr, "specificity": tnr,
        "fpr": _safe_div(fp, n_real), "fnr": _safe_div(fn, n_fake),
        "f1": f1, "mcc": mcc if both else NAN,
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else NAN,
        "average_precision": float(skm.average_precision_score(y, p)) if both else NAN,
        "confusion": cm,
        "notes": notes,
    }


def calibration(y_true, p_fake, n_bins: int = 15) -> dict[str, Any]:
    """Expected calibration error over equal-width bins, with the reliability-curve points of non-empty bins."""
    y, p = as_arrays(y_true, p_fake)
    if y.size == 0:
        return {"ece": NAN, "n_bins": n_bins, "curve": [], "notes": ["no samples"]}
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    curve, ece = [], 0.0
    for b in range(n_bins):
        mask = idx == b
        count = int(mask.sum())
        if not count:
            continue
        conf, frac = float(p[mask].mean()), float(y[mask].mean())
        ece += count / y.size * abs(frac - conf)
        curve.append({"bin_lo": float(edges[b]), "bin_hi": float(edges[b + 1]), "mean_predicted": conf,
                      "fraction_fake": frac, "count": count})
    return {"ece": float(ece), "n_bins": n_bins, "curve": curve, "notes": []}


def thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most `max_points` evenly spread points of n, always keeping the first and the last."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def roc_points(y_true, p_fake, max_points: int = 200) -> list[dict[str, float]]:
    """ROC curve points (fpr, tpr, threshold), thinned for plotting; [] when a class is missing."""
    y, p = as_arrays(y_true, p_fake)
    if y.size == 0 or y.min() == y.max():
        return []
    fpr, tpr, thr = skm.roc_curve(y, p)
    thr = np.clip(thr, 0.0, 1.0)  # sklearn's first threshold is +inf; JSON and plots want a number
    return [{"fpr": float(fpr[i]), "tpr": float(tpr[i]), "threshold": float(thr[i])}
            for i in thin(fpr.size, max_points)]


def pr_points(y_true, p_fake, max_points: int = 200) -> list[dict[str, float]]:
    """Precision-recall curve points (recall, precision, threshold), thinned; [] when a class is missing."""
    y, p = as_arrays(y_true, p_fake)
    if y.size == 0 or y.min() == y.max():
        return []
    precision, recall, thr = skm.precision_recall_curve(y, p)
    thr = np.append(thr, 1.0)  # the last (recall 0, precision 1) point has no threshold of its own
    return [{"recall": float(recall[i]), "precision": float(precision[i]), "threshold": float(thr[i])}
            for i in thin(recall.size, max_points)]


def confusion_records(y_true, p_fake, threshold: float) -> list[dict[str, str]]:
    """One {actual, predicted} row per face: the input DVC's `confusion` plot templates count."""
    y, p = as_arrays(y_true, p_fake)
    pred = (p >= threshold).astype(int)
    return [{"actual": CLASS_NAMES[a], "predicted": CLASS_NAMES[b]} for a, b in zip(y.tolist(), pred.tolist(), strict=True)]


def evaluate_scores(y_test, p_test, y_val=None, p_val=None, n_bins: int = 15) -> dict[str, Any]:
    """Test metrics at the val-chosen threshold and at 0.5, plus calibration (the `metrics/evaluate.json` core)."""
    if y_val is None or p_val is None:
        choice = ThresholdChoice(0.5, notes=["no validation scores: kept 0.5"])
    else:
        choice = choose_threshold(y_val, p_val)
    cal = calibration(y_test, p_test, n_bins)
    return {
        "threshold": asdict(choice),
        "at_threshold": binary_metrics(y_test, p_test, choice.threshold),
        "at_0_5": binary_metrics(y_test, p_test, 0.5),
        "ece": cal["ece"],
        "calibration_bins": cal["n_bins"],
    }


def to_jsonable(obj: Any) -> Any:
    """Replace NaN/inf by None recursively (strict JSON for `dvc metrics`), numpy scalars by Python ones."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def plot_records(y_true, p_fake, threshold: float, n_bins: int = 15, max_points: int = 200) -> dict[str, list[dict]]:
    """The rows of each DVC plot file: roc, pr, calibration (reliability curve) and confusion."""
    return {
        "roc": roc_points(y_true, p_fake, max_points),
        "pr": pr_points(y_true, p_fake, max_points),
        "calibration": calibration(y_true, p_fake, n_bins)["curve"],
        "confusion": confusion_records(y_true, p_fake, threshold),
    }


def numeric_only(obj: Any) -> Any:
    """Keep only numeric leaves of nested dicts (drops notes, lists, strings) for a tidy `dvc metrics diff`."""
    if isinstance(obj, dict):
        kept = {k: numeric_only(v) for k, v in obj.items()}
        return {k: v for k, v in kept.items() if v is not None and v != {}}
    if isinstance(obj, bool) or not isinstance(obj, int | float | np.number):
        return None
    return obj
