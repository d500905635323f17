"""WebDataset tar shards of the resized faces, written by the sample stage, and re-sampling by index.

The sample stage can write every face of the split table (placed, unplaced and held out) into tar shards of at most
`max_count` images / `max_bytes` bytes: `<key>.png` is the resize stage's file byte for byte (`encoding: file`; the
packed arrays decode the same file, so both inputs hold the same pixels), or `<key>.npy` its decoded uint8 3×S×S
array (`encoding: npy`: 1.5-2x larger, nothing to decode while streaming), and `<key>.json` names the face. `index.parquet` beside
the shards is the manifest: one row per image with `shard`, `key`, the face's ids, label and split. The split lives
in the manifest only, so a new balanced draw (`resample_index`) is a new manifest over the same shards: no image
is rewritten. Shards hold the first draw's splits in order (train, val, test, holdout, then the unplaced faces),
shuffled within each, so streaming that draw's train split opens only train shards.
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from realfake.core.atomic import atomic_dir, write_json
from realfake.core.shard_manifest import INDEX_NAME, INDEX_SCHEMA, write_index
from realfake.core.view_record import VIEW_FILE
from realfake.sample.config import ShardsConfig

log = logging.getLogger(__name__)

SHARD_PATTERN = "shard-%06d.tar"
SPLIT_ORDER = ("train", "val", "test", "holdout")


def shard_order(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows grouped by split (train, val, test, holdout, none), each group in a seeded random order."""
    rank = rows["split"].map({s: i for i, s in enumerate(SPLIT_ORDER)}).fillna(len(SPLIT_ORDER))
    noise = np.random.default_rng(seed).permutation(len(rows))
    return rows.assign(_rank=rank.to_numpy(), _noise=noise).sort_values(["_rank", "_noise"]).drop(
        columns=["_rank", "_noise"])


def check_image(path: Path, size: int | None, encoding: str = "file") -> tuple[bytes | None, int, str | None]:
    """(member bytes, side) of a file that decodes to an RGB square (of `size` px when given), else a rejection reason.

    The member is the file itself (encoding `file`) or its pixels as a 3×S×S uint8 .npy (encoding `npy`).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, 0, "missing_file"
    except OSError as exc:
        return None, 0, f"unreadable: {exc.strerror or exc}"
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode, (w, h) = img.mode, img.size
            pixels = np.asarray(img.convert("RGB")).transpose(2, 0, 1) if encoding == "npy" else None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None, 0, "undecodable"
    if mode != "RGB" or w != h or (size is not None and w != size):
        return None, 0, f"not_{size or 'square'}px_rgb"
    if pixels is not None:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(pixels))
        data = buffer.getvalue()
    return data, w, None


def write_shards(rows: pd.DataFrame, out_dir: Path, cfg: ShardsConfig, seed: int, size: int | None = None,
                 root: Path = Path("."), view: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write `rows` (face_id, path, split, label, source, group, stratum, holdout_for) as shards + index into out_dir.

    The directory is swapped in whole when done (an interrupted run leaves the previous one), with the `view` record
    (view.json) when given. Returns the report: in = written + rejected, by reason.
    """
    import webdataset as wds

    ordered = shard_order(rows.reset_index(drop=True), seed)
    index, rejected = [], Counter()
    with atomic_dir(out_dir) as tmp:
        writer = wds.ShardWriter(str(tmp / SHARD_PATTERN), maxcount=cfg.max_count, maxsize=cfg.max_bytes,
                                 verbose=0, mtime=0, user="", group="")  # fixed metadata (an int mtime: no PAX header per member)
        try:
            for rec in tqdm(ordered.itertuples(index=False), total=len(ordered), desc="shards", unit="img",
                            leave=False, mininterval=5):
                data, side, reason = (check_image(root / rec.path, size, cfg.encoding) if rec.path
                                      else (None, 0, "missing_file"))
                if reason:
                    rejected[reason] += 1
                    continue
                key = f"{len(index):09d}"
                suffix = "npy" if cfg.encoding == "npy" else Path(rec.path).suffix.lower().lstrip(".") or "png"
                meta = {"face_id": rec.face_id, "label": rec.label, "source": rec.source}
                writer.write({"__key__": key, suffix: data, "json": json.dumps(meta, sort_keys=True).encode()})
                index.append({"shard": Path(writer.fname).name, "key": key, "face_id": rec.face_id,
                              "split": rec.split, "label": rec.label, "y": int(rec.label == "fake"),
                              "source": rec.source, "group": rec.group, "stratum": rec.stratum,
                              "holdout_for": rec.holdout_for, "px": side, "bytes": len(data)})
        finally:
            writer.close()
        table = pd.DataFrame(index, columns=INDEX_SCHEMA.names)
        for empty in sorted(set(p.name for p in tmp.glob("shard-*.tar")) - set(table["shard"])):
            (tmp / empty).unlink()  # ShardWriter opens its first file before any write
        write_index(table, tmp / INDEX_NAME)
        if view is not None:
            write_json(tmp / VIEW_FILE, dict(view))
    report = {"enabled": True, "in": len(rows), "written": len(table), "rejected": dict(sorted(rejected.items())),
              "shards": int(table["shard"].nunique()), "bytes": int(table["bytes"].sum()),
              "per_split": {str(k): int(v) for k, v in table["split"].fillna("none").value_counts().items()}}
    assert report["in"] == report["written"] + sum(rejected.values()), report
    return report


def write_stage_shards(metadata_path: Path, splits_path: Path, out_dir: Path, cfg: ShardsConfig, seed: int,
                       size: int, metrics_path: Path, view: Mapping[str, Any] | None = None,
                       require: tuple[str, ...] = (), crops_root: Path = Path("data/crops")) -> dict[str, Any]:
    """The sample stage's hook: shards of every face in the split table, or an empty index when disabled.

    `view` (realfake.crops.views.view_record; None: aligned at `size`) picks the pixels as for the packed arrays: a
    face whose view (or one of `require`, sample.require_views) the crops stage rejected is counted, not written.
    """
    if not cfg.enabled:
        with atomic_dir(out_dir) as tmp:  # the DVC output exists either way; training from it says what to do
            write_index(pd.DataFrame(columns=INDEX_SCHEMA.names), tmp / INDEX_NAME)
        report = {"enabled": False, "in": 0, "written": 0, "rejected": {}, "shards": 0, "bytes": 0, "per_split": {}}
    else:
        from realfake.sample.views import view_rows

        view = dict(view or {"name": "aligned", "size": size})
        splits = pd.read_parquet(splits_path)
        paths = pd.read_parquet(metadata_path, columns=["face_id", "resized_path"])
        rows = splits.merge(paths, on="face_id", how="left", validate="one_to_one")
        rows = rows.assign(group=rows["split_group"])
        picked = view_rows(rows, view["name"], crops_root, tuple(require))  # aligned alone reads no crops table
        chosen, left_out = picked.rows.assign(path=picked.rows["path"].fillna("")), picked.rejected_by_reason
        report = write_shards(chosen, out_dir, cfg, seed, int(view["size"]),
                              view=None if view["name"] == "aligned" else view)
        report["in"] += sum(left_out.values())
        report["rejected"] = dict(sorted((Counter(report["rejected"]) + Counter(left_out)).items()))
        log.info("shards (%s view): %d images in %d shards (%.1f MB), rejected %s", view["name"], report["written"],
                 report["shards"], report["bytes"] / 1e6, report["rejected"] or "none")
    write_json(metrics_path, report)
    return report
