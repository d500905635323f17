"""The [cnn, npr] ensemble of two member checkpoints, as `-S model.members=2 -S 'model.member_archs=[cnn, npr]'` trains it.

Usage: python results/mirror/budget/join.py WORKSPACE OUTDIR SEED EPOCHS CNN.pt NPR.pt (CNN at SEED, NPR at SEED + 1,
both from member.py); writes OUTDIR/detector.pt, calibrated on the ensemble's validation logits.
"""
import logging
import sys
from dataclasses import replace
from pathlib import Path

from realfake.core.params import load_params
from realfake.detector.ensemble import join_members
from realfake.detector.run import train_run
from realfake.detector.train import set_threads

ws, out, seed, epochs, paths = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
logging.basicConfig(level=logging.INFO)
set_threads(1)
run = train_run(load_params(f"{ws}/params.yaml"), f"{ws}/data/packed")
run = replace(run, model=replace(run.model, arch="cnn", members=2, member_archs=["cnn", "npr"]),
              train=replace(run.train, epochs=epochs, seed=seed, threads=1))
out.mkdir(parents=True, exist_ok=True)
join_members([Path(p) for p in paths], run, f"{ws}/data/packed", out / "detector.pt")
