"""Whether a trained detector is fit to judge photos: decided at training time, stored in the checkpoint, shown by
`realfake predict` and the model card.

A model at chance still prints confident-looking verdicts; this is the guard. The rule is deliberately simple:
enough validation faces to measure it, a validation AUC above a floor, and not the embedded sample (a demo of
the pipeline on ~200 faces, not a detector). Validation metrics chose the checkpoint, so they are optimistic:
passing the rule is necessary, not sufficient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from realfake.core.errors import UserError

SAMPLE_PROFILE = "sample"


@dataclass(frozen=True)
class FitnessConfig:
    """The fitness rule (params.yaml `train.fitness`)."""

    min_val_auc: float = 0.8  # below this the verdicts are too unreliable to print without a warning
    min_val_faces: int = 100  # AUC's standard error on fewer faces is ~0.05 or more: the AUC cannot vouch

    def __post_init__(self) -> None:
        if not isinstance(self.min_val_auc, int | float) or not 0 <= self.min_val_auc <= 1:
            raise UserError(f"train.fitness.min_val_auc must be a number in 0..1, got {self.min_val_auc!r}")
        if not isinstance(self.min_val_faces, int) or isinstance(self.min_val_faces, bool) or self.min_val_faces < 0:
            raise UserError(f"train.fitness.min_val_faces must be an integer >= 0, got {self.min_val_faces!r}")


def assess(val_auc: float | None, val_faces: int | None, profile: str | None, rule: FitnessConfig) -> dict[str, Any]:
    """The fitness record stored in the checkpoint: `fit` and, when not fit, every reason as a short phrase."""
    reasons = []
    if profile == SAMPLE_PROFILE:
        reasons.append("trained on the embedded sample (a demo of the pipeline, not a detector)")
    if val_auc is None:
        reasons.append("no validation AUC")
    elif val_auc < rule.min_val_auc:
        reasons.append(f"validation AUC {val_auc:.3f} < {rule.min_val_auc}")
    if val_faces is not None and val_faces < rule.min_val_faces:
        reasons.append(f"{val_faces} validation faces < {rule.min_val_faces}, too few to measure it")
    return {"fit": not reasons, "reasons": reasons, "val_auc": val_auc, "val_faces": val_faces, "profile": profile,
            "min_val_auc": rule.min_val_auc, "min_val_faces": rule.min_val_faces}


def fitness_of(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's fitness record; checkpoints written before it existed are judged by their val AUC alone."""
    info = checkpoint.get("info") or {}
    if isinstance(info.get("fitness"), dict):
        return info["fitness"]
    return assess(info.get("val_auc"), None, None, FitnessConfig())


def warning_line(fitness: dict[str, Any]) -> str | None:
    """One line for the terminal and the results when the model is not fit to judge (None when it is)."""
    if fitness.get("fit"):
        return None
    return "model not fit to judge: " + "; ".join(fitness.get("reasons") or ["no fitness record"])
