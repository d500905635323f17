"""Faces stage speed: naive loop (one MTCNN.detect per full-size image, one process) vs the pipeline.

Run: .venv/bin/python benchmarks/bench_faces.py [--n 150] [--sources tpdne lfw]
Prints a table and writes benchmarks/results/faces.json. Both sides decode, judge and write crops the
same way; only detection differs (naive: full-size image, one call per image, default torch threads).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from realfake.core.atomic import write_bytes, write_json
from realfake.core.imageio import DecodeError, encode_png, read_image
from realfake.core.log import setup_logging
from realfake.core.params import find_mirror
from realfake.faces.alignment import warp_crop
from realfake.faces.batch import empty_record, judge_face
from realfake.faces.config import FacesConfig
from realfake.faces.crop import process_images
from realfake.faces.detect import Face

log = logging.getLogger("bench_faces")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def extract_sample(zip_path: Path, n: int, dest: Path, seed: int) -> list[Path]:
    """Copy n random images of an archive to dest (a temp dir, never the repo)."""
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(m for m in zf.namelist() if m.lower().endswith((".jpg", ".jpeg", ".png")))
        chosen = random.Random(seed).sample(names, min(n, len(names)))
        out = []
        for k, name in enumerate(chosen):
            path = dest / f"{k:05d}{Path(name).suffix}"
            path.write_bytes(zf.read(name))
            out.append(path)
    return out


def naive(paths: list[Path], out_dir: Path, cfg: FacesConfig) -> tuple[list[dict], float, float]:
    """The baseline: one MTCNN.detect per full-size image in this process."""
    from facenet_pytorch import MTCNN

    start, cpu = time.perf_counter(), time.process_time()
    mtcnn = MTCNN(keep_all=True, device="cpu")
    records = []
    for path in paths:
        rec = empty_record()
        try:
            img = read_image(path, cfg.max_pixels)
        except DecodeError as exc:
            rec["reason"] = exc.reason
            records.append(rec)
            continue
        boxes, probs, points = mtcnn.detect(img.rgb, landmarks=True)
        faces = [] if boxes is None else [
            Face(np.asarray(b, float), float(p), np.asarray(pt, float)) for b, p, pt in zip(boxes, probs, points, strict=True)
        ]
        al = judge_face(rec, img, faces, cfg)
        if al is not None:
            write_bytes(out_dir / f"{path.stem}.png", encode_png(warp_crop(img.rgb, al, cfg.crop_size)))
            rec.update(status="kept", reason=None)
        records.append(rec)
    return records, time.perf_counter() - start, time.process_time() - cpu


def ours_single(paths: list[Path], out_dir: Path, cfg: FacesConfig) -> tuple[float, float]:
    """The pipeline in this process (workers=1): wall and CPU seconds, comparable with the naive loop."""
    start, cpu = time.perf_counter(), time.process_time()
    process_images([(os.fspath(p), p.stem) for p in paths], out_dir, replace(cfg, workers=1), progress=False)
    return time.perf_counter() - start, time.process_time() - cpu


def iou(a, b) -> float:
    """Intersection over union of two x1,y1,x2,y2 boxes."""
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def agreement(base: list[dict], ours: list[dict]) -> dict:
    """Same keep/reject decision, and primary-box IoU > 0.5 where both found a primary face."""
    same = [a["status"] == b["status"] for a, b in zip(base, ours, strict=True)]
    both = [(a, b) for a, b in zip(base, ours, strict=True) if a["box"] is not None and b["box"] is not None]
    ious = [iou(a["box"], b["box"]) for a, b in both]
    return {
        "same_decision": float(np.mean(same)) if same else 0.0,
        "primary_iou_gt_0_5": float(np.mean([v > 0.5 for v in ious])) if ious else 0.0,
        "median_primary_iou": float(np.median(ious)) if ious else 0.0,
        "naive_kept": sum(r["status"] == "kept" for r in base),
        "pipeline_kept": sum(r["status"] == "kept" for r in ours),
        "naive_found_pipeline_missed": sum(a["box"] is not None and b["box"] is None for a, b in zip(base, ours, strict=True)),
        "pipeline_found_naive_missed": sum(a["box"] is None and b["box"] is not None for a, b in zip(base, ours, strict=True)),
    }


def main() -> int:
    """Run both on each source, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "faces.json")
    parser.add_argument("--sources", nargs="+", default=["tpdne", "lfw"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive-threads", type=int, default=0, help="torch threads for the naive loop (0: torch default)")
    args = parser.parse_args()
    setup_logging("WARNING")
    mirror = find_mirror()
    if mirror is None:
        print("no mirror found (set REALFAKE_MIRROR)", file=sys.stderr)
        return 2
    cfg = FacesConfig(workers=args.workers)
    load_start = os.getloadavg()
    if args.naive_threads:
        import torch

        torch.set_num_threads(args.naive_threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for source in args.sources:
            src_dir = Path(tmp) / source
            for sub in ("in", "naive", "ours", "single"):
                (src_dir / sub).mkdir(parents=True)
            paths = extract_sample(mirror / f"{source}.zip", args.n, src_dir / "in", seed=0)
            base, t_naive, cpu_naive = naive(paths, src_dir / "naive", cfg)
            t_single, cpu_single = ours_single(paths, src_dir / "single", cfg)
            ours, t_ours = process_images([(os.fspath(p), p.stem) for p in paths], src_dir / "ours", cfg, progress=False)
            rows.append({
                "source": source, "n": len(paths),
                "naive_images_per_s": len(paths) / t_naive, "pipeline_images_per_s": len(paths) / t_ours,
                "ratio": t_naive / t_ours,
                # CPU time is what the shared machine cannot distort: images per CPU-second, one process each
                "naive_images_per_cpu_s": len(paths) / cpu_naive,
                "pipeline_1proc_images_per_s": len(paths) / t_single,
                "pipeline_1proc_images_per_cpu_s": len(paths) / cpu_single,
                "cpu_ratio": cpu_naive / cpu_single,
                **agreement(base, ours),
            })
    print(f"{'source':8} {'n':>4} {'naive img/s':>11} {'ours img/s':>10} {'ratio':>6} "
          f"{'naive img/cpu-s':>15} {'ours-1p img/cpu-s':>17} {'cpu ratio':>9} {'same dec':>8} {'IoU>.5':>7} {'kept n/o':>9}")
    for r in rows:
        print(f"{r['source']:8} {r['n']:4d} {r['naive_images_per_s']:11.2f} {r['pipeline_images_per_s']:10.2f} "
              f"{r['ratio']:6.2f} {r['naive_images_per_cpu_s']:15.2f} {r['pipeline_1proc_images_per_cpu_s']:17.2f} "
              f"{r['cpu_ratio']:9.2f} {r['same_decision']:8.3f} {r['primary_iou_gt_0_5']:7.3f} "
              f"{r['naive_kept']:4d}/{r['pipeline_kept']:<4d}")
    write_json(args.out, {
        "rows": rows, "config": {k: getattr(cfg, k) for k in ("detect_size", "detect_pad", "batch_size", "workers", "min_face_px")},
        "naive_torch_threads": args.naive_threads or "default", "cpu_count": os.cpu_count(), "load_avg_at_end": os.getloadavg(), "python": platform.python_version(),
        "load_avg_at_start": load_start,
        "note": "2 shared CPU cores; other jobs were running, so wall-clock img/s is noisy; CPU-time figures are "
                "per process (naive: 1 process; ours-1p: the pipeline with workers=1). Pipeline wall time "
                "includes worker start-up.",
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
