"""Read throughput of the same files from a local S3 server (SeaweedFS `weed mini`) and from local disk.

    python benchmarks/bench_s3.py [--n 1000] [--threads 16] [--repeats 3]

Three workloads, each timed on disk and on S3 in one run (the best of `--repeats`): N face JPEGs read one by
one (images/s, MB/s: per-request latency dominates), the same N read by a pool of threads (how prefetching hides
that latency), and one uncompressed ZIP of those same N files read whole (MB/s: bandwidth). A fourth row times realfake's own
`s3://bucket/prefix/` synchronisation of the N images into an empty cache (the download stage's path).
Both sides read warm data: the files were just written, and SeaweedFS's volume files sit in the same page cache,
so the ratios measure the S3 request path (HTTP, SigV4 signing, the gateway, the filer), not the disk.
Images come from the offline mirror when there is one, else from the embedded sample in data/sample/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from realfake.core.params import find_mirror
from realfake.ingest.fetch import FetchConfig
from realfake.ingest.s3 import fetch_s3
from realfake.ingest.seaweed import seaweed_s3

REPO = Path(__file__).resolve().parents[1]
BUCKET = "bench"


def face_jpegs(n: int) -> list[bytes]:
    """n real face JPEGs: from the mirror's LFW and TPDNE archives, else the embedded sample's archives."""
    mirror = find_mirror(REPO)
    archives = [mirror / "lfw.zip", mirror / "tpdne.zip"] if mirror else sorted((REPO / "data" / "sample").glob("*.zip"))
    found: list[bytes] = []
    for archive in archives:
        with zipfile.ZipFile(archive) as zf:
            found += [zf.read(i) for i in zf.infolist() if i.filename.lower().endswith(".jpg")][: n]
    if not found:
        raise SystemExit("no JPEGs found in the mirror or data/sample")
    return [found[k % len(found)] for k in range(n)]  # the sample holds fewer than n: repeat, as bytes


def best(fn: Callable[[], int], repeats: int) -> tuple[float, int]:
    """The shortest of `repeats` timings of fn (which returns the bytes it read), and those bytes."""
    times, nbytes = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        nbytes = fn()
        times.append(time.perf_counter() - start)
    return min(times), nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="face images per workload")
    parser.add_argument("--threads", type=int, default=16, help="threads for the parallel reads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "s3.json"))
    args = parser.parse_args()

    images = face_jpegs(args.n)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        disk = tmp / "disk"
        (disk / "faces").mkdir(parents=True)
        names = [f"faces/{k:06d}.jpg" for k in range(len(images))]
        for name, data in zip(names, images, strict=True):
            (disk / name).write_bytes(data)
        archive = disk / "faces.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
            for name, data in zip(names, images, strict=True):
                zf.writestr(name, data)  # the same bytes as the N files, as one object

        with seaweed_s3(tmp / "seaweedfs", buckets=(BUCKET,)) as server:
            client = server.client()
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(lambda n: client.upload_file(str(disk / n), BUCKET, n), [*names, "faces.zip"]))
            rows = run_workloads(disk, names, archive, client, args)
            sync_s, _ = best(lambda: sync_prefix(server, tmp), 1)
            rows.append({"workload": "realfake s3:// prefix sync (download stage)", "items": len(names),
                         "disk_s": None, "s3_s": sync_s, "bytes": sum(map(len, images))})

    result = {"images": len(images), "image_mb": round(sum(map(len, images)) / 1e6, 1), "threads": args.threads,
              "archive_mb": round(archive_size(rows) / 1e6, 1), "machine": platform.machine(),
              "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 1),
              "rows": [summarise(r) for r in rows]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)


def run_workloads(disk: Path, names: list[str], archive: Path, client, args) -> list[dict]:
    """Time each workload on disk and on S3, back to back."""
    def disk_one(name: str) -> int:
        return len((disk / name).read_bytes())

    def s3_one(name: str) -> int:
        return len(client.get_object(Bucket=BUCKET, Key=name)["Body"].read())

    def serial(read: Callable[[str], int]) -> Callable[[], int]:
        return lambda: sum(read(n) for n in names)

    def parallel(read: Callable[[str], int]) -> Callable[[], int]:
        def go() -> int:
            with ThreadPoolExecutor(args.threads) as pool:
                return sum(pool.map(read, names))
        return go

    rows = []
    for label, disk_fn, s3_fn, items in [
        ("face JPEGs, one at a time", serial(disk_one), serial(s3_one), len(names)),
        (f"face JPEGs, {args.threads} threads", parallel(disk_one), parallel(s3_one), len(names)),
        ("one archive, whole", lambda: disk_one(archive.name), lambda: s3_one(archive.name), 1),
    ]:
        disk_s, nbytes = best(disk_fn, args.repeats)
        s3_s, s3_bytes = best(s3_fn, args.repeats)
        assert nbytes == s3_bytes, (label, nbytes, s3_bytes)  # the same bytes came back
        rows.append({"workload": label, "items": items, "disk_s": disk_s, "s3_s": s3_s, "bytes": nbytes})
    return rows


def sync_prefix(server, tmp: Path) -> int:
    """realfake's fetch of s3://bench/faces/ into an empty cache, with the server's credentials in the env."""
    cache = tmp / "sync-cache"
    shutil.rmtree(cache, ignore_errors=True)
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    try:
        out = fetch_s3(f"s3://{BUCKET}/faces/", cache / "bench", None, FetchConfig(cache_dir=str(cache)))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def archive_size(rows: list[dict]) -> int:
    return next(r["bytes"] for r in rows if r["workload"] == "one archive, whole")


def summarise(row: dict) -> dict:
    """Seconds → MB/s and items/s on each side, and the disk/S3 ratio (how many times slower S3 is)."""
    out = {"workload": row["workload"], "items": row["items"], "mb": round(row["bytes"] / 1e6, 2)}
    for side in ("disk", "s3"):
        secs = row[f"{side}_s"]
        out[f"{side}_mb_per_s"] = None if secs is None else round(row["bytes"] / 1e6 / secs, 1)
        out[f"{side}_items_per_s"] = None if secs is None else round(row["items"] / secs, 1)
    out["disk_over_s3"] = None if row["disk_s"] is None else round(row["s3_s"] / row["disk_s"], 1)
    return out


def print_table(result: dict) -> None:
    print(f"{result['images']} face JPEGs ({result['image_mb']} MB), archive {result['archive_mb']} MB, "
          f"{result['threads']} threads for the parallel rows")
    print(f"{'workload':<44}{'disk MB/s':>10}{'S3 MB/s':>10}{'disk it/s':>11}{'S3 it/s':>10}{'disk/S3':>9}")
    for r in result["rows"]:
        cells = [r["disk_mb_per_s"], r["s3_mb_per_s"], r["disk_items_per_s"], r["s3_items_per_s"]]
        text = [f"{c:>10.1f}" if c is not None else f"{'-':>10}" for c in cells]
        ratio = f"{r['disk_over_s3']:>8.1f}x" if r["disk_over_s3"] is not None else f"{'-':>9}"
        print(f"{r['workload']:<44}{text[0]}{text[1]}{text[2]:>11}{text[3]}{ratio}")


if __name__ == "__main__":
    main()
