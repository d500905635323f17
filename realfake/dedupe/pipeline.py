"""Dedupe across sources: read the faces tables, hash the crops, match, cluster, pick keepers."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.core.components import union_find
from realfake.core.engine import ComputeConfig, map_chunks
from realfake.core.progress import tqdm
from realfake.core.tables import read_faces
from realfake.dedupe.clusters import conflict_roots, keeper_order, star_keepers
from realfake.dedupe.config import DedupeConfig
from realfake.dedupe.hashing import FaceHashes, hash_files
from realfake.dedupe.search import near_pairs, popcount

log = logging.getLogger(__name__)

FACE_COLUMNS = [
    "face_id",
    "source",
    "path",
    "label",
    "kind",
    "group",
    "crop_path",
    "orig_width",
    "orig_height",
]
HASH_CHUNK = 32  # images per engine batch
REQUIRED = ["face_id", "source", "label", "group", "status", "crop_path"]


@dataclass
class Edges:
    """Matched pairs (row indices i < j) with their distances and how they matched."""

    i: np.ndarray
    j: np.ndarray
    phash_dist: np.ndarray
    dhash_dist: np.ndarray
    how: np.ndarray  # 'exact' | 'near' | 'flip' | 'derived' (not merged, see mark_derived)

    def __len__(self) -> int:
        return len(self.i)


def load_faces(faces_dir: Path, sources: Iterable[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The kept faces of every source, sorted by (source, face_id); plus how many rows were not kept."""
    sources = list(sources)
    table = read_faces(faces_dir, sources, required=tuple(REQUIRED))
    kept = table["status"] == "kept" if len(table) else pd.Series(False, index=table.index)
    source = table["source"].astype(str)
    not_kept = {name: int(((source == name) & ~kept).sum()) for name in sources}
    faces = table.loc[kept, [c for c in FACE_COLUMNS if c in table.columns]]
    for col in FACE_COLUMNS:
        if col not in faces.columns:
            faces[col] = None
    for col in ("orig_width", "orig_height"):
        faces[col] = pd.to_numeric(faces[col], errors="coerce").astype("Int64")
    faces = faces[FACE_COLUMNS].sort_values(["source", "face_id"], kind="stable").reset_index(drop=True)
    return faces, not_kept


def hash_faces(
    faces: pd.DataFrame, faces_dir: Path, workers: int = 1, raw_dir: Path | None = None,
    compute: ComputeConfig | None = None,
) -> pd.DataFrame:
    """Hash every crop (and, with `raw_dir`, its original image); unreadable crops get `hash_error`."""
    paths = [faces_dir / str(s) / str(c) for s, c in zip(faces["source"], faces["crop_path"], strict=True)]
    raw = []
    if raw_dir is not None:
        raw = [raw_dir / str(s) / str(p) for s, p in zip(faces["source"], faces["path"], strict=True)]
    todo = [os.fspath(p) for p in paths + raw]
    with tqdm(total=len(todo), desc="hash crops and originals", unit="image") as bar:
        hashed = map_chunks(hash_files, todo, compute or ComputeConfig(), workers, HASH_CHUNK, bar.update)
    results = hashed[: len(paths)]
    frames = hashed[len(paths):] if raw_dir is not None else [None] * len(paths)
    ok = [r for r in results if isinstance(r, FaceHashes)]
    n_bad = len(results) - len(ok)
    if n_bad:
        log.warning("%d crop(s) could not be read; they are dropped with reason 'unreadable'", n_bad)
    out = pd.DataFrame(
        {
            "exact_hash": [r.exact if isinstance(r, FaceHashes) else None for r in results],
            "hash_error": [None if isinstance(r, FaceHashes) else r for r in results],
        }
    )
    for name in ("phash", "dhash", "phash_flip", "dhash_flip"):
        out[name] = pd.array(
            [getattr(r, name) if isinstance(r, FaceHashes) else None for r in results], "UInt64"
        )
    # an unreadable original only loses the frame match; the crop is what the pipeline keeps
    for name in ("phash", "dhash"):
        out[f"frame_{name}"] = pd.array(
            [getattr(r, name) if isinstance(r, FaceHashes) else None for r in frames], "UInt64"
        )
    out["frame_thumb"] = [r.thumb if isinstance(r, FaceHashes) else None for r in frames]
    return out


def thumb_diff(hashes: pd.DataFrame, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Mean absolute grey-level difference of the original frames' thumbnails of pairs (inf where one is missing)."""
    thumbs = hashes["frame_thumb"].to_numpy(object) if "frame_thumb" in hashes else np.full(len(hashes), None)
    out = np.full(len(i), np.inf)
    for k, (a, b) in enumerate(zip(thumbs[i], thumbs[j], strict=True)):
        if a and b and len(a) == len(b):
            out[k] = np.abs(np.frombuffer(a, np.uint8).astype(np.int16) - np.frombuffer(b, np.uint8)).mean()
    return out


def match_pairs(hashes: pd.DataFrame, cfg: DedupeConfig) -> Edges:
    """Every matched pair among readable faces: equal pixels, or pHash and dHash both within threshold."""
    rows = np.flatnonzero(hashes["hash_error"].isna().to_numpy())
    ph = hashes["phash"].to_numpy("uint64", na_value=0)[rows]
    dh = hashes["dhash"].to_numpy("uint64", na_value=0)[rows]
    parts = [_exact_pairs(hashes["exact_hash"].to_numpy()[rows])]
    i, j, dp = near_pairs(ph, cfg.phash_max)
    parts.append((i, j, dp, popcount(dh[i] ^ dh[j]), "near"))
    if cfg.match_flips:
        phf = hashes["phash_flip"].to_numpy("uint64", na_value=0)[rows]
        dhf = hashes["dhash_flip"].to_numpy("uint64", na_value=0)[rows]
        i, j, dp = near_pairs(ph, cfg.phash_max, queries=phf)
        other = i != j  # a face always resembles its own mirror image
        i, j, dp = i[other], j[other], dp[other]
        parts.append((np.minimum(i, j), np.maximum(i, j), dp, popcount(dhf[i] ^ dh[j]), "flip"))
    if cfg.match_frames:
        parts.append(_frame_pairs(hashes, rows, cfg))
    edges = pd.concat(
        [pd.DataFrame({"i": a, "j": b, "dp": c, "dd": d, "how": h}) for a, b, c, d, h in parts],
        ignore_index=True,
    )
    dhash_limit = np.where(edges["how"] == "frame", cfg.frame_dhash_max, cfg.dhash_max)
    edges = edges[(edges["how"] == "exact") | (edges["dd"] <= dhash_limit)]
    # one edge per pair: exact beats near beats flip, then the closer distance
    rank = edges["how"].map({"exact": 0, "near": 1, "frame": 2, "flip": 3})
    edges = edges.assign(rank=rank).sort_values(["i", "j", "rank", "dp", "dd"], kind="stable")
    edges = edges.drop_duplicates(["i", "j"])
    return Edges(
        rows[edges["i"].to_numpy(np.int64)],
        rows[edges["j"].to_numpy(np.int64)],
        edges["dp"].to_numpy(np.int16),
        edges["dd"].to_numpy(np.int16),
        edges["how"].to_numpy(object),
    )


def _frame_pairs(hashes: pd.DataFrame, rows: np.ndarray, cfg: DedupeConfig):
    """Pairs (positions in `rows`) whose original images match: hashes within the frame limits, thumbnails alike.

    Two copies of one photo at different sizes are detected and aligned separately, and the crops can
    differ by a few pixels, which moves pHash by up to ~16 bits; the original frames do not move.
    The 64-bit hashes of a frame are dominated by its background and silhouette: different people on plain
    backgrounds (generated-faces, pollinations, stylegan-140k) come within 2/4 bits, so a frame match must
    also pass `frame_max_diff` on the 16 px thumbnails (docs/dedupe.md).
    """
    have = hashes["frame_phash"].notna().to_numpy()[rows]
    pos = np.flatnonzero(have)
    fph = hashes["frame_phash"].to_numpy("uint64", na_value=0)[rows][pos]
    fdh = hashes["frame_dhash"].to_numpy("uint64", na_value=0)[rows][pos]
    i, j, dp = near_pairs(fph, cfg.frame_phash_max)
    dd = popcount(fdh[i] ^ fdh[j])
    near = dd <= cfg.frame_dhash_max  # only the few hash matches pay for the thumbnail check
    i, j, dp, dd = i[near], j[near], dp[near], dd[near]
    alike = thumb_diff(hashes, rows[pos[i]], rows[pos[j]]) <= cfg.frame_max_diff
    return pos[i][alike], pos[j][alike], dp[alike], dd[alike], "frame"


def _exact_pairs(exact: np.ndarray):
    """Pairs (first member, other member) of faces with identical decoded pixels."""
    codes = pd.factorize(exact)[0]
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    first = order[np.searchsorted(sorted_codes, sorted_codes, side="left")]
    dup = first != order
    i, j = first[dup], order[dup]
    zeros = np.zeros(len(i), dtype=np.int16)
    return np.minimum(i, j), np.maximum(i, j), zeros, zeros, "exact"


def mark_derived(edges: Edges, faces: pd.DataFrame) -> Edges:
    """Mark pairs of a real and a fake sharing `group` as 'derived' (e.g. a DFDC face swap and its source video).

    Such a pair is a known derivation, not a labelling error: both faces stay, and the split already
    keeps the group on one side.
    """
    group = faces["group"].astype(str).to_numpy()
    label = faces["label"].astype(str).to_numpy()
    derived = (group[edges.i] == group[edges.j]) & (label[edges.i] != label[edges.j])
    how = np.where(derived, "derived", edges.how).astype(object)
    return Edges(edges.i, edges.j, edges.phash_dist, edges.dhash_dist, how)


def cluster_faces(
    faces: pd.DataFrame, hashes: pd.DataFrame, edges: Edges, cfg: DedupeConfig
) -> tuple[pd.DataFrame, np.ndarray]:
    """The output table (one row per face: hashes, cluster, keeper, status, reason) and cluster roots."""
    merge = edges.how != "derived"
    a, b = edges.i[merge], edges.j[merge]
    roots = union_find(len(faces), a, b)
    ranks = keeper_order(faces, list(cfg.source_priority))
    keeper_of = star_keepers(len(faces), a, b, ranks)
    return _table(faces, hashes, roots, keeper_of, cfg), roots


def _table(
    faces: pd.DataFrame, hashes: pd.DataFrame, roots: np.ndarray, keeper_of: np.ndarray, cfg: DedupeConfig
) -> pd.DataFrame:
    """Assemble the per-face output columns from the clusters and the keeper of each face."""
    n = len(faces)
    readable = hashes["hash_error"].isna().to_numpy()
    keeper = (keeper_of == np.arange(n)) & readable
    labels = faces["label"].astype(str).to_numpy()
    # a conflict is a keeper and its direct duplicates carrying both labels
    conflicted = np.isin(keeper_of, conflict_roots(keeper_of[readable], labels[readable])) & readable
    keeper_id = np.where(readable, faces["face_id"].to_numpy(object)[keeper_of], None)
    if cfg.drop_conflicts:  # a conflicted group keeps nobody
        keeper &= ~conflicted
        keeper_id[conflicted] = None

    reason = np.full(n, None, dtype=object)
    reason[readable & ~keeper] = "duplicate"
    if cfg.drop_conflicts:
        reason[conflicted] = "label_conflict"
    reason[~readable] = "unreadable"
    table = faces.copy()
    table["exact_hash"] = hashes["exact_hash"].to_numpy(object)
    for col in ("phash", "dhash", "phash_flip", "dhash_flip", "frame_phash", "frame_dhash"):
        table[col] = hashes[col].to_numpy()
    table["cluster_id"] = pd.array(np.unique(roots, return_inverse=True)[1], dtype="Int64")
    table.loc[~readable, "cluster_id"] = pd.NA
    table["cluster_size"] = np.where(readable, np.bincount(roots, minlength=n)[roots], 0).astype(np.int64)
    table["is_keeper"] = keeper
    table["keeper_id"] = keeper_id
    table["label_conflict"] = conflicted
    table["status"] = np.where(pd.isna(reason), "kept", "dropped")
    table["reason"] = reason
    table["detail"] = hashes["hash_error"].to_numpy(object)
    return table


@dataclass
class DedupeResult:
    """Everything the stage writes, before writing."""

    table: pd.DataFrame
    edges: Edges
    roots: np.ndarray
    not_kept: dict[str, int]
    hashes: pd.DataFrame


def run_dedupe(
    faces_dir: Path, sources: Iterable[str], cfg: DedupeConfig, raw_dir: Path | None = None,
    compute: ComputeConfig | None = None,
) -> DedupeResult:
    """Load, hash, match and cluster the kept faces of all sources (originals from `raw_dir` if matched)."""
    faces, not_kept = load_faces(Path(faces_dir), sources)
    log.info("dedupe: %d kept faces from %d source(s)", len(faces), len(not_kept))
    frames = Path(raw_dir) if cfg.match_frames and raw_dir is not None else None
    hashes = hash_faces(faces, Path(faces_dir), cfg.workers, frames, compute)
    edges = mark_derived(match_pairs(hashes, cfg), faces)
    table, roots = cluster_faces(faces, hashes, edges, cfg)
    log.info(
        "dedupe: %d matched pairs, %d faces dropped", len(edges), int((table["status"] == "dropped").sum())
    )
    return DedupeResult(table, edges, roots, not_kept, hashes)
