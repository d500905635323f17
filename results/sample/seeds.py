"""Lead's check: the sample profile's training over seeds with the current default view (train + val/test AUC)."""
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from realfake.core.params import load_params
from realfake.detector.packed import load_split
from realfake.detector.run import train_run
from realfake.detector.scorer import Scorer
from realfake.detector.train import train

packed = Path("data/packed")
run = train_run(load_params("params.yaml"), packed)  # the run the train stage builds
size = run.size
out = Path(sys.argv[1])
rows = []
for seed in range(int(sys.argv[2])):
    seeded = dataclasses.replace(run, train=dataclasses.replace(run.train, seed=seed, threads=1))
    s = train(seeded, packed, out / f"m{seed}.pt", out / f"live{seed}")
    test = load_split(packed, "test", size)
    p = Scorer(out / f"m{seed}.pt")(np.asarray(test.images[test.rows]))
    rows.append({"seed": seed, "val_auc": s["best_val_auc"], "val_loss": s["best_val_loss"], "test_auc": roc_auc_score(test.y, p)})
    print(rows[-1], flush=True)
v, t = np.array([r["val_auc"] for r in rows]), np.array([r["test_auc"] for r in rows])
summary = {"view": json.loads((packed / "view.json").read_text())["name"], "size": size, "seeds": len(rows),
           "val_auc": [v.mean(), v.std(ddof=1)], "test_auc": [t.mean(), t.std(ddof=1)],
           "at_chance": int(sum(r["val_loss"] > 0.69 for r in rows)), "runs": rows}
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(summary)
