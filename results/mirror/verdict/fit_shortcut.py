"""Is the context view's fit policy a shortcut? Per class and fit (full / shrunk; LFW's smallest faces
for the upscaled), on a run's test faces:
how many, the share of each class, and the verdicts at the run's operating point.

Usage: python results/mirror/verdict/fit_shortcut.py RUN_DIR CROPS_DIR; writes RUN_DIR/fit_shortcut.json.
If the fit told real from fake, a label-blind rule "narrower means X" would score an AUC far from 0.5 on test.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

run, crops = Path(sys.argv[1]), Path(sys.argv[2])
op = json.loads((run / "reports/evaluate.json").read_text())["operating_point"]
scores = pd.read_parquet(run / "reports/scores.parquet")
fit = pd.concat([pd.read_parquet(p, columns=["face_id", "context_fit", "face_px"]) for p in sorted(crops.glob("*.parquet"))])
# the upscaled crops are LFW's smallest faces (about 20% of LFW: results/mirror/coverage); per-face upscaling is not
# stored, so the LFW faces under the 20th percentile of face size stand in for them
lfw = pd.read_parquet(crops / "lfw.parquet")
lfw_small = fit["face_id"].isin(lfw.query("face_px < face_px.quantile(0.2)")["face_id"])
lfw_rest = fit["face_id"].isin(lfw["face_id"]) & ~lfw_small & (fit["context_fit"] == "full")
fit["context_fit"] = fit["context_fit"].where(~lfw_small, "lfw-smallest-20%").where(~lfw_rest, "lfw-other-full")
test = scores[scores["split"] == "test"].merge(fit, on="face_id", how="left")
test["decision"] = np.where(test["p_fake"] >= op["t_fake"], "fake",
                            np.where(test["p_fake"] < op["t_real"], "real", "uncertain"))
rows = []
for (label, how), part in test.groupby(["label", "context_fit"], dropna=False):
    share = part["decision"].value_counts(normalize=True)
    rows.append({"label": label, "fit": how, "n": len(part), "mean_p_fake": float(part["p_fake"].mean()),
                 **{f"called_{d}": float(share.get(d, 0.0)) for d in ("real", "uncertain", "fake")}})
not_full = (test["context_fit"] == "shrunk").astype(int)
out = {"rows": rows, "fit_alone_auc": float(roc_auc_score(test["y"], not_full)) if not_full.nunique() > 1 else None,
       "share_not_full": {str(k): float(v) for k, v in test.assign(nf=not_full).groupby("label")["nf"].mean().items()}}
(run / "fit_shortcut.json").write_text(json.dumps(out, indent=1) + "\n")
print(pd.DataFrame(rows).to_string(index=False))
print("fit alone AUC", out["fit_alone_auc"], out["share_not_full"])
