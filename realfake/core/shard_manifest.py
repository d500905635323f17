"""The shard manifest: the contract between the sample stage that writes shards and the trainer that streams them.

`index.parquet` beside the shards has one row per image: the tar file (`shard`), the member key, the face's ids,
label and split. The split lives only here, so a new draw over the same shards is a new manifest.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa

from realfake.core.atomic import write_parquet
from realfake.core.errors import UserError

INDEX_NAME = "index.parquet"
IMAGE_SUFFIXES = ("png", "jpg", "jpeg", "webp", "npy")  # the member holding the image, by its extension
INDEX_SCHEMA = pa.schema([
    ("shard", pa.string()),  # file name relative to the shards location
    ("key", pa.string()),  # the sample key inside the shard (a zero-padded integer, unique over all shards)
    ("face_id", pa.string()),
    ("split", pa.string()),  # train | val | test | holdout | null (not drawn)
    ("label", pa.string()),
    ("y", pa.int8()),
    ("source", pa.string()),
    ("group", pa.string()),
    ("stratum", pa.string()),
    ("holdout_for", pa.string()),
    ("px", pa.int32()),  # image side in pixels
    ("bytes", pa.int64()),  # size of the image member
])
REQUIRED = ("shard", "key", "face_id", "split", "label", "y", "source", "px")


def join_location(location: str, name: str) -> str:
    """`name` inside a local directory or under an object-store prefix (s3://bucket/prefix)."""
    return f"{location.rstrip('/')}/{name}" if "://" in location else os.fspath(Path(location) / name)


def read_index(location: str, index: str | None = None) -> pd.DataFrame:
    """The manifest (default `<location>/index.parquet`), checked for the columns streaming needs."""
    path = index or join_location(location, INDEX_NAME)
    if "://" not in path and not Path(path).exists():
        raise UserError(f"{path} not found: run the sample stage with sample.shards.enabled=true")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow/fsspec raise many types for a bad file or an unreachable store
        raise UserError(f"cannot read the shard manifest {path}: {type(exc).__name__}: {exc}") from exc
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise UserError(f"{path} is not a shard manifest: missing columns {missing}")
    if len(table) == 0:
        raise UserError(f"{path} lists no images: set sample.shards.enabled=true and re-run the sample stage")
    if not table["key"].astype(str).str.fullmatch(r"\d+").all() or table["key"].duplicated().any():
        raise UserError(f"{path}: keys must be unique integers as written by the sample stage")
    return table


def write_index(table: pd.DataFrame, path: Path) -> None:
    """Write a manifest atomically with the index schema."""
    cols = {c: "string" for c in ("split", "stratum", "holdout_for", "group")}
    write_parquet(table[INDEX_SCHEMA.names].astype(cols), path, schema=INDEX_SCHEMA)
