"""Latency of `realfake serve` per photo against `realfake predict` on the same file, and 20 concurrent requests.

    python benchmarks/bench_serve.py [--model models/detector.pt] [--n 20] [--concurrent 20] [--threads 2]

One 1024 px photo with one face (the embedded sample's tpdne/0041.jpg, upscaled to 1024 px, JPEG q90). The server
is `realfake serve` in its own process on a free 127.0.0.1 port with `--threads` torch threads (2 = this
machine's cores). Per photo, p50 / p95 over n rounds, each round timing every kind once in turn (so a busy,
shared machine slows them alike):
  - serve_api: POST /api/predict (the rows only),
  - serve_page_no_cam: what the page asks for without Grad-CAM (rows, crops, boxed photo, CSV),
  - serve_page_cam: the same with Grad-CAM heat maps (the page's default),
  - predict_in_process: predict's scoring path (Predictor.score) with the model already loaded, as serve runs it,
  - predict_command: `realfake predict FILE` as a command (every 4th round: a fresh process, imports and model
    load included).
Ratios are of medians. Then `--concurrent` requests at once (the page's default request): all must be answered 200;
the server's memory (VmRSS) at start, before and after, and its peak (VmHWM).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def photo_1024(folder: Path) -> Path:
    with zipfile.ZipFile(REPO / "data" / "sample" / "tpdne.zip") as zf:
        face = Image.open(io.BytesIO(zf.read("tpdne/0041.jpg"))).convert("RGB")
    path = folder / "face1024.jpg"
    face.resize((1024, 1024), Image.Resampling.LANCZOS).save(path, quality=90)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(pid: int) -> dict[str, float]:
    """The process's resident memory now and at its peak (MB), from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: round(int(fields[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}


def percentiles(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": round(1000 * float(np.percentile(seconds, 50)), 1),
            "p95_ms": round(1000 * float(np.percentile(seconds, 95)), 1), "n": len(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/detector.pt")
    parser.add_argument("--n", type=int, default=20, help="sequential requests per kind")
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/serve.json")
    parser.add_argument("--omp-wait-policy", default="PASSIVE",
                        help="OMP_WAIT_POLICY of every process measured (set before torch loads). PASSIVE: on a "
                        "busy machine libgomp's spin-waiting made predict's in-process calls 5-15x slower or not, "
                        "depending on how many threads had used OpenMP, which is noise, not the code; '' keeps the "
                        "environment's")
    args = parser.parse_args()
    if args.omp_wait_policy:
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    import torch

    from realfake.predict import Predictor
    from realfake.serve.ready import wait_until_serving

    if not Path(args.model).is_file():
        raise SystemExit(f"{args.model} not found: train one (`dvc repro`) or pass --model")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        photo = photo_1024(Path(tmp))
        data = photo.read_bytes()
        cli = [sys.executable, "-m", "realfake.cli", "predict", str(photo), "--model", args.model,
               "--threads", str(args.threads), "--device", "cpu"]
        torch.set_num_threads(args.threads)
        predictor = Predictor(Path(args.model))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "realfake.cli", "serve", "--model", args.model, "--port",
                                   str(port), "--threads", str(args.threads), "--device", "cpu",
                                   "--max-queue", str(args.concurrent + 1)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            why = wait_until_serving(url, server)
            if why:
                raise SystemExit(why)
            at_start = memory_mb(server.pid)  # the model and MTCNN loaded, nothing scored yet
            with httpx.Client(timeout=600) as client:
                def post(params: str) -> None:
                    client.post(f"{url}/api/predict{params}",
                                files=[("files", ("face1024.jpg", data))]).raise_for_status()

                kinds = {"predict_in_process": lambda: predictor.score([photo]),
                         "serve_api": lambda: post(""),
                         "serve_page_no_cam": lambda: post("?visuals=true&gradcam=false"),
                         "serve_page_cam": lambda: post("?visuals=true")}
                for fn in kinds.values():
                    fn()  # warm-up: first MTCNN and model calls allocate
                latency: dict[str, list[float]] = {k: [] for k in [*kinds, "predict_command"]}
                for round_ in range(args.n):  # interleaved, so a busy machine slows every kind alike
                    if round_ % 4 == 0:
                        kinds_now = {**kinds, "predict_command": lambda: subprocess.run(cli, env=env,
                                                                                         capture_output=True, check=True)}
                    else:
                        kinds_now = kinds
                    for name, fn in kinds_now.items():
                        start = time.perf_counter()
                        fn()
                        latency[name].append(time.perf_counter() - start)
            before = memory_mb(server.pid)
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrent) as pool, httpx.Client(timeout=600) as client:
                def one(_: int) -> int:
                    return client.post(f"{url}/api/predict?visuals=true",
                                       files=[("files", ("face1024.jpg", data))]).status_code

                codes = list(pool.map(one, range(args.concurrent)))
            burst = time.perf_counter() - start
            after = memory_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    base, command = statistics.median(latency["predict_in_process"]), statistics.median(latency["predict_command"])
    result = {
        "photo": "1024x1024 JPEG q90, one face", "threads": args.threads, "model": args.model,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "cpus": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        **{k: {**percentiles(v), "ratio_to_predict_in_process": round(statistics.median(v) / base, 3),
               "ratio_to_predict_command": round(statistics.median(v) / command, 3)} for k, v in latency.items()},
        "rss_mb_at_start": at_start["VmRSS"],
        "concurrent": {"requests": args.concurrent, "answered_200": codes.count(200), "seconds": round(burst, 2),
                       "rss_mb_before": before["VmRSS"], "rss_mb_after": after["VmRSS"],
                       "peak_rss_mb": after["VmHWM"]},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if codes.count(200) != args.concurrent:
        raise SystemExit(f"only {codes.count(200)} of {args.concurrent} concurrent requests answered 200")


if __name__ == "__main__":
    main()
