"""Metrics, output schema and the gallery of duplicate pairs for the dedupe stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image, ImageDraw

from realfake.dedupe.config import DedupeConfig
from realfake.dedupe.pipeline import Edges

MAX_CONFLICT_EXAMPLES = 50

SCHEMA = pa.schema(
    [
        ("face_id", pa.string()),
        ("source", pa.string()),
        ("path", pa.string()),
        ("label", pa.string()),
        ("kind", pa.string()),
        ("group", pa.string()),
        ("crop_path", pa.string()),
        ("orig_width", pa.int64()),
        ("orig_height", pa.int64()),
        ("exact_hash", pa.string()),
        ("phash", pa.uint64()),
        ("dhash", pa.uint64()),
        ("phash_flip", pa.uint64()),
        ("dhash_flip", pa.uint64()),
        ("frame_phash", pa.uint64()),
        ("frame_dhash", pa.uint64()),
        ("cluster_id", pa.int64()),
        ("cluster_size", pa.int64()),
        ("is_keeper", pa.bool_()),
        ("keeper_id", pa.string()),
        ("label_conflict", pa.bool_()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)


def build_metrics(
    table: pd.DataFrame,
    edges: Edges,
    not_kept: dict[str, int],
    cfg: DedupeConfig,
    calibration: dict[str, Any],
) -> dict[str, Any]:
    """faces in/out by source and reason, clusters, the source x source duplicates matrix, conflicts."""
    sources = sorted(set(not_kept) | set(table["source"]))
    dropped = table["status"] == "dropped"
    clusters = table.loc[table["cluster_id"].notna()].groupby("cluster_id")["cluster_size"].first()
    return {
        "faces_in": len(table),
        "faces_kept": int((~dropped).sum()),
        "faces_dropped": int(dropped.sum()),
        "dropped_by_reason": {
            k: int(v) for k, v in table.loc[dropped, "reason"].value_counts().sort_index().items()
        },
        "faces_stage_rows_not_kept": {k: not_kept[k] for k in sorted(not_kept)},
        "by_source": _by_source(table, sources),
        "clusters": {
            "total": len(clusters),
            "with_duplicates": int((clusters > 1).sum()),
            "largest": int(clusters.max()) if len(clusters) else 0,
        },
        "pairs": {k: int((edges.how == k).sum()) for k in ("exact", "near", "frame", "flip", "derived")},
        "duplicates_matrix": duplicates_matrix(table, edges, sources),
        "dropped_for_keeper_source": _dropped_for_keeper(table, sources),
        "label_conflicts": _conflicts(table),
        "thresholds": {
            "phash_max": cfg.phash_max,
            "dhash_max": cfg.dhash_max,
            "frame_phash_max": cfg.frame_phash_max,
            "frame_dhash_max": cfg.frame_dhash_max,
            "frame_max_diff": cfg.frame_max_diff,
            "match_flips": cfg.match_flips,
        },
        "calibration": calibration,
    }


def duplicates_matrix(table: pd.DataFrame, edges: Edges, sources: list[str]) -> dict[str, dict[str, int]]:
    """Matched pairs per unordered source pair (symmetric; the diagonal counts within-source pairs).

    'derived' pairs (a real and a fake of one group, see pipeline.mark_derived) are not duplicates: left out.
    """
    src = table["source"].to_numpy(object)
    dup = edges.how != "derived"
    counts = pd.Series(
        list(zip(src[edges.i[dup]], src[edges.j[dup]], strict=True)), dtype=object
    ).value_counts()
    matrix = {a: dict.fromkeys(sources, 0) for a in sources}
    for (a, b), n in counts.items():
        matrix[a][b] += int(n)
        if a != b:
            matrix[b][a] += int(n)
    return matrix


def _by_source(table: pd.DataFrame, sources: list[str]) -> dict[str, dict[str, int]]:
    """Per source: faces in, kept, and dropped by reason."""
    out = {}
    for name in sources:
        rows = table[table["source"] == name]
        entry = {"in": len(rows), "kept": int((rows["status"] == "kept").sum())}
        for reason, n in rows["reason"].value_counts().sort_index().items():
            entry[f"dropped_{reason}"] = int(n)
        out[name] = entry
    return out


def _dropped_for_keeper(table: pd.DataFrame, sources: list[str]) -> dict[str, dict[str, int]]:
    """Faces dropped as duplicates: row = their source, column = the source of their cluster's keeper."""
    dup = table[table["reason"] == "duplicate"]
    keeper_source = dup["keeper_id"].map(table.set_index("face_id")["source"].to_dict())
    counts = pd.crosstab(dup["source"], keeper_source)
    return {
        a: {b: int(counts.at[a, b]) if a in counts.index and b in counts.columns else 0 for b in sources}
        for a in sources
    }


def _conflicts(table: pd.DataFrame) -> dict[str, Any]:
    """Clusters holding a real/fake conflict, with the conflicting members (the first few clusters)."""
    rows = table[table["label_conflict"]]
    examples = []
    for cid, members in rows.groupby("cluster_id"):
        if len(examples) >= MAX_CONFLICT_EXAMPLES:
            break
        examples.append(
            {"cluster_id": int(cid), "members": [f"{r.face_id} ({r.label})" for r in members.itertuples()]}
        )
    return {"clusters": int(rows["cluster_id"].nunique()), "faces": len(rows), "examples": examples}


def gallery(table: pd.DataFrame, edges: Edges, faces_dir: Path, tile: int) -> Image.Image:
    """One sample pair per source pair (the least similar matched pair: the one most worth checking)."""
    src = table["source"].to_numpy(object)
    ids = table["face_id"].to_numpy(object)
    dup = edges.how != "derived"
    edges = Edges(edges.i[dup], edges.j[dup], edges.phash_dist[dup], edges.dhash_dist[dup], edges.how[dup])
    a, b = src[edges.i].astype(str), src[edges.j].astype(str)
    first = a <= b
    picks = pd.DataFrame(
        {
            "a": np.where(first, a, b),
            "b": np.where(first, b, a),
            "dp": edges.phash_dist,
            "dd": edges.dhash_dist,
            "how": edges.how,
            "i": edges.i,
            "j": edges.j,
        }
    )
    picks["score"] = picks["dp"].astype(int) + picks["dd"].astype(int)
    picks["key"] = ids[picks["i"]] + "|" + ids[picks["j"]]
    picks = picks.sort_values(["a", "b", "score", "key"], ascending=[True, True, False, True])
    counts = picks.groupby(["a", "b"]).size()
    picks = picks.drop_duplicates(["a", "b"])
    text_h = 28
    if picks.empty:
        img = Image.new("RGB", (2 * tile, text_h), "white")
        ImageDraw.Draw(img).text((4, 8), "no duplicate pairs", fill="black")
        return img
    img = Image.new("RGB", (max(2 * tile, 260), len(picks) * (tile + text_h)), "white")
    draw = ImageDraw.Draw(img)
    for row, p in enumerate(picks.itertuples()):
        y = row * (tile + text_h)
        draw.text((4, y + 2), f"{p.a} x {p.b}: {counts[(p.a, p.b)]} pair(s)", fill="black")
        draw.text((4, y + 14), f"shown: {p.how}, phash {p.dp}, dhash {p.dd}", fill="black")
        for col, k in enumerate((p.i, p.j)):
            face = _load_tile(faces_dir / str(src[k]) / str(table["crop_path"].iat[k]), tile)
            img.paste(face, (col * tile, y + text_h))
    return img


def _load_tile(path: Path, tile: int) -> Image.Image:
    """A crop resized to the gallery tile (grey if it cannot be read)."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB").resize((tile, tile), Image.Resampling.LANCZOS)
    except (OSError, ValueError):
        return Image.new("RGB", (tile, tile), "grey")
