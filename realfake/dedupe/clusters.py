"""Keepers of duplicate clusters and real/fake label conflicts (the clusters come from realfake.core.components)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def keeper_order(df: pd.DataFrame, source_priority: list[str]) -> np.ndarray:
    """Rank of each row under the keeper policy: listed source priority, then more pixels, then face_id."""
    rank = {name: i for i, name in enumerate(source_priority)}
    prio = df["source"].map(rank).fillna(len(rank)).to_numpy()
    pixels = (
        df["orig_width"].fillna(0).astype("int64") * df["orig_height"].fillna(0).astype("int64")
    ).to_numpy()
    order = np.lexsort(
        (df["face_id"].to_numpy().astype(str), df["source"].to_numpy().astype(str), -pixels, prio)
    )
    ranks = np.empty(len(df), dtype=np.int64)
    ranks[order] = np.arange(len(df))
    return ranks


def star_keepers(n: int, a: np.ndarray, b: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Index of the keeper each node is a duplicate of (itself for keepers and unmatched nodes).

    Greedy in keeper-rank order: the best-ranked unassigned face becomes a keeper and takes every
    unassigned face it matches directly. So a dropped face always matches its own keeper directly,
    and no two keepers match each other; a chain A~B~C of a union-find cluster can keep both A and C.
    Only faces with at least one match enter the (Python) loop.
    """
    keeper_of = np.arange(n, dtype=np.int64)
    if not len(a):
        return keeper_of
    src, dst = np.concatenate([a, b]), np.concatenate([b, a])
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    starts = np.searchsorted(src, np.arange(n + 1))
    nodes = np.unique(src)
    nodes = nodes[np.argsort(ranks[nodes], kind="stable")]
    assigned = np.zeros(n, dtype=bool)
    for v in nodes.tolist():
        if assigned[v]:
            continue
        assigned[v] = True
        near = dst[starts[v] : starts[v + 1]]
        near = near[~assigned[near]]
        keeper_of[near] = v
        assigned[near] = True
    return keeper_of


def conflict_roots(roots: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The cluster keys (roots or keepers) whose members carry more than one label."""
    pairs = pd.DataFrame({"root": roots, "label": labels}).drop_duplicates()
    counts = pairs.groupby("root")["label"].nunique()
    return np.sort(counts.index[counts > 1].to_numpy())
