"""Train and eval batches of uint8 images from either input (`train.input`: packed arrays or WebDataset shards)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from realfake.detector.packed import (
    PackedSplit,
    iterate_batches,
    load_split,
    read_batch,
    source_balanced_rows,
)
from realfake.detector.shard_stream import ShardSplit, load_shard_split
from realfake.detector.train_config import TrainConfig


def epoch_batches(split: PackedSplit, cfg: TrainConfig, gen: torch.Generator) -> list[np.ndarray]:
    """The train batches of one epoch for `train.sampler` (batches of one are dropped: BN needs two)."""
    if cfg.sampler == "source_balanced":
        order = source_balanced_rows(split, gen)
        batches = [np.sort(order[i : i + cfg.batch_size]) for i in range(0, len(order), cfg.batch_size)]
    else:
        batches = iterate_batches(len(split), cfg.batch_size, gen)
    return [b for b in batches if len(b) > 1]


Split = PackedSplit | ShardSplit


def train_batches(split: Split, cfg: TrainConfig, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (uint8 images, float labels) batches for `train.sampler`, from either input.

    Both inputs draw the same rows: every row once (shuffle), or the same multinomial draw (source_balanced).
    """
    if isinstance(split, PackedSplit):
        for batch in epoch_batches(split, cfg, gen):
            yield read_batch(split, batch)
        return
    draws = source_balanced_rows(split, gen) if cfg.sampler == "source_balanced" else None
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))  # shard order and shuffle buffer of this epoch
    for images, positions in split.train_batches(cfg.batch_size, draws, seed):
        yield images, torch.from_numpy(split.y[positions]).float()


def eval_batches(split: Split, batch_size: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Every row once: (uint8 images, their positions in the split)."""
    if isinstance(split, PackedSplit):
        for batch in iterate_batches(len(split), batch_size):
            yield read_batch(split, batch)[0], batch
    else:
        yield from split.eval_batches(batch_size)


def open_split(cfg: TrainConfig, packed_dir: str | os.PathLike, name: str, size: int | None,
               device: torch.device | None = None) -> Split:
    """Split `name` from `train.input`: the packed arrays or the shard manifest."""
    if cfg.input == "shards":
        return load_shard_split(cfg.shards, name, size, pin_memory=device is not None and device.type == "cuda")
    return load_split(packed_dir, name, size)
