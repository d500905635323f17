"""Calibrated p(fake) and the declared operating point: `real`, `fake` or `uncertain` for every face.

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017): one scalar T fitted on
the validation logits by maximum likelihood; p = sigmoid(logit / T) keeps the ranking (every AUC) and makes
p(fake) mean what it says on faces like the validation ones. Platt scaling (Platt, 1999) adds a bias b,
p = sigmoid(logit / T + b): it also corrects a model whose scores lean to one class as a whole, which a temperature
cannot (a model trained on pseudo-fakes that validation does not hold, or on another class balance).

The operating point is then chosen on the calibrated validation scores for a declared false-alarm rate: `fake`
from `t_fake`, the (1 - target_fpr) quantile of the validation reals' scores; `real` below `t_real`, the target_fnr
quantile of the validation fakes' scores; between them the model is not sure and says `uncertain` (no band when
t_real >= t_fake). Both thresholds, T and b travel in the checkpoint, so `realfake predict`, `evaluate` and `serve`
apply the same rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit

from realfake.core.errors import UserError

DECISIONS = ("real", "uncertain", "fake")


@dataclass
class VerdictConfig:
    """params.yaml `train.verdict`: how p(fake) is calibrated and where the decisions fall."""

    # platt: lower test ECE than temperature in 42 of 71 default-recipe mirror runs, and 0.04 against 0.16 with
    # pseudo-fakes (results/mirror/calibration)
    calibration: Literal["temperature", "platt", "none"] = "platt"
    target_fpr: float = 0.05  # share of validation reals called fake at the operating point
    # share of validation fakes allowed below t_real (called real); the scores between are `uncertain`;
    # null: no band, t_real = t_fake
    target_fnr: float | None = 0.10
    ece_bins: int = 15

    def __post_init__(self) -> None:
        if not 0.0 < self.target_fpr < 1.0:
            raise UserError(f"train.verdict.target_fpr must lie strictly between 0 and 1, got {self.target_fpr!r}")
        if self.target_fnr is not None and not 0.0 < self.target_fnr < 1.0:
            raise UserError(f"train.verdict.target_fnr must lie strictly between 0 and 1 (or be null), "
                            f"got {self.target_fnr!r}")
        if self.ece_bins < 2:
            raise UserError(f"train.verdict.ece_bins must be >= 2, got {self.ece_bins!r}")


@dataclass
class OperatingPoint:
    """What the checkpoint stores: the calibration (T, b) and the two thresholds on the calibrated p(fake)."""

    temperature: float
    t_real: float
    t_fake: float
    target_fpr: float
    target_fnr: float | None
    bias: float = 0.0  # Platt's b; 0 for temperature scaling and for checkpoints from before it

    def decide(self, p_fake: np.ndarray) -> np.ndarray:
        """`real` / `uncertain` / `fake` for calibrated scores."""
        p = np.asarray(p_fake, dtype=np.float64)
        return np.where(p >= self.t_fake, "fake", np.where(p < self.t_real, "real", "uncertain")).astype(object)

    def record(self) -> dict[str, Any]:
        return asdict(self)


def calibrate(logits: np.ndarray, temperature: float, bias: float = 0.0) -> np.ndarray:
    """p(fake) = sigmoid(logit / T + b) as float64; float32 math, as the model's own, so T = 1, b = 0 gives the
    scores that checkpoints from before calibration gave, bit for bit."""
    z = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))
    if temperature != 1.0:
        z = z / float(temperature)
    if bias != 0.0:
        z = z + float(bias)
    return torch.sigmoid(z).numpy().astype(np.float64)


def fit_temperature(y: np.ndarray, logits: np.ndarray) -> float:
    """The T > 0 that minimises the binary cross-entropy of sigmoid(logits / T) on (y, logits)."""
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        return 1.0

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, s) - y * s))  # -log sigmoid(s) for y=1, -log(1-sigmoid) for y=0

    return float(np.exp(minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded").x))


def fit_platt(y: np.ndarray, logits: np.ndarray) -> tuple[float, float]:
    """The (T > 0, b) that minimise the binary cross-entropy of sigmoid(logits / T + b) on (y, logits)."""
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        return 1.0, 0.0

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = np.exp(-theta[0]), theta[1]
        s = a * z + b
        gap = expit(s) - y  # d nll / d s
        return float(np.mean(np.logaddexp(0.0, s) - y * s)), np.array([np.mean(gap * -a * z), np.mean(gap)])

    # log T in [-4, 4] as fit_temperature; |b| <= 20 keeps sigmoid away from exact 0 and 1
    fit = minimize(nll, np.zeros(2), jac=True, method="L-BFGS-B", bounds=[(-4.0, 4.0), (-20.0, 20.0)])
    return float(np.exp(fit.x[0])), float(fit.x[1])


def fit_calibration(y: np.ndarray, logits: np.ndarray, method: str) -> tuple[float, float]:
    """(T, b) for `method`: temperature (b = 0), platt, or none (1, 0)."""
    if method == "platt":
        return fit_platt(y, logits)
    return (fit_temperature(y, logits) if method == "temperature" else 1.0), 0.0


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 15) -> float:
    """ECE over equal-width bins of p: the mean |fraction fake - mean p| weighted by the bin's share."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if y.size == 0:
        return float("nan")
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, y, bins) - np.bincount(which, p, bins))
    return float(gap.sum() / y.size) if count.any() else float("nan")


def choose_operating_point(y: np.ndarray, logits: np.ndarray, cfg: VerdictConfig) -> tuple[OperatingPoint, dict]:
    """Fit the calibration and the thresholds on validation; returns the point and what it measured there."""
    y = np.asarray(y).astype(int)
    logits = np.asarray(logits, dtype=np.float64)
    temperature, bias = fit_calibration(y, logits, cfg.calibration)
    p = calibrate(logits, temperature, bias)
    real, fake = np.sort(p[y == 0]), np.sort(p[y == 1])
    if not real.size or not fake.size:
        point = OperatingPoint(temperature, 0.5, 0.5, cfg.target_fpr, cfg.target_fnr, bias)
        return point, {"notes": ["validation lacks a class: thresholds 0.5"]}
    t_fake = _threshold_above(real, cfg.target_fpr)
    t_real = t_fake if cfg.target_fnr is None else min(_threshold_below(fake, cfg.target_fnr), t_fake)
    point = OperatingPoint(temperature, t_real, t_fake, cfg.target_fpr, cfg.target_fnr, bias)
    decided = point.decide(p)
    report = {
        "calibration": cfg.calibration,
        "temperature": temperature,
        "bias": bias,
        "val_ece_before": expected_calibration_error(y, calibrate(logits, 1.0), cfg.ece_bins),
        "val_ece_after": expected_calibration_error(y, p, cfg.ece_bins),
        **rates(y, decided),
        "notes": [],
    }
    return point, report


def _threshold_above(real: np.ndarray, target_fpr: float) -> float:
    """The smallest threshold t (a midpoint between sorted scores) with share(real >= t) <= target_fpr."""
    allowed = int(np.floor(target_fpr * real.size))  # reals that may score at or above t
    k = real.size - allowed  # the k-th smallest real must stay below t
    if k >= real.size:
        return float(np.nextafter(real[-1], np.inf))
    return float((real[k - 1] + real[k]) / 2) if real[k] > real[k - 1] else float(np.nextafter(real[k - 1], np.inf))


def _threshold_below(fake: np.ndarray, target_fnr: float) -> float:
    """The largest threshold t with share(fake < t) <= target_fnr."""
    allowed = int(np.floor(target_fnr * fake.size))  # fakes that may score below t
    if allowed == 0:
        return float(fake[0])
    return float((fake[allowed - 1] + fake[allowed]) / 2) if fake[allowed] > fake[allowed - 1] else float(fake[allowed])


def rates(y: np.ndarray, decided: np.ndarray) -> dict[str, float | None]:
    """Shares at the operating point: reals called real / fake / uncertain, fakes caught (recall) / uncertain."""
    y, decided = np.asarray(y), np.asarray(decided)
    out: dict[str, float | None] = {}
    for label, name in ((0, "real"), (1, "fake")):
        part = decided[y == label]
        for d in DECISIONS:
            out[f"{name}_called_{d}"] = float(np.mean(part == d)) if part.size else None
    out["fpr"] = out["real_called_fake"]
    out["recall"] = out["fake_called_fake"]
    out["uncertain"] = float(np.mean(decided == "uncertain")) if decided.size else None
    return out


def operating_point_of(checkpoint: dict[str, Any]) -> OperatingPoint | None:
    """The checkpoint's operating point (None for checkpoints trained before it existed), checked."""
    record = checkpoint.get("info", {}).get("operating_point")
    if record is None:
        return None
    try:
        point = OperatingPoint(**{k: record[k] for k in ("temperature", "t_real", "t_fake", "target_fpr",
                                                          "target_fnr")})
        values = [float(point.temperature), float(point.t_real), float(point.t_fake)]
        bias = float(record.get("bias", 0.0))  # checkpoints from before Platt scaling have none
    except (KeyError, TypeError, ValueError):
        raise UserError("the checkpoint's operating point is damaged (temperature, t_real, t_fake, bias expected "
                        "as numbers): retrain the model") from None
    if not (values[0] > 0 and 0.0 <= values[1] <= values[2] <= 1.0 + 1e-12 and np.isfinite(bias)):
        raise UserError(f"the checkpoint's operating point is out of range (temperature {values[0]}, t_real "
                        f"{values[1]}, t_fake {values[2]}, bias {bias}): retrain the model")
    return OperatingPoint(*values, point.target_fpr, point.target_fnr, bias)
