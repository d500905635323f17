"""What training and scoring read from one split, whichever input holds it (`train.input`: packed or shards).

`Split` is the protocol both `PackedSplit` (realfake.detector.packed) and `ShardSplit`
(realfake.detector.shard_stream) meet; `SplitAccounting` gives both the same length, class counts and row report,
so callers never ask which one they hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch


class Split(Protocol):
    """One split of labelled faces: its rows (`meta`, labels `y`), what was rejected, and its batches."""

    name: str
    meta: pd.DataFrame
    y: np.ndarray
    rejected: dict[str, int]

    @property
    def size(self) -> int: ...  # side of the square uint8 images, px

    def __len__(self) -> int: ...

    def counts(self) -> list[int]: ...

    def report(self) -> dict[str, Any]: ...

    def epoch(self, sampler: str, batch_size: int, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One training epoch of (uint8 images, float labels) for `train.sampler`, drawn with `gen`."""
        ...

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """Every row once: (uint8 images, their positions in the split)."""
        ...


class SplitAccounting:
    """Length, [n_real, n_fake] and the row report (rows_in = kept + sum(rejected)) from `y` and `rejected`."""

    y: np.ndarray
    rejected: dict[str, int]

    def __len__(self) -> int:
        return len(self.y)

    def counts(self) -> list[int]:
        """[n_real, n_fake]."""
        return np.bincount(self.y, minlength=2).tolist()

    def report_extra(self) -> dict[str, Any]:
        """Input-specific entries appended to the report."""
        return {}

    def report(self) -> dict[str, Any]:
        """Row accounting for metrics: rows_in = kept + sum(rejected), then the class counts."""
        n_real, n_fake = self.counts()
        return {"rows_in": len(self) + sum(self.rejected.values()), "kept": len(self), "rejected": dict(self.rejected),
                "real": n_real, "fake": n_fake, **self.report_extra()}
