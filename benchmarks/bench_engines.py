"""Faces stage on the ray engine vs the local process pool, on the same cores; and Ray with 1 vs 2 actors.

Run: .venv/bin/python benchmarks/bench_engines.py [--n 120] [--repeats 1]
Prints a table and writes benchmarks/results/engines.json.

Each configuration runs the faces stage's own code (realfake.faces.crop.process_images) on n and on 2n
images of the embedded sample (data/sample, every source in turn), so no mirror is needed. From the two
wall times: the steady rate = n / (T(2n) - T(n)) and the fixed cost = T(n) - n / rate (process or actor
start-up, MTCNN loading). Ray's own start (ray.init) is paid once per stage process and is reported apart.
All configurations run in this one process on the same machine, so the ratios compare like with like;
the absolute rates move with whatever else the machine runs (see load_avg in the JSON).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import platform
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

from realfake.core.atomic import write_json
from realfake.core.engine import ComputeConfig, ray_session
from realfake.core.log import setup_logging
from realfake.core.params import load_params
from realfake.faces.crop import FacesConfig, face_id, process_images

log = logging.getLogger("bench_engines")
REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def sample_images(n: int, dest: Path) -> list[tuple[str, str]]:
    """n images of the embedded sample, taken from each archive in turn (sources mixed as in a real run)."""
    per_zip = []
    for zip_path in sorted((REPO / "data" / "sample").glob("*.zip")):
        with zipfile.ZipFile(zip_path) as zf:
            names = sorted(m for m in zf.namelist() if m.lower().endswith((".jpg", ".jpeg", ".png")))
            per_zip.append([(zip_path, name) for name in names])
    chosen = [x for x in itertools.chain.from_iterable(itertools.zip_longest(*per_zip)) if x is not None][:n]
    if len(chosen) < n:
        raise SystemExit(f"the sample has only {len(chosen)} images; use --n {len(chosen) // 2} or less")
    items = []
    for k, (zip_path, name) in enumerate(chosen):
        path = dest / f"{k:05d}{Path(name).suffix}"
        with zipfile.ZipFile(zip_path) as zf:
            path.write_bytes(zf.read(name))
        items.append((os.fspath(path), face_id(zip_path.stem, name)))
    return items


def timed(items: list[tuple[str, str]], cfg: FacesConfig, compute: ComputeConfig, out: Path) -> tuple[float, list]:
    """Wall seconds of process_images on items (a fresh output dir each time), and its records."""
    out.mkdir(parents=True)
    start = time.perf_counter()
    records, _ = process_images(items, out, cfg, progress=False, compute=compute)
    return time.perf_counter() - start, records


def main() -> int:
    """Run every configuration on n and 2n images, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=120, help="images in the small run (the large one has 2n)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration and size (the fastest counts)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "engines.json")
    args = parser.parse_args()
    setup_logging("WARNING")
    cfg = FacesConfig.from_params(load_params(REPO / "params.yaml").get("faces"))
    cfg = replace(cfg, device="cpu")
    load_start = os.getloadavg()
    configs = {  # name -> (faces.workers, compute)
        "local_1proc": (1, ComputeConfig()),
        "local_2proc": (2, ComputeConfig()),
        "ray_1actor": (1, ComputeConfig(engine="ray", actors=1)),
        "ray_2actors": (2, ComputeConfig(engine="ray", actors=2)),
    }
    rows, records_by = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        items = sample_images(2 * args.n, tmp / "in")
        start = time.perf_counter()
        with ray_session(ComputeConfig(engine="ray")):
            ray_init_s = time.perf_counter() - start
            run = itertools.count()
            for name, (workers, compute) in configs.items():
                c = replace(cfg, workers=workers)
                t_small = min(timed(items[: args.n], c, compute, tmp / f"o{next(run)}")[0] for _ in range(args.repeats))
                results = [timed(items, c, compute, tmp / f"o{next(run)}") for _ in range(args.repeats)]
                t_large = min(t for t, _ in results)
                records_by[name] = results[0][1]
                rate = args.n / (t_large - t_small) if t_large > t_small else float("nan")
                rows[name] = {
                    "seconds_n": t_small, "seconds_2n": t_large,
                    "images_per_s_2n": 2 * args.n / t_large,  # what a stage of 2n images sees, start-up included
                    "steady_images_per_s": rate,
                    "fixed_seconds": t_small - args.n / rate,
                }
                log.warning("%s: %.1f s for %d images, %.1f s for %d", name, t_small, args.n, t_large, 2 * args.n)
    same = all(records_by[name] == records_by["local_2proc"] for name in records_by)
    ratios = {
        # the overhead ratio: > 1 means the ray engine is slower than the local pool on the same 2 cores
        "ray2_vs_local2_wall_2n": rows["ray_2actors"]["seconds_2n"] / rows["local_2proc"]["seconds_2n"],
        "ray2_vs_local2_steady": rows["local_2proc"]["steady_images_per_s"] / rows["ray_2actors"]["steady_images_per_s"],
        "ray_2_vs_1_actor_speedup_steady": rows["ray_2actors"]["steady_images_per_s"] / rows["ray_1actor"]["steady_images_per_s"],
        "local_2_vs_1_proc_speedup_steady": rows["local_2proc"]["steady_images_per_s"] / rows["local_1proc"]["steady_images_per_s"],
    }
    print(f"{'config':12} {'T(n) s':>8} {'T(2n) s':>8} {'img/s (2n)':>10} {'steady img/s':>12} {'fixed s':>8}")
    for name, r in rows.items():
        print(f"{name:12} {r['seconds_n']:8.1f} {r['seconds_2n']:8.1f} {r['images_per_s_2n']:10.1f} "
              f"{r['steady_images_per_s']:12.1f} {r['fixed_seconds']:8.1f}")
    print(f"ray.init: {ray_init_s:.1f} s (once per stage process); identical records on every engine: {same}")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    write_json(args.out, {
        "n": args.n, "repeats": args.repeats, "rows": rows, "ratios": ratios, "ray_init_seconds": ray_init_s,
        "identical_records": same, "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "load_avg_at_start": load_start, "load_avg_at_end": os.getloadavg(),
        "config": {"batch_size": cfg.batch_size, "detect_size": cfg.detect_size, "cpus_per_actor": ComputeConfig().cpus_per_actor},
        "note": "faces stage, CPU, same process and machine for every configuration; steady rate and fixed cost "
                "from the n and 2n runs; ray.init is paid once per stage process on top of the ray rows",
    })
    print(f"wrote {args.out}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
