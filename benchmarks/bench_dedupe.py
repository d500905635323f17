"""Benchmark: cluster 64-bit hashes with planted near-duplicates, multi-index search vs naive O(n^2).

Usage: python benchmarks/bench_dedupe.py [--sizes 125000 250000 500000 1000000] [--max-dist 8]
Each size runs in a fresh child process so that peak memory (tracemalloc, and ru_maxrss) is its own.
Writes benchmarks/results/dedupe.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realfake.core.atomic import write_json  # noqa: E402
from realfake.core.components import union_find  # noqa: E402
from realfake.dedupe.config import DedupeConfig  # noqa: E402
from realfake.dedupe.search import brute_force_pairs, near_pairs, plan_bands  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "dedupe.json"


def synthetic_hashes(n: int, max_dist: int, seed: int = 0, dup_share: float = 0.1):
    """Uniform random hashes; `dup_share` of them overwritten by copies of others with 0..max_dist+2 flips.

    Returns the hashes and the planted (original, copy, flips) triples.
    """
    rng = np.random.default_rng(seed)
    h = rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
    m = int(n * dup_share)
    idx = rng.permutation(n)
    src, dst = idx[:m], idx[m : 2 * m]  # disjoint: a copy is never itself an original
    flips = rng.integers(0, max_dist + 3, m)  # some planted pairs lie beyond the threshold on purpose
    noise = np.zeros(m, dtype=np.uint64)
    for k in range(max_dist + 2):
        bit = rng.integers(0, 64, m).astype(np.uint64)
        noise ^= np.where(k < flips, np.uint64(1) << bit, np.uint64(0))  # repeated bits may cancel: fine
    h[dst] = h[src] ^ noise
    return h, src, dst


def run_one(n: int, max_dist: int, naive_n: int) -> dict:
    """Time and measure one size (run inside a fresh process)."""
    h, src, dst = synthetic_hashes(n, max_dist)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    i, j, d = near_pairs(h, max_dist)
    t1 = time.perf_counter()
    roots = union_find(n, i, j)
    t2 = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    planted_within = np.bitwise_count(h[src] ^ h[dst]) <= max_dist
    found = roots[src[planted_within]] == roots[dst[planted_within]]
    out = {
        "n": n,
        "max_dist": max_dist,
        "plan": str(plan_bands(max_dist, n)),
        "search_s": round(t1 - t0, 3),
        "union_find_s": round(t2 - t1, 3),
        "total_s": round(t2 - t0, 3),
        "pairs": len(i),
        "clusters": int(len(np.unique(roots))),
        "planted_within_threshold": int(planted_within.sum()),
        "planted_found": int(found.sum()),
        "tracemalloc_peak_mb": round(peak / 2**20, 1),
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "maxrss_before_mb": round(base_rss / 1024, 1),
    }
    if naive_n:
        sub = h[:naive_n]
        t0 = time.perf_counter()
        bi, bj, _ = brute_force_pairs(sub, max_dist)
        naive_s = time.perf_counter() - t0
        fi, fj, _ = near_pairs(sub, max_dist)
        out["naive_subset_n"] = naive_n
        out["naive_subset_s"] = round(naive_s, 3)
        out["naive_extrapolated_s"] = round(naive_s * (n / naive_n) ** 2, 1)
        out["subset_pairs_equal_bruteforce"] = set(zip(bi.tolist(), bj.tolist(), strict=True)) == set(
            zip(fi.tolist(), fj.tolist(), strict=True)
        )
    return out


def main() -> None:
    """Run every size in a child process, then write and print the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[125_000, 250_000, 500_000, 1_000_000])
    ap.add_argument("--max-dist", type=int, default=DedupeConfig().phash_max)
    ap.add_argument("--naive-n", type=int, default=20_000, help="subset size for the timed O(n^2) comparison")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.max_dist, args.naive_n)))
        return
    rows = []
    for n in args.sizes:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            str(n),
            "--max-dist",
            str(args.max_dist),
            "--naive-n",
            str(args.naive_n),
        ]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    for a, b in zip(rows, rows[1:], strict=False):
        b["growth_vs_previous"] = round(b["total_s"] / a["total_s"], 2) if a["total_s"] else None
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "rows": rows,
    }
    write_json(RESULTS, result)
    head = f"{'n':>9} {'search s':>9} {'uf s':>6} {'total s':>8} {'x prev':>7} {'naive s (extrap.)':>18} {'speed-up':>9} {'peak MB':>8} {'rss MB':>7} {'planted found':>14}  plan"
    print(head)
    for r in rows:
        print(
            f"{r['n']:>9} {r['search_s']:>9.2f} {r['union_find_s']:>6.2f} {r['total_s']:>8.2f} "
            f"{r.get('growth_vs_previous') or '':>7} {r['naive_extrapolated_s']:>18.0f} "
            f"{r['naive_extrapolated_s'] / r['total_s']:>9.0f} {r['tracemalloc_peak_mb']:>8.0f} {r['maxrss_mb']:>7.0f} "
            f"{r['planted_found']:>7}/{r['planted_within_threshold']}  {r['plan']}"
        )
    print(
        f"max_dist {args.max_dist}; subset results equal brute force: {all(r['subset_pairs_equal_bruteforce'] for r in rows)}"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
