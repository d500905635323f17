"""Binary losses on logits: BCE and focal loss, with optional per-class weights and label smoothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

Loss = Literal["bce", "focal"]  # the type of params.yaml `train.loss`
LOSSES = get_args(Loss)


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
        kind: Loss = "bce",
        gamma: float = 2.0,
        alpha: float | None = None,
        weights: Sequence[float] | None = None,
        smoothing: float = 0.0,
    ):
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
        self.kind, self.gamma, self.alpha, self.smoothing = kind, float(gamma), alpha, float(smoothing)
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32) if weights else None)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        sample_weight = self.weights[targets.long()] if self.weights is not None else None
        gamma = self.gamma if self.kind == "focal" else 0.0
        alpha = self.alpha if self.kind == "focal" else None
        if logits.ndim == 2:  # patch logits (model.head: patch, patch_head.py): the image's label on every patch
            patches = logits.shape[1]
            logits, targets = logits.flatten(), targets.repeat_interleave(patches)
            sample_weight = sample_weight.repeat_interleave(patches) if sample_weight is not None else None
        return focal_loss(logits, smooth_targets(targets, self.smoothing), gamma, alpha, sample_weight)


def smooth_targets(targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label smoothing (Szegedy et al. 2016; SAFE trains with 0.1): 0/1 targets become eps/2 and 1 - eps/2.

    As torch's CrossEntropyLoss(label_smoothing=eps) over the two classes. 0 returns the targets as they are.
    """
    if not smoothing:
        return targets
    return targets * (1.0 - smoothing) + 0.5 * smoothing
