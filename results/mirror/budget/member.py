"""One network of an ensemble, trained alone at 1 thread on a mirror workspace's packed data (the runs of ./README.md).

Usage: python results/mirror/budget/member.py WORKSPACE OUTDIR ARCH SEED EPOCHS; writes OUTDIR/m.pt (a one-network
checkpoint `realfake predict` and the evaluate stage read), OUTDIR/summary.json and OUTDIR/train.log.
"""
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from realfake.core.params import load_params
from realfake.detector.run import train_run
from realfake.detector.train import train

ws, out, arch, seed, epochs = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
out.mkdir(parents=True, exist_ok=True)
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                    filename=out / "train.log")
run = train_run(load_params(f"{ws}/params.yaml"), f"{ws}/data/packed")
run = replace(run, model=replace(run.model, members=1, member_archs=None, member_inputs=None, arch=arch),
              train=replace(run.train, epochs=epochs, seed=seed, threads=1))
start = time.perf_counter()
summary = train(run, f"{ws}/data/packed", out / "m.pt", out / "live")
keys = ("best_epoch", "epochs_run", "best_val_auc", "seconds", "train_seconds", "images_per_s", "threads")
(out / "summary.json").write_text(json.dumps({"wall_s": round(time.perf_counter() - start, 1),
                                              **{k: summary[k] for k in keys}}))
