"""Binary losses on logits: BCE and focal loss, with optional per-class weights."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("bce", "focal")


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float = 2.0,
    alpha: float | None = None,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Binary focal loss (Lin et al. 2017) on logits; gamma=0 and alpha=None give exactly BCE.

    alpha weights the positive class (fake) and 1 - alpha the negative; `weight` is a per-sample weight.
    """
    targets = targets.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if gamma:
        p_true = torch.exp(-bce)  # probability given to the true class, from the stable BCE
        bce = (1.0 - p_true).pow(gamma) * bce
    if alpha is not None:
        bce = (alpha * targets + (1.0 - alpha) * (1.0 - targets)) * bce
    if weight is not None:
        bce = weight * bce
    if reduction == "none":
        return bce
    if reduction == "sum":
        return bce.sum()
    # weighted mean: normalise by the weights so the loss scale does not depend on them
    return bce.sum() / weight.sum() if weight is not None else bce.mean()


def class_weights(counts: Sequence[int], imbalance_ratio: float = 1.2) -> list[float] | None:
    """'Balanced' class weights n / (k * n_c) when max/min count exceeds `imbalance_ratio`, else None.

    Classes with no examples get weight 0 (they cannot occur in the data anyway).
    """
    counts = [int(c) for c in counts]
    present = [c for c in counts if c > 0]
    if len(present) < 2 or max(present) / min(present) <= imbalance_ratio:
        return None
    total, k = sum(present), len(present)
    return [total / (k * c) if c else 0.0 for c in counts]


class BinaryLoss(nn.Module):
    """`bce` or `focal` on logits, with optional class weights indexed by the 0/1 target."""

    def __init__(
        self,
        kind: str = "bce",
        gamma: float = 2.0,
        alpha: float | None = None,
        weights: Sequence[float] | None = None,
    ):
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
        self.kind, self.gamma, self.alpha = kind, float(gamma), alpha
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32) if weights else None)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        sample_weight = self.weights[targets.long()] if self.weights is not None else None
        gamma = self.gamma if self.kind == "focal" else 0.0
        alpha = self.alpha if self.kind == "focal" else None
        return focal_loss(logits, targets, gamma, alpha, sample_weight)
