"""Calibration of the match thresholds on known duplicates and known different faces."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from realfake.dedupe.config import DedupeConfig
from realfake.dedupe.pipeline import thumb_diff
from realfake.dedupe.search import popcount

MAX_EXAMPLES = 20


def positive_pairs(faces: pd.DataFrame, sources: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of different positive sources sharing a `group` (the same photo, e.g. FFHQ id)."""
    rows = faces.loc[faces["source"].isin(sources), ["group", "source"]].reset_index()
    pairs = rows.merge(rows, on="group", suffixes=("_a", "_b"))
    pairs = pairs[pairs["source_a"] < pairs["source_b"]].sort_values(["index_a", "index_b"])
    return pairs["index_a"].to_numpy(np.int64), pairs["index_b"].to_numpy(np.int64)


def negative_pairs(
    faces: pd.DataFrame, sources: tuple[str, ...], count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct random pairs of faces from the negative sources with different `group`."""
    pool = np.flatnonzero(faces["source"].isin(sources).to_numpy())
    groups = faces["group"].astype(str).to_numpy()
    if len(pool) < 2 or count == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    found = np.zeros(0, dtype=np.int64)
    for _ in range(20):  # a few rounds of rejection sampling is plenty unless the pool is tiny
        a, b = pool[rng.integers(0, len(pool), 2 * count)], pool[rng.integers(0, len(pool), 2 * count)]
        a, b = np.minimum(a, b), np.maximum(a, b)
        ok = groups[a] != groups[b]
        found = np.concatenate([found, a[ok] * len(faces) + b[ok]])
        found = pd.unique(found)[:count]
        if len(found) >= count:
            break
    return found // len(faces), found % len(faces)


def pair_distances(hashes: pd.DataFrame, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """pHash/dHash distances of pairs, straight and with the first face mirrored; exact-pixel equality."""
    cols = ("phash", "dhash", "phash_flip", "dhash_flip", "frame_phash", "frame_dhash")
    h = {c: hashes[c].to_numpy("uint64", na_value=0) for c in cols if c in hashes}
    exact = hashes["exact_hash"].to_numpy(object)
    frames = (
        hashes["frame_phash"].notna().to_numpy() if "frame_phash" in hashes else np.zeros(len(hashes), bool)
    )
    return {
        "fp": popcount(h["frame_phash"][i] ^ h["frame_phash"][j])
        if "frame_phash" in h
        else np.zeros(len(i), int),
        "fd": popcount(h["frame_dhash"][i] ^ h["frame_dhash"][j])
        if "frame_dhash" in h
        else np.zeros(len(i), int),
        "frames": frames[i] & frames[j],
        "fdiff": thumb_diff(hashes, i, j) if "frame_thumb" in hashes else np.zeros(len(i)),
        "dp": popcount(h["phash"][i] ^ h["phash"][j]),
        "dd": popcount(h["dhash"][i] ^ h["dhash"][j]),
        "dpf": popcount(h["phash_flip"][i] ^ h["phash"][j]),
        "ddf": popcount(h["dhash_flip"][i] ^ h["dhash"][j]),
        "exact": exact[i] == exact[j],
    }


def rule_matches(
    d: dict[str, np.ndarray], phash_max: int, dhash_max: int, flips: bool,
    frames: tuple[int, int, float] | None = None,
) -> np.ndarray:
    """The match rule of the stage applied to precomputed pair distances; `frames` = (pHash, dHash, thumbnail) limits."""
    hit = d["exact"] | ((d["dp"] <= phash_max) & (d["dd"] <= dhash_max))
    if flips:
        hit |= (d["dpf"] <= phash_max) & (d["ddf"] <= dhash_max)
    if frames is not None:
        hit |= d["frames"] & (d["fp"] <= frames[0]) & (d["fd"] <= frames[1]) & (d["fdiff"] <= frames[2])
    return hit


def calibrate(
    faces: pd.DataFrame, hashes: pd.DataFrame, roots: np.ndarray, cfg: DedupeConfig
) -> dict[str, Any]:
    """Recall on the known duplicates and false merges on random different-face pairs, plus a sweep."""
    cal = cfg.calibration
    readable = hashes["hash_error"].isna().to_numpy()
    pi, pj = positive_pairs(faces, cal.positive_sources)
    pi, pj = _readable(pi, pj, readable)
    ni, nj = negative_pairs(faces[readable], cal.negative_sources, cal.negatives, cal.seed)
    ni, nj = np.flatnonzero(readable)[ni], np.flatnonzero(readable)[nj]
    pos, neg = pair_distances(hashes, pi, pj), pair_distances(hashes, ni, nj)
    frames = (cfg.frame_phash_max, cfg.frame_dhash_max, cfg.frame_max_diff) if cfg.match_frames else None
    pos_hit = rule_matches(pos, cfg.phash_max, cfg.dhash_max, cfg.match_flips, frames)
    neg_hit = rule_matches(neg, cfg.phash_max, cfg.dhash_max, cfg.match_flips, frames)
    pos_clustered = roots[pi] == roots[pj]
    neg_clustered = roots[ni] == roots[nj]
    recall = float(pos_clustered.mean()) if len(pi) else None
    ids = faces["face_id"].to_numpy(object)
    result = {
        "positive_sources": list(cal.positive_sources),
        "negative_sources": list(cal.negative_sources),
        "positives": len(pi),
        "positives_matched": int(pos_hit.sum()),
        "positives_same_cluster": int(pos_clustered.sum()),
        "recall": recall,
        "negatives": len(ni),
        "false_merges": int(neg_hit.sum()),
        "negatives_same_cluster": int(neg_clustered.sum()),
        "missed_positives": _examples(ids, pi, pj, pos, ~pos_clustered),
        "false_merge_examples": _examples(ids, ni, nj, neg, neg_hit | neg_clustered),
        "positive_phash_hist": np.bincount(pos["dp"], minlength=65).tolist() if len(pi) else [],
        "negative_phash_min": int(neg["dp"].min()) if len(ni) else None,
        "positives_matched_by_crops": int(
            rule_matches(pos, cfg.phash_max, cfg.dhash_max, cfg.match_flips).sum()
        ),
        "sweep": sweep(pos, neg, cfg.match_flips, cal.max_false_merges, frames),
    }
    result["passed"] = bool(
        len(pi) > 0
        and recall >= cal.min_recall
        and max(result["false_merges"], result["negatives_same_cluster"]) <= cal.max_false_merges
    )
    return result


def sweep(pos: dict, neg: dict, flips: bool, max_false: int,
          frames: tuple[int, int, float] | None = None) -> list[dict[str, Any]]:
    """For each crop pHash threshold, the largest crop dHash threshold within `max_false` false merges (frame
    limits fixed), and its recall."""
    rows = []
    for tp in range(0, 33, 2):  # pHash distances are even: each hash has 32 bits set (median split)
        best = None
        for td in range(0, 33):
            if rule_matches(neg, tp, td, flips, frames).sum() <= max_false:
                best = td
        if best is None:
            continue
        hit = rule_matches(pos, tp, best, flips, frames)
        rows.append({"phash_max": tp, "dhash_max": best, "recall": float(hit.mean()) if len(hit) else None})
    return rows


def _readable(i: np.ndarray, j: np.ndarray, readable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep pairs whose two crops could both be hashed."""
    ok = readable[i] & readable[j]
    return i[ok], j[ok]


def _examples(ids, i, j, d, mask) -> list[dict[str, Any]]:
    """A few pairs (face ids and distances) for a human to look at."""
    out = []
    for k in np.flatnonzero(mask)[:MAX_EXAMPLES]:
        out.append({"a": ids[i[k]], "b": ids[j[k]], "phash": int(d["dp"][k]), "dhash": int(d["dd"][k])})
    return out
