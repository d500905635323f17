"""The packed splits (data/packed) as the detector reads them: usable rows, labels, batches."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from realfake.core.errors import UserError
from realfake.core.view_record import read_view_record
from realfake.detector.split import SplitAccounting


@dataclass
class PackedSplit(SplitAccounting):
    """One split: the memory-mapped image array, the rows kept, their labels, and what was rejected."""

    name: str
    images: np.ndarray  # (N_file, 3, S, S) uint8, memory-mapped
    rows: np.ndarray  # indices into `images` of the rows used
    y: np.ndarray  # int64 0/1 labels of the rows used
    meta: pd.DataFrame  # parquet rows of the rows used
    rejected: dict[str, int]

    @property
    def size(self) -> int:
        return int(self.images.shape[2])

    def epoch(self, sampler: str, batch_size: int, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in epoch_batches(self, sampler, batch_size, gen):
            yield read_batch(self, batch)

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        for batch in iterate_batches(len(self), batch_size):
            yield read_batch(self, batch)[0], batch


def load_split(packed_dir: str | os.PathLike, name: str, size: int | None = None) -> PackedSplit:
    """Open `<name>.npy` (memory-mapped) and `<name>.parquet`; keep rows with a valid 0/1 label."""
    npy, parquet = Path(packed_dir) / f"{name}.npy", Path(packed_dir) / f"{name}.parquet"
    for path in (npy, parquet):
        if not path.exists():
            raise UserError(f"{path} not found: run the sample stage first (dvc repro sample)")
    try:
        images = np.load(npy, mmap_mode="r")
    except ValueError as exc:
        raise UserError(f"{npy} is not a .npy array: {exc}") from exc
    expected = f"uint8 (N, 3, {size or 'S'}, {size or 'S'})"
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise UserError(f"{npy} must hold {expected}, found {images.dtype} {images.shape}")
    if size is not None and images.shape[2] != size:
        raise UserError(f"{npy} holds {images.shape[2]} px images but resize.size is {size}: re-run sample")
    try:
        meta = pd.read_parquet(parquet)
    except Exception as exc:  # pyarrow raises several types for a truncated or foreign file
        raise UserError(f"{parquet} is not a readable parquet file: {exc}") from exc
    if len(meta) != len(images):
        raise UserError(f"{parquet} has {len(meta)} rows but {npy} has {len(images)} images")
    if "y" not in meta.columns:
        raise UserError(f"{parquet} has no `y` column")
    keep, reasons = label_filter(meta)
    rows = np.flatnonzero(keep)
    return PackedSplit(
        name, images, rows, meta["y"].to_numpy()[rows].astype(np.int64), meta.iloc[rows].reset_index(drop=True), reasons
    )


def label_filter(meta: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
    """Boolean mask of rows with a usable label, and the count of rejected rows by reason."""
    y = pd.to_numeric(meta["y"], errors="coerce")
    bad_y = ~y.isin([0, 1])
    keep, reasons = ~bad_y.to_numpy(), Counter({"y not 0/1": int(bad_y.sum())})
    if "label" in meta.columns:  # a `label` that contradicts `y` means the row is corrupt: trust neither
        mismatch = (~bad_y) & (meta["label"].map({"real": 0, "fake": 1}) != y)
        reasons["label disagrees with y"] = int(mismatch.sum())
        keep &= ~mismatch.to_numpy()
    return keep, {k: v for k, v in reasons.items() if v}


def iterate_batches(n: int, batch_size: int, gen: torch.Generator | None = None) -> list[np.ndarray]:
    """Index batches over n rows: shuffled when `gen` is given; sorted inside a batch for memmap locality."""
    order = torch.randperm(n, generator=gen).numpy() if gen is not None else np.arange(n)
    return [np.sort(order[i : i + batch_size]) for i in range(0, n, batch_size)]


def epoch_batches(split: PackedSplit, sampler: str, batch_size: int, gen: torch.Generator) -> list[np.ndarray]:
    """The train batches of one epoch for `train.sampler` (batches of one are dropped: BN needs two)."""
    if sampler == "source_balanced":
        order = source_balanced_rows(split, gen)
        batches = [np.sort(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
    else:
        batches = iterate_batches(len(split), batch_size, gen)
    return [b for b in batches if len(b) > 1]


def source_balanced_rows(split: SplitAccounting, gen: torch.Generator) -> np.ndarray:
    """len(split) positions drawn with replacement: each class half the draws, each source equal within its class."""
    sources, weights = split.meta["source"].astype(str).to_numpy(), np.zeros(len(split))
    for label in (0, 1):
        in_class = split.y == label
        names = np.unique(sources[in_class])
        for name in names:
            mask = in_class & (sources == name)
            weights[mask] = 1.0 / (2 * len(names) * mask.sum())
    return torch.multinomial(torch.from_numpy(weights), len(split), replacement=True, generator=gen).numpy()


def read_batch(split: PackedSplit, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and float labels for positions `batch` of the split (reads only those rows)."""
    images = torch.from_numpy(np.ascontiguousarray(split.images[split.rows[batch]]))
    return images, torch.from_numpy(split.y[batch]).float()


def packed_view(packed_dir: str | os.PathLike, aligned_size: int | None) -> dict[str, Any]:
    """The view the packed arrays hold (`sample.view`, its size and params: realfake.crops.views.view_record).

    Arrays packed without a record (older runs, tests that pack their own) hold the aligned view at `aligned_size`
    (resize.size; None: whatever size they hold).
    """
    return read_view_record(packed_dir) or {"name": "aligned", "size": aligned_size}


def packed_image_size(packed_dir: str | os.PathLike, aligned_size: int | None) -> int | None:
    """Side of the packed images: the view's (packed_view), resize.size for arrays packed without a record."""
    return packed_view(packed_dir, aligned_size)["size"]
