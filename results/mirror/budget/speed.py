"""Two epochs of one network on a mirror workspace's packed data: the training-time figure of ./README.md.

Usage: python results/mirror/budget/speed.py ARCH THREADS OUT.json [WORKSPACE] (a workspace after `dvc repro sample`
with data.profile=mirror). Measured one after the other, nothing else running: cnn 2 -> 51 s, npr 2 -> 89 s.
"""
import json
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from realfake.core.params import load_params
from realfake.detector.run import train_run
from realfake.detector.train import train

logging.basicConfig(level=logging.WARNING)
arch, threads, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ws = sys.argv[4] if len(sys.argv) > 4 else "."
params = load_params(f"{ws}/params.yaml", ["data.profile=mirror"])
run = train_run(params, f"{ws}/data/packed")
run = replace(run, model=replace(run.model, members=1, member_archs=None, arch=arch),
              train=replace(run.train, epochs=2, min_epochs=1, threads=threads))
with tempfile.TemporaryDirectory() as tmp:
    t = time.perf_counter()
    s = train(run, f"{ws}/data/packed", f"{tmp}/m.pt", f"{tmp}/live")
    Path(out).write_text(json.dumps({"arch": arch, "threads": threads, "wall": time.perf_counter() - t,
                                     "images_per_s": s["images_per_s"], "train_seconds": s["train_seconds"],
                                     "train_images": s["train_images"]}))
