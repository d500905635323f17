"""The ensemble network: K members of one architecture whose logits are averaged (training: ensemble.py)."""

from __future__ import annotations

import torch
from torch import nn


class Ensemble(nn.Module):
    """K member networks; the logit is the mean of theirs. `stages` are the first member's (for Grad-CAM)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    @property
    def stages(self) -> nn.Module:
        return self.members[0].stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)
