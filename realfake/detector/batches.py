"""Train and eval batches of uint8 images from either input (`train.input`: packed arrays or WebDataset shards)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from realfake.detector.packed import load_split
from realfake.detector.shard_stream import load_shard_split
from realfake.detector.split import Split
from realfake.detector.train_config import TrainConfig

__all__ = ["Split", "eval_batches", "open_split", "train_batches"]


def train_batches(split: Split, cfg: TrainConfig, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (uint8 images, float labels) batches for `train.sampler`, from either input.

    Both inputs draw the same rows: every row once (shuffle), or the same multinomial draw (source_balanced).
    """
    return split.epoch(cfg.sampler, cfg.batch_size, gen)


def eval_batches(split: Split, batch_size: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Every row once: (uint8 images, their positions in the split)."""
    return split.eval_batches(batch_size)


def open_split(cfg: TrainConfig, packed_dir: str | os.PathLike, name: str, size: int | None,
               device: torch.device | None = None) -> Split:
    """Split `name` from `train.input`: the packed arrays or the shard manifest."""
    if cfg.input == "shards":
        return load_shard_split(cfg.shards, name, size, pin_memory=device is not None and device.type == "cuda")
    return load_split(packed_dir, name, size)
