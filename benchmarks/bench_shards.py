"""Images/s delivered to a training loop: WebDataset shards streamed vs packed memmap vs ImageFolder, at 64 and 128 px.

    python benchmarks/bench_shards.py [--n 2000] [--sizes 64 128] [--epochs 2] [--workers 2]

All three deliver shuffled float batches (B×3×S×S in [0,1]) of the same images (mirror faces, or synthetic without
the mirror), measured one after the other in one run on this machine, so the ratios compare like with like:
- ImageFolder: torchvision ImageFolder + DataLoader(`--workers`) decoding one PNG file per image per epoch;
- packed: the uint8 memmap the trainer reads by default (`train.input: packed`), no decoding, main process only;
- shards: `train.input: shards` (realfake.detector.shard_stream): tar shards read sequentially by DataLoader(`--workers`)
  workers, a 1000-image shuffle buffer, re-batched in the training process; `sample.shards.encoding: file` (the PNG,
  decoded in the workers) and `npy` (uint8 arrays, nothing to decode).
Shards are local files here; on S3 each shard is one GET of a ~100 MB object (docs/scale.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_loader import make_images, time_imagefolder, time_packed

from realfake.detector.shard_stream import ShardInputConfig, load_shard_split
from realfake.sample.config import ShardsConfig
from realfake.sample.packing import pack_split
from realfake.sample.shards import write_shards


def time_shards(location: Path, size: int, epochs: int, batch: int, workers: int) -> float:
    """Images/s streaming every train row once per epoch from the shards, as the trainer does."""
    split = load_shard_split(ShardInputConfig(location=str(location), shuffle_buffer=1000, workers=workers),
                             "train", size)
    seen, start = 0, time.perf_counter()
    for epoch in range(epochs):
        for images, _ in split.train_batches(batch, None, seed=epoch):
            x = images.float().div_(255)
            seen += x.shape[0]
    return seen / (time.perf_counter() - start)


def bench_size(n: int, size: int, epochs: int, batch: int, workers: int) -> dict:
    """One size: prepare PNGs, the packed array and the shards from the same images, then time the three."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        rows = make_images(root, n, size)
        pack_split(rows, size, Path(tmp) / "train.npy", Path(tmp) / "train.parquet")
        shard_rows = rows.assign(split="train", holdout_for=None)
        reports = {enc: write_shards(shard_rows, Path(tmp) / enc, ShardsConfig(True, 500, 2**28, enc), 0, size)
                   for enc in ("file", "npy")}
        time_packed(Path(tmp) / "train.npy", 1, batch)  # warm the page cache for every path alike
        for enc in reports:
            time_shards(Path(tmp) / enc, size, 1, batch, workers)
        rates = {"imagefolder": time_imagefolder(root, epochs, batch),
                 "packed": time_packed(Path(tmp) / "train.npy", epochs, batch),
                 "shards_png": time_shards(Path(tmp) / "file", size, epochs, batch, workers),
                 "shards_npy": time_shards(Path(tmp) / "npy", size, epochs, batch, workers)}
    return {"size": size, "images": n, "shards": reports["file"]["shards"],
            "shard_mb": {"png": round(reports["file"]["bytes"] / 1e6, 2), "npy": round(reports["npy"]["bytes"] / 1e6, 2)},
            "images_per_s": {k: round(v, 1) for k, v in rates.items()},
            "vs_imagefolder": {k: round(v / rates["imagefolder"], 2) for k, v in rates.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/shards.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    load_before = os.getloadavg()
    rows = [bench_size(args.n, s, args.epochs, args.batch, args.workers) for s in args.sizes]
    result = {"epochs": args.epochs, "batch": args.batch, "workers": args.workers, "rows": rows,
              "load_avg_at_start": [round(x, 2) for x in load_before],
              "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
              "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, numpy {np.__version__}",
              "note": "2 shared CPU cores; other jobs may run at the same time, so compare the ratios of one run"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("images/s (x ImageFolder in the same run)")
    print(f"{'px':>4}" + "".join(f"{k:>22}" for k in rows[0]["images_per_s"]))
    for r in rows:
        print(f"{r['size']:>4}" + "".join(f"{v:>14.0f} ({r['vs_imagefolder'][k]:>4.2f}x)"
                                          for k, v in r["images_per_s"].items()))


if __name__ == "__main__":
    main()
