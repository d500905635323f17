"""Streaming a split of the shard manifest for training: WebDataset pipeline, DataLoader workers, shuffle buffer.

Local directories and `s3://bucket/prefix` locations (read through fsspec/s3fs; endpoint and credentials from the
usual AWS environment, e.g. AWS_ENDPOINT_URL for a non-AWS store) are supported. Each epoch the trainer says how
many times each manifest row is drawn (once for `shuffle`, the multinomial draw for `source_balanced`), so the
images of an epoch are exactly those the packed path would use; their order comes from shard shuffling plus a
shuffle buffer, seeded per epoch. With a fixed number of workers the stream is reproducible run to run; a
different worker count gives a different (equally random) order, so bit-identical training needs the same count.
"""

from __future__ import annotations

import io
import logging
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from realfake.core.errors import UserError
from realfake.core.shard_manifest import IMAGE_SUFFIXES, join_location, read_index
from realfake.detector.split import SplitAccounting

log = logging.getLogger(__name__)


@dataclass
class ShardInputConfig:
    """`train.shards`: where the shards are and how they are streamed."""

    location: str = "data/shards"  # a directory or s3://bucket/prefix with the shards and index.parquet
    index: str | None = None  # another manifest over the same shards (`realfake resample`); null: <location>/index
    shuffle_buffer: int = 2000  # images held per worker for shuffling (memory: buffer x encoded image size)
    workers: int = 2  # DataLoader worker processes decoding shards (0: in the training process)
    prefetch: int = 4  # chunks each worker keeps ready

    def __post_init__(self) -> None:
        for name, low in (("shuffle_buffer", 1), ("workers", 0), ("prefetch", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise UserError(f"train.shards.{name} must be an integer >= {low}, got {value!r}")


def gopen_fsspec(url: str, mode: str = "rb", bufsize: int = 8192, **_: Any):
    """Open an object-store URL with fsspec (s3fs for s3://), for webdataset's `gopen`."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs.open(path, mode, block_size=max(bufsize, 2**23))  # whole-shard reads in 8 MB ranges


def register_object_stores() -> None:
    """Route s3:// (and the other fsspec schemes webdataset lacks) through fsspec instead of CLI pipes."""
    import importlib

    schemes = importlib.import_module("webdataset.gopen").gopen_schemes  # the module (the package re-exports a function)
    for scheme in ("s3", "gcs", "az", "abfs"):
        schemes[scheme] = gopen_fsspec


def decode_rgb(data: bytes, size: int, suffix: str = "png") -> np.ndarray:
    """A shard member to 3×S×S uint8: a .npy as stored, an image file as `realfake.packing.load_rgb` reads it."""
    if suffix == "npy":
        arr = np.load(io.BytesIO(data), allow_pickle=False)
        if arr.dtype != np.uint8 or arr.shape != (3, size, size):
            raise ValueError(f"expected a uint8 3x{size}x{size} array, got {arr.dtype} {arr.shape}")
        return arr
    with Image.open(io.BytesIO(data)) as img:
        arr = np.asarray(img.convert("RGB"))
    if arr.shape != (size, size, 3):
        raise ValueError(f"expected {size}x{size} RGB, got {arr.shape}")
    return arr.transpose(2, 0, 1)


class ShardStream(torch.utils.data.IterableDataset):
    """Chunks (uint8 images, manifest positions) of the rows drawn this epoch, from the shards that hold them."""

    def __init__(self, urls: list[str], position_of_key: np.ndarray, repeats: np.ndarray, size: int,
                 chunk: int, shuffle_buffer: int, seed: int | None):
        super().__init__()
        self.urls, self.position_of_key, self.repeats = urls, position_of_key, repeats
        self.size, self.chunk, self.shuffle_buffer, self.seed = size, chunk, shuffle_buffer, seed

    def samples(self, src) -> Iterator[tuple[int, tuple[str, bytes]]]:
        """(position, (suffix, member bytes)) for each drawn row, as many times as it was drawn."""
        for sample in src:
            key = int(sample["__key__"])
            pos = self.position_of_key[key] if key < len(self.position_of_key) else -1
            if pos < 0 or self.repeats[pos] == 0:
                continue
            suffix = next((s for s in IMAGE_SUFFIXES if s in sample), None)
            if suffix is None:
                raise ValueError(f"{sample.get('__url__')}: key {sample['__key__']} has no image member")
            for _ in range(int(self.repeats[pos])):
                yield pos, (suffix, sample[suffix])

    def chunks(self, src) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        images, positions = [], []
        for pos, (suffix, data) in src:
            images.append(decode_rgb(data, self.size, suffix))
            positions.append(pos)
            if len(images) == self.chunk:
                yield np.stack(images), np.asarray(positions, dtype=np.int64)
                images, positions = [], []
        if images:
            yield np.stack(images), np.asarray(positions, dtype=np.int64)

    def __iter__(self):
        import webdataset as wds

        register_object_stores()
        stages = [wds.SimpleShardList(self.urls), wds.split_by_worker, wds.tarfile_to_samples(), self.samples]
        if self.seed is not None:
            stages.append(wds.shuffle(self.shuffle_buffer, initial=min(self.shuffle_buffer, 100), seed=self.seed))
        stages.append(self.chunks)
        return iter(wds.DataPipeline(*stages))


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # workers only decode; leave the cores' math threads to the training process


@dataclass
class ShardSplit(SplitAccounting):
    """One split of the shard manifest, with the same accounting as `PackedSplit` (rows sorted by face_id)."""

    name: str
    location: str
    meta: pd.DataFrame
    y: np.ndarray
    size: int
    rejected: dict[str, int]
    cfg: ShardInputConfig
    pin_memory: bool = False

    def report_extra(self) -> dict[str, Any]:
        return {"input": "shards", "shards": int(self.meta["shard"].nunique())}

    def epoch(self, sampler: str, batch_size: int, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The packed input's draw: every row once (shuffle) or the same multinomial draw (source_balanced)."""
        from realfake.detector.packed import source_balanced_rows

        draws = source_balanced_rows(self, gen) if sampler == "source_balanced" else None
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))  # shard order and shuffle buffer of this epoch
        for images, positions in self.train_batches(batch_size, draws, seed):
            yield images, torch.from_numpy(self.y[positions]).float()

    def stream(self, repeats: np.ndarray, chunk: int, seed: int | None) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """(uint8 images, positions) chunks of the rows with repeats > 0; every drawn row arrives or this raises."""
        keys = self.meta["key"].astype(np.int64).to_numpy()
        position_of_key = np.full(int(keys.max()) + 1, -1, dtype=np.int64)
        position_of_key[keys] = np.arange(len(keys))
        shards = sorted(self.meta.loc[repeats > 0, "shard"].unique())
        if seed is not None:
            random.Random(seed).shuffle(shards)
        urls = [join_location(self.location, s) for s in shards]
        dataset = ShardStream(urls, position_of_key, repeats, self.size, chunk, self.cfg.shuffle_buffer, seed)
        workers = min(self.cfg.workers, len(urls))
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=None, num_workers=workers, prefetch_factor=self.cfg.prefetch if workers else None,
            pin_memory=self.pin_memory, worker_init_fn=_one_thread if workers else None)
        seen = np.zeros(len(self), dtype=np.int64)
        try:
            for images, positions in loader:
                np.add.at(seen, positions.numpy(), 1)
                yield images, positions.numpy()
        except (OSError, ValueError, tarfile.TarError, RuntimeError) as exc:
            raise UserError(f"reading the {self.name} shards from {self.location} failed: "
                            f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}") from exc
        short = np.flatnonzero(seen != repeats)
        if len(short):
            example = self.meta.iloc[short[0]]
            raise UserError(f"{len(short)} {self.name} rows of the manifest were not delivered by the shards "
                            f"(e.g. key {example['key']} in {example['shard']}): shards and manifest disagree")

    def train_batches(self, batch_size: int, draws: np.ndarray | None, seed: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """Batches of exactly `batch_size` (the last one shorter; a last batch of one is dropped: BN needs two).

        draws: the positions drawn this epoch (with repeats), or None for every row once.
        """
        repeats = np.bincount(draws, minlength=len(self)) if draws is not None else np.ones(len(self), np.int64)
        images, positions, held = [], [], 0
        for chunk_images, chunk_positions in self.stream(repeats, min(batch_size, 64), seed):
            images.append(chunk_images)
            positions.append(chunk_positions)
            held += len(chunk_positions)
            while held >= batch_size:
                all_images, all_positions = torch.cat(images), np.concatenate(positions)
                yield all_images[:batch_size], all_positions[:batch_size]
                images, positions = [all_images[batch_size:]], [all_positions[batch_size:]]
                held -= batch_size
        if held > 1:
            yield torch.cat(images), np.concatenate(positions)

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """Every row once, unshuffled (chunks come in worker order; positions say where each image belongs)."""
        yield from self.stream(np.ones(len(self), np.int64), batch_size, None)


def load_shard_split(cfg: ShardInputConfig, name: str, size: int | None, pin_memory: bool = False) -> ShardSplit:
    """The manifest rows of split `name` with a usable label, sorted by face_id like the packed arrays."""
    from realfake.detector.packed import label_filter

    table = read_index(cfg.location, cfg.index)
    rows = table[table["split"] == name].sort_values("face_id", kind="stable").reset_index(drop=True)
    sides = set(rows["px"].astype(int).tolist())
    if size is not None and sides - {size}:
        raise UserError(f"the {name} shards hold {sorted(sides)} px images but resize.size is {size}: "
                        "re-run the sample stage")
    keep, reasons = label_filter(rows)
    rows = rows[keep].reset_index(drop=True)
    size = size if size is not None else (sides.pop() if sides else 0)
    return ShardSplit(name, cfg.location, rows, rows["y"].to_numpy().astype(np.int64), size, reasons, cfg, pin_memory)
