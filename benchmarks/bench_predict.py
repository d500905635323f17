"""Throughput of `realfake predict` on a directory of mirror images (images/s, faces/s).

    python benchmarks/bench_predict.py [--model models/detector.pt] [--source tpdne] [--n 200]

Extracts n images of one mirror archive into a temp directory and times the whole command path
(decode, MTCNN, alignment, model) as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import zipfile
from pathlib import Path

from realfake.core.params import find_mirror
from realfake.predict import predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/detector.pt")
    parser.add_argument("--source", default="tpdne", help="mirror archive name (without .zip)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--out", default="benchmarks/results/predict.json")
    args = parser.parse_args()
    mirror = find_mirror()
    if mirror is None:
        raise SystemExit("the offline mirror is needed (set REALFAKE_MIRROR)")
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(mirror / f"{args.source}.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith(".jpg"))[: args.n]
        for name in names:
            zf.extract(name, tmp)
        start = time.perf_counter()
        table = predict([tmp], Path(args.model))
        seconds = time.perf_counter() - start
    faces = int(table["p_fake"].notna().sum())
    result = {"source": args.source, "images": len(names), "faces": faces, "seconds": round(seconds, 2),
              "images_per_s": round(len(names) / seconds, 2), "faces_per_s": round(faces / seconds, 2)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
