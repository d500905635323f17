"""Join single-seed checkpoints into models/detector.pt as `-S model.members=K` would train it: join.py A.pt B.pt ..."""
import logging
import sys
from pathlib import Path

from realfake.core.params import load_params
from realfake.detector.ensemble import join_members
from realfake.detector.run import train_run

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
run = train_run(load_params("params.yaml"), "data/packed")
paths = [Path(p) for p in sys.argv[1:]]
assert run.model.members == len(paths), (run.model.members, paths)
join_members(paths, run, "data/packed", "models/detector.pt")
