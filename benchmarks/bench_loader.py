"""Images/s delivered to a training loop: packed uint8 arrays vs an ImageFolder DataLoader decoding PNG files.

    python benchmarks/bench_loader.py [--n 2000] [--size 128] [--epochs 2]

Both paths deliver the same float batches (B×3×S×S in [0,1]) in shuffled order; the decode path uses
torchvision's ImageFolder + DataLoader with 2 workers (these machines have 2 cores). Images come from the mirror
(faces centre-cropped and resized, written as PNG like the resize stage), or are synthetic without it.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from realfake.core.params import find_mirror
from realfake.sample.packing import open_packed, pack_split


def make_images(root: Path, n: int, size: int) -> pd.DataFrame:
    """n PNGs in ImageFolder layout (root/<label>/<i>.png) from mirror faces, or synthetic noise."""
    mirror = find_mirror()
    sources = [("real", "lfw.zip"), ("fake", "tpdne.zip")]
    rows = []
    rng = np.random.default_rng(0)
    for k in range(n):
        label, archive = sources[k % 2]
        rows.append({"face_id": f"{k:06d}", "label": label, "source": archive, "group": str(k), "stratum": "all",
                     "path": str(root / label / f"{k:06d}.png")})
    images = _mirror_images(mirror, sources, n) if mirror else None
    for k, row in enumerate(rows):
        Path(row["path"]).parent.mkdir(parents=True, exist_ok=True)
        img = images[k] if images else Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        img.resize((size, size), Image.LANCZOS).save(row["path"])
    return pd.DataFrame(rows)


def _mirror_images(mirror: Path, sources: list[tuple[str, str]], n: int) -> list[Image.Image]:
    """Centre squares of real mirror photos, alternating between the two archives."""
    per = {}
    for _, archive in sources:
        with zipfile.ZipFile(mirror / archive) as zf:
            names = sorted(x for x in zf.namelist() if x.endswith(".jpg"))[: n // 2 + 1]
            per[archive] = [_centre(Image.open(zf.open(x)).convert("RGB")) for x in names]
    return [per[sources[k % 2][1]][(k // 2) % len(per[sources[k % 2][1]])] for k in range(n)]


def _centre(img: Image.Image) -> Image.Image:
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side))


def time_imagefolder(root: Path, epochs: int, batch: int) -> float:
    """Images/s from ImageFolder + DataLoader(num_workers=2) decoding every file every epoch."""
    from torchvision import datasets, transforms

    ds = datasets.ImageFolder(str(root), transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=2)
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        for x, _ in loader:
            seen += x.shape[0]
    return seen / (time.perf_counter() - start)


def time_packed(npy: Path, epochs: int, batch: int) -> float:
    """Images/s from the memory-mapped packed array: shuffled index batches, uint8 → float in the main process."""
    arr = open_packed(npy)
    rng = np.random.default_rng(0)
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(arr))
        for i in range(0, len(order), batch):
            idx = np.sort(order[i:i + batch])
            x = torch.from_numpy(np.ascontiguousarray(arr[idx])).float().div_(255)
            seen += x.shape[0]
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", default="benchmarks/results/loader.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        rows = make_images(root, args.n, args.size)
        pack_split(rows, args.size, Path(tmp) / "train.npy", Path(tmp) / "train.parquet")
        time_packed(Path(tmp) / "train.npy", 1, args.batch)  # warm the page cache for both paths alike
        decode = time_imagefolder(root, args.epochs, args.batch)
        packed = time_packed(Path(tmp) / "train.npy", args.epochs, args.batch)
    result = {"images": args.n, "size": args.size, "epochs": args.epochs, "batch": args.batch,
              "imagefolder_images_per_s": round(decode, 1), "packed_images_per_s": round(packed, 1),
              "ratio": round(packed / decode, 1), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'loader':<28}{'images/s':>12}")
    print(f"{'ImageFolder + DataLoader(2)':<28}{decode:>12.0f}")
    print(f"{'packed uint8 memmap':<28}{packed:>12.0f}")
    print(f"ratio: {packed / decode:.1f}x")


if __name__ == "__main__":
    main()
