"""Faces stage on the ray engine vs the local process pool, on the same cores; and Ray with 1 vs 2 actors.

Run: .venv/bin/python benchmarks/bench_engines.py [--n 192] [--repeats 2]
Prints a table and writes benchmarks/results/engines.json.

Each configuration runs the faces stage's own code (realfake.faces.crop.process_images) on the same n images of
the embedded sample (data/sample, the archives in turn), so no mirror is needed. Timed per batch (on_batch):
  wall      the whole call, start-up included: what a stage of n images pays
  start     until the first batch is done: process or actor start-up, torch import, MTCNN loading
  steady    images per second after the first batch, when every worker is busy
Ray's own start (ray.init) is paid once per stage process and is reported apart. All configurations run in this
one process on the same machine, so the ratios compare like with like; absolute rates move with whatever
else the machine runs (load_avg in the JSON). The fastest of --repeats runs counts.
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
from realfake.core.params import load_params, load_section
from realfake.faces.batch import face_id
from realfake.faces.config import FacesConfig
from realfake.faces.crop import process_images

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
        raise SystemExit(f"the sample has only {len(chosen)} images; use --n {len(chosen)} or less")
    items = []
    for k, (zip_path, name) in enumerate(chosen):
        path = dest / f"{k:05d}{Path(name).suffix}"
        with zipfile.ZipFile(zip_path) as zf:
            path.write_bytes(zf.read(name))
        items.append((os.fspath(path), face_id(zip_path.stem, name)))
    return items


def timed(items: list[tuple[str, str]], cfg: FacesConfig, compute: ComputeConfig, out: Path) -> tuple[dict, list]:
    """Wall, start-up and steady rate of one process_images call (a fresh output dir), and its records."""
    out.mkdir(parents=True)
    marks: list[tuple[float, int]] = []
    start = time.perf_counter()
    records, _ = process_images(items, out, cfg, progress=False, compute=compute,
                                on_batch=lambda n: marks.append((time.perf_counter(), n)))
    wall = time.perf_counter() - start
    first_t, first_n = marks[0]
    steady = (len(items) - first_n) / (marks[-1][0] - first_t) if marks[-1][0] > first_t else float("nan")
    return {"wall_s": wall, "start_s": first_t - start, "images_per_s": len(items) / wall,
            "steady_images_per_s": steady}, records


def main() -> int:
    """Run every configuration, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=192, help="images per run (the sample has about 450)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration (the fastest counts)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "engines.json")
    args = parser.parse_args()
    setup_logging("WARNING")
    cfg = load_section(FacesConfig, load_params(REPO / "params.yaml"), "faces")
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
        items = sample_images(args.n, tmp / "in")
        run = itertools.count()

        def measure(name: str) -> None:
            workers, compute = configs[name]
            c = replace(cfg, workers=workers)
            results = [timed(items, c, compute, tmp / f"o{next(run)}") for _ in range(args.repeats)]
            rows[name] = min((r for r, _ in results), key=lambda r: r["wall_s"])
            records_by[name] = results[0][1]
            log.warning("%s: %s", name, {k: round(v, 2) for k, v in rows[name].items()})

        for name in ("local_1proc", "local_2proc"):  # without a Ray running beside them, as in a local stage
            measure(name)
        start = time.perf_counter()
        with ray_session(ComputeConfig(engine="ray")):
            ray_init_s = time.perf_counter() - start
            for name in ("ray_1actor", "ray_2actors"):
                measure(name)
    same = all(records_by[name] == records_by["local_2proc"] for name in records_by)
    ratios = {
        # the overhead ratios: > 1 means the ray engine is slower than the local pool on the same 2 cores
        "ray2_vs_local2_wall": rows["ray_2actors"]["wall_s"] / rows["local_2proc"]["wall_s"],
        "ray2_vs_local2_steady": rows["local_2proc"]["steady_images_per_s"] / rows["ray_2actors"]["steady_images_per_s"],
        "ray_2_vs_1_actor_speedup_steady": rows["ray_2actors"]["steady_images_per_s"] / rows["ray_1actor"]["steady_images_per_s"],
        "ray_2_vs_1_actor_speedup_wall": rows["ray_1actor"]["wall_s"] / rows["ray_2actors"]["wall_s"],
        "local_2_vs_1_proc_speedup_steady": rows["local_2proc"]["steady_images_per_s"] / rows["local_1proc"]["steady_images_per_s"],
    }
    print(f"{'config':12} {'wall s':>7} {'img/s':>6} {'start s':>8} {'steady img/s':>12}")
    for name, r in rows.items():
        print(f"{name:12} {r['wall_s']:7.1f} {r['images_per_s']:6.1f} {r['start_s']:8.1f} {r['steady_images_per_s']:12.1f}")
    print(f"ray.init: {ray_init_s:.1f} s (once per stage process); identical records on every engine: {same}")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    write_json(args.out, {
        "n": args.n, "repeats": args.repeats, "rows": rows, "ratios": ratios, "ray_init_seconds": ray_init_s,
        "identical_records": same, "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "load_avg_at_start": load_start, "load_avg_at_end": os.getloadavg(),
        "config": {"batch_size": cfg.batch_size, "detect_size": cfg.detect_size, "cpus_per_actor": ComputeConfig().cpus_per_actor},
        "note": "faces stage, CPU, every configuration in one process on the same machine; start = until the first "
                "batch is done, steady = images/s after it; ray.init is paid once per stage process on top of the "
                "ray rows' wall time",
    })
    print(f"wrote {args.out}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
