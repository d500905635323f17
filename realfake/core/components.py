"""Connected components of a graph given as edge lists: a vectorised union-find (dedupe clusters, split groups)."""

from __future__ import annotations

import numpy as np


def union_find(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Root (smallest member index) of every node after uniting each edge (a[k], b[k]).

    Vectorised union-find: each round hooks the larger root of every still-split edge under the smaller
    one (a scatter-min, so roots only ever decrease and no cycle can form), then compresses all paths
    by pointer jumping. Rounds repeat until every edge joins two nodes with the same root.
    """
    parent = np.arange(n, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    while len(a):
        ra, rb = parent[a], parent[b]
        split = ra != rb
        if not split.any():
            break
        lo, hi = np.minimum(ra[split], rb[split]), np.maximum(ra[split], rb[split])
        np.minimum.at(parent, hi, lo)
        parent = _compress(parent)
        a, b = a[split], b[split]  # edges already joined stay joined
    return parent


def _compress(parent: np.ndarray) -> np.ndarray:
    """Point every node straight at its root (pointer jumping)."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand
