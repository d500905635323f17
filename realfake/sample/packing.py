"""Pack a split's images into one memory-mappable uint8 array (N×3×S×S) plus a parquet of labels and ids."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image
from tqdm import tqdm

from realfake.core.atomic import atomic_path, write_parquet

log = logging.getLogger(__name__)

PACKED_SCHEMA = pa.schema([
    ("face_id", pa.string()),
    ("label", pa.string()),
    ("y", pa.int8()),
    ("source", pa.string()),
    ("group", pa.string()),
    ("stratum", pa.string()),
    ("path", pa.string()),
    ("holdout_for", pa.string()),  # holdout split only: the held-out source a face counts for; null elsewhere
])


def load_rgb(path: Path, size: int) -> np.ndarray:
    """A resized face as a 3×S×S uint8 array; the resize stage already made it S×S RGB."""
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"))
    if arr.shape != (size, size, 3):
        raise ValueError(f"{path}: expected {size}x{size} RGB, got {arr.shape}")
    return arr.transpose(2, 0, 1)


def pack_split(rows: pd.DataFrame, size: int, npy_path: Path, table_path: Path, root: Path = Path(".")) -> None:
    """Write rows' images (column `path`, relative to `root`) in row order to `npy_path`, and the table beside it."""
    with atomic_path(npy_path, suffix=".npy") as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(rows), 3, size, size))
        for i, path in enumerate(tqdm(rows["path"], desc=f"pack {npy_path.stem}", unit="img", leave=False)):
            arr[i] = load_rgb(root / path, size)
        arr.flush()
        del arr
    owner = rows["holdout_for"] if "holdout_for" in rows else pd.Series(pd.NA, index=rows.index)
    table = rows.assign(y=(rows["label"] == "fake").astype("int8"), holdout_for=owner.astype("string"))
    table = table[PACKED_SCHEMA.names]
    write_parquet(table, table_path, schema=PACKED_SCHEMA)


def open_packed(npy_path: Path) -> np.ndarray:
    """Memory-map a packed split (read-only)."""
    return np.load(npy_path, mmap_mode="r")
